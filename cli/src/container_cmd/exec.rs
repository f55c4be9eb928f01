//! `hull exec`: another process in a running container.

use std::io;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use hull_runtime::signals::Signals;
use hull_runtime::{parse_user, DetachKeys, ExecOptions, Runtime, Stdio};

use crate::container_cmd::attach::left;
use crate::run::read_key_value_files;
use crate::terminal::{StdioFlags, Terminal};

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    stdio: StdioFlags,
    /// Detached mode: start the command in the background and return once
    /// it runs (its output is discarded; -i is ignored).
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = crate::run::parse_env)]
    env: Vec<String>,
    /// Read environment variables from a file: KEY=VALUE lines (KEY alone
    /// copies it from here; # comments); before -e.
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Working directory (default: the container's).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// User to run as: USER[:GROUP] (default: the container's).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,
    /// Give the command every capability, of the container's VM only (not
    /// the container's set).
    #[arg(long)]
    privileged: bool,
    /// The keys that detach and leave the command running, with -it
    /// (default: the container's --detach-keys, else ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<DetachKeys>,
    /// Container name or ID.
    container: String,
    /// The command to run, with its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// What a detached exec uses of this terminal: nothing.
static DETACHED_STDIO: StdioFlags = StdioFlags {
    interactive: false,
    tty: false,
};

impl ExecArgs {
    /// The variables of the `--env-file`s, then `-e`.
    fn env(&self) -> Result<Vec<String>> {
        let mut env = read_key_value_files("--env-file", &self.env_files)?;
        env.extend(self.env.iter().cloned());
        Ok(env)
    }

    /// What of this terminal the command uses: its `-i` and `-t`, or
    /// nothing with `-d` (no stdin is read and no output comes back, as
    /// with `docker exec -d`, even when the process gets a terminal).
    pub fn stdio(&self) -> &StdioFlags {
        if self.detach {
            &DETACHED_STDIO
        } else {
            &self.stdio
        }
    }
}

pub fn exec(args: ExecArgs, runtime: &Runtime) -> Result<u8> {
    runtime.id_of(&args.container)?;
    if args.detach {
        return exec_detached(args, runtime);
    }
    let tty = args.stdio.terminal(true)?;
    let signals = Signals::catch()?;
    let what = format!("{} in {}", args.command[0], args.container);
    let options = ExecOptions {
        env: args.env()?,
        command: args.command,
        workdir: args.workdir,
        user: args.user,
        tty,
        detach: false,
        privileged: args.privileged,
    };
    let terminal = Terminal::new(tty.is_some(), args.stdio.interactive);
    let mut stdio = terminal.stdio(Some(signals))?;
    stdio.detach_keys = args.detach_keys;
    let outcome = runtime.exec(&args.container, options, stdio)?;
    drop(terminal);
    Ok(left(&outcome, &what))
}

/// `exec -d`, as `docker exec -d`: -i is ignored (Docker attaches no
/// stream), -t still gives the process a terminal, of this terminal's size
/// if there is one; ours stays as it is and no signal is caught.
fn exec_detached(args: ExecArgs, runtime: &Runtime) -> Result<u8> {
    let options = ExecOptions {
        env: args.env()?,
        command: args.command,
        workdir: args.workdir,
        user: args.user,
        tty: args.stdio.terminal(false)?,
        detach: true,
        privileged: args.privileged,
    };
    let unused = Stdio::new(Box::new(io::sink()), Box::new(io::sink()));
    let outcome = runtime.exec(&args.container, options, unused)?;
    Ok(outcome.exit_code())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        exec: ExecArgs,
    }

    fn parse(words: &[&str]) -> ExecArgs {
        Cli::try_parse_from(std::iter::once("exec").chain(words.iter().copied()))
            .unwrap()
            .exec
    }

    #[test]
    fn a_detached_exec_uses_nothing_of_this_terminal_but_keeps_its_tty_flag() {
        let detached = parse(&["-dit", "web", "sh", "-c", "sleep 9"]);
        assert!(detached.detach);
        assert!(!detached.stdio().interactive && !detached.stdio().tty);
        // The process still gets a terminal, as with `docker exec -dt`.
        assert!(detached.stdio.tty);
        assert_eq!(detached.command, ["sh", "-c", "sleep 9"]);

        let attached = parse(&["-it", "web", "sh"]);
        assert!(!attached.detach);
        assert!(attached.stdio().interactive && attached.stdio().tty);
        assert!(parse(&["--detach", "web", "true"]).detach);
    }
}
