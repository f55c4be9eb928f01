//! The hull machine from the CLI's side: where this host's KVM cannot run
//! hull's guest, commands that need VMs run their own command line inside
//! the machine (`hull_machine`), which starts on first use; `hull machine`
//! manages it.

mod client;
mod cmd;

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hull_machine::{Backend, Machine, Presence};
use hull_runtime::host::Kvm;
use hull_runtime::{Mount, MountSource};
use nix::fcntl::Flock;

pub use client::{forward, run_with_output};
pub use cmd::{describe_path, machine, monitors_run_here, print_status, MachineCommand};

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

/// Refuses, before anything is created, a read-write bind of a host path
/// the machine cannot write (outside the hull root and every shared
/// directory), as Docker Desktop refuses a path it does not share; a
/// volume bound to a host directory (`-o device=`) is such a bind. Binds
/// read-only of any path are fine: the machine reads the whole host.
pub fn check_binds(root: &Path, mounts: &[Mount]) -> Result<()> {
    let runtime = hull_runtime::Runtime::new(root);
    let writable = mounts
        .iter()
        .filter(|mount| !mount.read_only)
        .filter_map(|mount| match &mount.source {
            MountSource::Bind { path, .. } => Some(path.clone()),
            MountSource::Volume { name, .. } => Some(runtime.volume_mountpoint(name)),
            MountSource::Tmpfs { .. } => None,
        });
    if let Some((path, dir)) = first_unshared(root, writable)? {
        bail!(
            "the path {} is not shared writable with the hull machine: bind it read-only \
             (:ro), or share it: `hull machine stop; hull machine set --share {}`",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Refuses, before a project's volumes are made in the machine, a volume
/// bound to a host directory (`driver_opts` `device:`) the machine cannot
/// write, as [`check_binds`] refuses such a bind.
pub fn check_volume_devices(root: &Path, devices: &[PathBuf]) -> Result<()> {
    if let Some((path, dir)) = first_unshared(root, devices.iter().cloned())? {
        bail!(
            "the volume device {} is not shared writable with the hull machine: share it: \
             `hull machine stop; hull machine set --share {}`",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Refuses, before the command goes to the machine, a host file it would
/// write there (`cp` out of a container, `export -o`, `save -o`) where the
/// machine cannot write: it would fail inside with a bare "read-only file
/// system". `paths` are as the user typed them, relative to this
/// directory, which the command keeps in the machine.
pub fn check_outputs(root: &Path, paths: &[PathBuf]) -> Result<()> {
    // A pipe of this host is none in the machine, which has its own.
    if let Some(pipe) = paths.iter().find(|path| crate::output_file::is_pipe(path)) {
        bail!(
            "cannot write into the named pipe {} from the hull machine: write to stdout and \
             redirect it into the pipe",
            pipe.display()
        );
    }
    let cwd = std::env::current_dir().context("cannot find the current directory")?;
    let absolute = paths.iter().map(|path| cwd.join(path));
    if let Some((path, dir)) = first_unshared(root, absolute)? {
        bail!(
            "the path {} is not shared writable with the hull machine: write it under a shared \
             directory (`hull machine status` lists them), or share it: \
             `hull machine stop; hull machine set --share {}`",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The first of `paths` (absolute) the machine cannot write, with the
/// directory to share for it (its closest existing ancestor).
fn first_unshared(
    root: &Path,
    paths: impl Iterator<Item = PathBuf>,
) -> Result<Option<(PathBuf, PathBuf)>> {
    let mut paths = paths.peekable();
    if paths.peek().is_none() {
        return Ok(None);
    }
    // A machine started by an older hull writes the whole host.
    let Some(shares) = Machine::new(root).writable_shares()? else {
        return Ok(None);
    };
    Ok(paths.find(|path| !shares.covers(path)).map(|path| {
        let dir = path
            .ancestors()
            .find(|dir| dir.is_dir())
            .unwrap_or(Path::new("/"))
            .to_owned();
        (path, dir)
    }))
}
