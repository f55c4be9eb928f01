//! The command lines that start the runtime's helper processes (the
//! `helper` module runs them): this program again, with the helper's name first.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::root::StateRoot;

/// A container's monitor: `__monitor ROOT ID [--await-client]`.
pub(crate) const MONITOR: &str = "__monitor";
/// The monitor's flag to hold its first run's process until a client has
/// joined it.
pub(crate) const AWAIT_CLIENT: &str = "--await-client";
/// A VMM: `__vmm CONFIG`.
pub(crate) const VMM: &str = "__vmm";

/// The command that starts container `id`'s monitor; `awaits_client`:
/// its first run's process starts once a client has joined it.
pub(crate) fn monitor_command(root: &StateRoot, id: &str, awaits_client: bool) -> Result<Command> {
    let mut command = Command::new(this_program()?);
    command.arg(MONITOR).arg(root.path()).arg(id);
    if awaits_client {
        command.arg(AWAIT_CLIENT);
    }
    Ok(command)
}

/// The command that starts a VMM on the VM config at `config`.
pub(crate) fn vmm_command(config: &Path) -> Result<Command> {
    let mut command = Command::new(this_program()?);
    command.arg(VMM).arg(config);
    // Resolving a backtrace opens this program's file, which the VMM's
    // seccomp filters refuse: its errors and panics are said without one.
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    Ok(command)
}

/// The program this process runs, which is also the helpers'.
fn this_program() -> Result<PathBuf> {
    std::env::current_exe().context("cannot locate this program, which runs the runtime's helpers")
}
