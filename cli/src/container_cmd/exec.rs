//! `hull exec`: another process in a running container, through a new
//! session with its agent.

use anyhow::Result;
use clap::Args;
use hull_protocol::RunSpec;

use super::agent;
use crate::container;
use crate::process_config::{parse_user, with_env_flags};
use crate::session::{self, Input, Request};
use crate::signals::ForwardedSignals;
use crate::state::StateRoot;
use crate::terminal::StdioFlags;

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    stdio: StdioFlags,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory (default: the container's).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// User to run as: USER[:GROUP] (default: the container's).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,
    /// Container name or ID.
    container: String,
    /// The command to run, with its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl ExecArgs {
    pub fn stdio(&self) -> &StdioFlags {
        &self.stdio
    }
}

pub fn exec(args: ExecArgs, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, &args.container)?;
    let boot = &container.config.boot;
    let tty = args.stdio.terminal(true)?;
    let spec = RunSpec {
        argv: args.command,
        env: with_env_flags(&boot.env, &args.env),
        cwd: args.workdir.unwrap_or_else(|| boot.cwd.clone()),
        user: args.user.unwrap_or_else(|| boot.user.clone()),
        hostname: boot.hostname.clone(),
        rootfs: None,
        tty,
        network: None,
    };
    let signals = ForwardedSignals::catch()?;
    let stream = agent::connect(root, &container)?;
    let input = match args.stdio.interactive {
        true => Input::Stdin(None),
        false => Input::Closed,
    };
    let end = session::attach(
        stream,
        Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        },
        input,
        Some(signals),
        Box::new(session::Terminal::default()),
    )?;
    Ok(end.exit_code())
}
