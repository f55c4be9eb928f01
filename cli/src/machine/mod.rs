//! The hull machine from the CLI's side: where this host's KVM cannot run
//! hull's guest, commands that need VMs run their own command line inside
//! the machine (`hull_machine`), which starts on first use; `hull machine`
//! manages it.

mod client;
mod cmd;

use std::fs::File;
use std::path::Path;

use anyhow::Result;
use hull_machine::{Backend, Machine, Presence};
use hull_runtime::host::Kvm;
use nix::fcntl::Flock;

pub use client::{forward, run_with_output};
pub use cmd::{describe_path, machine, print_status, MachineCommand};

use crate::terminal::StdioFlags;

/// Where a command runs on a host whose VMs need the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Here, always: it does not touch the root's state (or is the machine's
    /// own business).
    Host,
    /// It works on the root's records and images only: here while the
    /// machine is down (which it stays meanwhile), in the machine while it
    /// is up, where its containers' processes are.
    Root,
    /// It starts VMs or changes their networks: in the machine, which
    /// starts first if it is down.
    Vm,
}

/// What of this process's terminal a command in the machine gets: stdin
/// only if it reads it (a loop feeding other commands from a file keeps its
/// input), a terminal only if it asks for one (stderr stays apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardedStdio {
    pub stdin: bool,
    pub tty: bool,
}

impl From<&StdioFlags> for ForwardedStdio {
    fn from(flags: &StdioFlags) -> ForwardedStdio {
        ForwardedStdio {
            stdin: flags.interactive,
            tty: flags.tty,
        }
    }
}

/// Where a command runs.
pub enum Route {
    /// In this process; with the guard held, the machine stays down
    /// meanwhile.
    Here(Option<Flock<File>>),
    /// This command line, in the machine; `notice` tells the user why, if
    /// the machine starts for it.
    Machine { notice: String },
}

/// Where a command with `placement` belongs on this host.
pub fn route(root: &Path, placement: Placement) -> Result<Route> {
    if placement == Placement::Host {
        return Ok(Route::Here(None));
    }
    let kvm = Kvm::detect();
    let backend = Backend::select(&kvm).map_err(anyhow::Error::msg)?;
    let Some(notice) = backend.notice(&kvm) else {
        return Ok(Route::Here(None));
    };
    if placement == Placement::Root {
        if let Presence::Down(down) = Machine::new(root).presence()? {
            return Ok(Route::Here(Some(down)));
        }
    }
    Ok(Route::Machine { notice })
}
