//! `exec`: another process in a running container, through a new session
//! with its agent.

use hull_protocol::{RunSpec, TerminalSize};

use crate::container;
use crate::error::Result;
use crate::ops::{agent, run_session, Outcome, Stdio};
use crate::process_config::{with_default_term, with_env_flags};
use crate::session::Request;
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
}

impl Runtime {
    /// Runs `options`' process in the running container `name` with
    /// `stdio`, until it ends (or the detach keys are typed).
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
            user: options.user.unwrap_or_else(|| boot.user.clone()),
            hostname: boot.hostname.clone(),
            rootfs: None,
            tty: options.tty,
            network: None,
        };
        let stream = agent::connect(&self.root, &container)?;
        let request = Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        };
        run_session(stream, request, stdio)
    }
}
