//! `hull exec`: another process in a running container.

use anyhow::Result;
use clap::Args;
use hull_runtime::signals::Signals;
use hull_runtime::{parse_user, ExecOptions, Runtime};

use crate::terminal::{StdioFlags, Terminal};

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

pub fn exec(args: ExecArgs, runtime: &Runtime) -> Result<u8> {
    runtime.id_of(&args.container)?;
    let tty = args.stdio.terminal(true)?;
    let signals = Signals::catch()?;
    let options = ExecOptions {
        command: args.command,
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        tty,
    };
    let terminal = Terminal::new(tty.is_some(), args.stdio.interactive);
    let outcome = runtime.exec(&args.container, options, terminal.stdio(Some(signals))?)?;
    Ok(outcome.exit_code())
}
