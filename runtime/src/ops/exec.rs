//! `exec`: another process in a running container, through a new session
//! with its agent.

use std::os::unix::net::UnixStream;

use anyhow::{anyhow, Context};
use hull_protocol::{read_message, Message, RunSpec, TerminalSize};

use crate::container;
use crate::error::{Error, Result};
use crate::events;
use crate::ops::attach::detach_keys;
use crate::ops::{agent, run_session, Outcome, Stdio};
use crate::process_config::{with_default_term, with_env_flags};
use crate::session::{self, Request};
use crate::Runtime;

/// The process `exec` starts.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Its command line.
    pub command: Vec<String>,
    /// `KEY=VALUE` (or `KEY`, copied from this process) on top of the
    /// container's environment.
    pub env: Vec<String>,
    /// The working directory (default: the container's).
    pub workdir: Option<String>,
    /// `USER[:GROUP]` (default: the container's).
    pub user: Option<String>,
    /// A terminal of this size for the process.
    pub tty: Option<TerminalSize>,
    /// Start the process and leave it running, as `docker exec -d`: its
    /// stdin is /dev/null and its output is discarded (with `tty`, it gets
    /// a terminal nobody reads or types on); `exec` returns
    /// [`Outcome::Detached`] as soon as it has started. Nobody learns how it
    /// ends; the guest reaps it.
    pub detach: bool,
    /// Every capability for the process, not the container's set (`docker
    /// exec --privileged`): of its VM only.
    pub privileged: bool,
}

impl Runtime {
    /// Runs `options`' process in the running container `name` with
    /// `stdio`, until it ends, or the detach keys are typed (with a
    /// terminal only: the given ones, else the container's, else Docker's
    /// ctrl-p,ctrl-q), which leave it running.
    ///
    /// With [`ExecOptions::detach`], returns once the process has started,
    /// and `stdio` is not used at all (it is dropped: its input is not
    /// read, no output reaches it, its signals go nowhere); pass
    /// [`Stdio::new`] with sinks. Either way a process that cannot start is
    /// [`Error::CommandNotFound`] (127) or [`Error::CommandNotExecutable`]
    /// (126).
    pub fn exec(&self, name: &str, options: ExecOptions, stdio: Stdio) -> Result<Outcome> {
        let container = container::find(&self.root, name)?;
        let boot = &container.config.boot;
        let mut env = with_env_flags(&boot.env, &options.env);
        if options.tty.is_some() {
            with_default_term(&mut env);
        }
        let spec = RunSpec {
            argv: options.command,
            env,
            cwd: options.workdir.unwrap_or_else(|| boot.cwd.clone()),
            user: options
                .user
                .filter(|user| !user.is_empty())
                .unwrap_or_else(|| boot.user.clone()),
            hostname: boot.hostname.clone(),
            domainname: String::new(),
            rootfs: None,
            tty: options.tty,
            network: None,
            limits: None,
            hold: false,
            privileged: options.privileged,
        };
        let stream = agent::connect(&self.root, &container)?;
        let command = spec.argv.join(" ");
        let log = |action: &str, extra: &[(&str, String)]| {
            events::container_event(self.root.path(), &container.config, action, extra)
        };
        log(&format!("exec_create: {command}"), &[]);
        log(&format!("exec_start: {command}"), &[]);
        if options.detach {
            drop(stdio);
            return start_detached(stream, spec);
        }
        let stdio = Stdio {
            detach_keys: detach_keys(stdio.detach_keys, &container.config, spec.tty.is_some()),
            ..stdio
        };
        let request = Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        };
        let outcome = run_session(stream, request, stdio)?;
        if !matches!(outcome, Outcome::Detached) {
            log("exec_die", &[("exitCode", outcome.exit_code().to_string())]);
        }
        Ok(outcome)
    }
}

/// Asks the agent on `stream` to start `spec` detached, and waits only for
/// its start: the agent then ends the session.
fn start_detached(stream: UnixStream, spec: RunSpec) -> Result<Outcome> {
    let (mut reader, writer) = session::greet(stream)?;
    writer.send(&Message::RunDetached(Box::new(spec)))?;
    let answer = read_message(&mut reader).context("cannot read from the guest agent")?;
    match answer {
        Some(Message::Started { .. }) => Ok(Outcome::Detached),
        Some(Message::Failed { code, reason }) => Err(Error::not_started(code, reason)),
        Some(other) => Err(anyhow!("unexpected message from the guest agent: {other:?}").into()),
        None => Err(anyhow!("the guest agent hung up before the process started").into()),
    }
}
