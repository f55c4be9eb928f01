//! The hull machine: where this host's KVM cannot run hull's guest (no
//! /dev/kvm, or PVM), hull's commands run in a persistent KVM test host
//! (QEMU TCG with nested SVM), as Docker Desktop or podman machine do. Its
//! root is the host's own root (9p, writable), so host paths, the hull root
//! and its images, volumes and containers are the same inside.
//!
//! One supervisor process per root holds the machine (`supervisor`); a
//! command that needs it starts it and runs its own command line inside it
//! through a relay session (`client`); `hull machine` manages it (`cmd`).

mod client;
mod cmd;
mod control;
mod layout;
mod ports;
mod settings;
mod supervisor;

use std::fs::{self, File};

use anyhow::Result;
use nix::fcntl::Flock;

pub use client::forward;
pub use cmd::{describe_path, machine, print_status, MachineCommand};

use self::layout::{Layout, Presence};
use crate::kvm::{Backend, Kvm};
use crate::state::StateRoot;
use crate::terminal::StdioFlags;

/// The environment variable that picks where VMs run.
pub const BACKEND_ENV: &str = "HULL_BACKEND";
/// The TCP port the machine's relay listens on inside it: outside the
/// kernel's range for picked ports, so `-p 80` never lands on it.
const GUEST_RELAY_PORT: u16 = 65535;

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
pub fn route(root: &StateRoot, placement: Placement) -> Result<Route> {
    if placement == Placement::Host {
        return Ok(Route::Here(None));
    }
    let kvm = Kvm::detect();
    let backend = Backend::select(&kvm).map_err(anyhow::Error::msg)?;
    let Some(notice) = backend.notice(&kvm) else {
        return Ok(Route::Here(None));
    };
    if placement == Placement::Root {
        if let Presence::Down(down) = Layout::new(root).presence()? {
            return Ok(Route::Here(Some(down)));
        }
    }
    Ok(Route::Machine { notice })
}

/// `hull __machine --lock-fd FD`: holds the machine, with the lock the
/// command that started this process passed on as `lock_fd`.
pub fn supervise(root: &StateRoot, lock_fd: std::os::fd::RawFd) -> Result<u8> {
    let lock = Layout::new(root).adopt(lock_fd)?;
    supervisor::supervise(root, lock)
}

/// Whether this process runs inside the hull machine: its kernel command
/// line says so.
pub fn is_inside() -> bool {
    fs::read_to_string("/proc/cmdline").is_ok_and(|cmdline| {
        cmdline
            .split_whitespace()
            .any(|word| word.starts_with("hull.machine="))
    })
}
