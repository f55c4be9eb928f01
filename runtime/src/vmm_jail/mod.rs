//! What confines a VMM process from outside the VMM: its resource limits
//! ([`rlimits`], set by the `__vmm` helper on itself before it builds the
//! VM), where cgroup v2 is mounted a cgroup of its own ([`cgroup`], made
//! by the runtime and joined as the VMM starts), and its jail, which the
//! helper enters before it reads anything of the guest's: a PID namespace
//! of its own ([`pid_namespace`]), mount, IPC, UTS and network namespaces
//! with a root holding only this VM's files ([`filesystem`]), and only the
//! capabilities its file servers need ([`capabilities`]). The VMM's
//! threads then filter their own syscalls (`hull_vmm`'s seccomp
//! allow-lists).

mod capabilities;
pub(crate) mod cgroup;
mod filesystem;
pub(crate) mod pid_namespace;
pub(crate) mod rlimits;

use std::path::Path;

use anyhow::{bail, Result};
use hull_vmm::VmConfig;

/// The environment variable that turns the jail off (`off`), for bringing
/// up a device or a host the jail does not suit; on otherwise.
pub(crate) const JAIL_ENV: &str = "HULL_VMM_JAIL";

/// What [`enter`] made of the calling process.
pub(crate) enum Jailed {
    /// It is the VMM, jailed: it runs the VM of this config (its paths as
    /// the jail has them).
    Vmm(Box<VmConfig>),
    /// It is the helper outside, and the jailed VMM it forked has exited
    /// with this code.
    Ended(u8),
}

/// Jails the calling `__vmm` helper (single-threaded, root) for the VM
/// `config` describes, its run directory `run_dir`. The jailed VMM is a
/// child process: see [`pid_namespace`].
pub(crate) fn enter(config: VmConfig, run_dir: &Path) -> Result<Jailed> {
    match std::env::var(JAIL_ENV).as_deref() {
        Ok("off") => return Ok(Jailed::Vmm(Box::new(config))),
        Ok("on") | Err(_) => {}
        Ok(other) => bail!("{JAIL_ENV}={other} is not on or off"),
    }
    if let pid_namespace::Side::Waited(code) = pid_namespace::enter(run_dir)? {
        return Ok(Jailed::Ended(code));
    }
    let config = filesystem::enter(config, run_dir)?;
    capabilities::keep_only_file_server_set()?;
    Ok(Jailed::Vmm(Box::new(config)))
}
