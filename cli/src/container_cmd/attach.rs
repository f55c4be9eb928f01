//! `hull attach NAME`: this terminal joins a running container's process
//! through its monitor: its output from now on, our input if it was run
//! with `-i`, and the detach keys to leave it running.

use std::io::{self, IsTerminal};

use anyhow::{bail, Result};
use clap::{ArgAction, Args};
use hull_runtime::signals::Signals;
use hull_runtime::{DetachKeys, Outcome, Runtime, Status};

use crate::terminal::Terminal;

#[derive(Args)]
pub struct AttachArgs {
    #[command(flatten)]
    flags: AttachFlags,
    /// Container name or ID.
    container: String,
}

/// How `attach` (and `compose attach`) join a process.
#[derive(Args)]
pub struct AttachFlags {
    /// Do not attach our stdin.
    #[arg(long)]
    no_stdin: bool,
    /// Pass the signals hull gets (Ctrl-C, SIGTERM, ...) on to the process.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value_t = true, default_missing_value = "true", action = ArgAction::Set)]
    sig_proxy: bool,
    /// The keys that detach and leave the container running (default: the
    /// container's --detach-keys, else ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<DetachKeys>,
}

impl AttachArgs {
    /// Whether our stdin goes to the process.
    pub fn takes_stdin(&self) -> bool {
        self.flags.takes_stdin()
    }
}

impl AttachFlags {
    /// Whether our stdin goes to the process.
    pub fn takes_stdin(&self) -> bool {
        !self.no_stdin
    }
}

pub fn attach(args: AttachArgs, runtime: &Runtime) -> Result<u8> {
    attach_to(&args.container, args.flags, runtime)
}

/// Joins the process of the running container `name` with this terminal,
/// as `flags` say; returns its exit code, or 0 once detached.
pub fn attach_to(name: &str, args: AttachFlags, runtime: &Runtime) -> Result<u8> {
    let container = runtime.inspect(name)?;
    let config = container.config;
    let tty = config.boot.tty.is_some();
    let stdin = config.interactive && !args.no_stdin;
    // One that does not run is refused for that first, by `attach`.
    let running = container.state.status == Status::Running;
    if running && stdin && tty && !io::stdin().is_terminal() {
        bail!("the input device is not a TTY: use --no-stdin, or attach from a terminal");
    }
    let signals = match args.sig_proxy {
        true => Some(Signals::catch()?),
        false => None,
    };
    let terminal = Terminal::new(tty, stdin);
    let mut stdio = terminal.stdio(signals)?;
    stdio.detach_keys = args.detach_keys;
    let outcome = runtime.attach(name, stdio)?;
    drop(terminal);
    Ok(left(&outcome, &config.name))
}

/// The exit code of a session with `process` (a container's name, or an
/// exec's command and container) that ended as `outcome`, saying so on
/// stderr if it detached (call it once the terminal is back in its mode).
pub fn left(outcome: &Outcome, process: &str) -> u8 {
    if *outcome == Outcome::Detached {
        eprintln!("hull: detached from {process}; it runs on");
    }
    outcome.exit_code()
}
