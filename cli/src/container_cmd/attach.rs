//! `hull attach NAME`: this terminal joins a detached container's process
//! through its monitor's attach socket: its output from now on, our input
//! if it was run with `-i`, and the detach keys to leave it running.

use std::io::{self, IsTerminal};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args};

use crate::attach_server;
use crate::container::{self, Status};
use crate::detach_keys::DetachKeys;
use crate::session::{self, Input, Request, SessionEnd};
use crate::signals::ForwardedSignals;
use crate::state::StateRoot;

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach our stdin.
    #[arg(long)]
    no_stdin: bool,
    /// Pass the signals hull gets (Ctrl-C, SIGTERM, ...) on to the process.
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    sig_proxy: bool,
    /// The keys that detach and leave the container running (default: the
    /// container's --detach-keys, else ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<DetachKeys>,
    /// Container name or ID.
    container: String,
}

impl AttachArgs {
    /// Whether our stdin goes to the process.
    pub fn takes_stdin(&self) -> bool {
        !self.no_stdin
    }
}

pub fn attach(args: AttachArgs, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, &args.container)?;
    if container.state()?.status != Status::Running {
        bail!(
            "container {0} is not running: start it with `hull start {0}` first",
            container.config.name
        );
    }
    let config = &container.config;
    let tty = config.boot.tty.is_some();
    let input = if config.interactive && !args.no_stdin {
        if tty && !io::stdin().is_terminal() {
            bail!("the input device is not a TTY: use --no-stdin, or attach from a terminal");
        }
        let keys = args.detach_keys.or_else(|| config.detach_keys.clone());
        Input::Stdin(Some(keys.unwrap_or_default()))
    } else {
        Input::Closed
    };
    let signals = match args.sig_proxy {
        true => Some(ForwardedSignals::catch()?),
        false => None,
    };
    let socket = attach_server::socket_path(&root.run_dir_path(container.id()));
    let stream = UnixStream::connect(&socket)
        .with_context(|| format!("cannot attach to container {}", config.name))?;
    let end = session::attach(
        stream,
        Request::Join { tty },
        input,
        signals,
        Box::new(session::Terminal::default()),
    )?;
    if end == SessionEnd::Detached {
        eprintln!("hull: detached from {}; it runs on", config.name);
    }
    Ok(end.exit_code())
}
