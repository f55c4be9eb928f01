//! The runtime's helper processes: a container's monitor (`__monitor`),
//! which holds its VM while it runs in the background, and the VMM
//! (`__vmm`), one process per VM.
//!
//! The runtime starts them by running the program it is part of again,
//! with the helper's name as the first argument. A program that uses the
//! runtime therefore calls [`dispatch`] first thing in `main`, before it
//! parses its own arguments, as hull's CLI does; the same binary is then
//! both a front end and the runtime's helpers (the re-exec pattern of
//! runc's `init` and Docker's `reexec`).

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result};

use crate::helper_command::{AWAIT_CLIENT, MONITOR, VMM};
use crate::monitor;
use crate::root::StateRoot;
use crate::vmm_jail::{self, Jailed};

/// Runs the helper this process was started as, if it was started as one:
/// `Some` with how it ended (the caller exits with the code, or non-zero
/// on an error, which goes to the helper's log on stderr), `None` for any
/// other command line.
pub fn dispatch() -> Option<Result<u8>> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first()?.to_str()? {
        MONITOR => Some(match &args[1..] {
            [root, id, rest @ ..] if rest.is_empty() || rest == [AWAIT_CLIENT] => id
                .to_str()
                .context("the container ID is not UTF-8")
                .and_then(|id| {
                    let awaits_client = !rest.is_empty();
                    monitor::run_detached(&StateRoot::new(root.into()), id, awaits_client)
                })
                .map(|()| 0),
            _ => Err(anyhow::anyhow!(
                "usage: {MONITOR} ROOT CONTAINER_ID [{AWAIT_CLIENT}]"
            )),
        }),
        VMM => Some(match &args[1..] {
            [config] => run_vmm(Path::new(config)),
            _ => Err(anyhow::anyhow!("usage: {VMM} CONFIG")),
        }),
        _ => None,
    }
}

/// `__vmm CONFIG`: runs one VM from its JSON config (in the VM's run
/// directory), under its resource limits, in its jail.
fn run_vmm(config_path: &Path) -> Result<u8> {
    vmm_jail::rlimits::apply()?;
    let json = std::fs::read(config_path)
        .with_context(|| format!("cannot read VM config {}", config_path.display()))?;
    let config: hull_vmm::VmConfig = serde_json::from_slice(&json)
        .with_context(|| format!("invalid VM config {}", config_path.display()))?;
    let run_dir = config_path
        .parent()
        .context("the VM config is not in a run directory")?;
    match vmm_jail::enter(config, run_dir)? {
        Jailed::Vmm(config) => {
            hull_vmm::run(*config)?;
            Ok(0)
        }
        Jailed::Ended(code) => Ok(code),
    }
}
