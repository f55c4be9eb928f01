//! What of root's privileges QEMU keeps: it runs as root, since its
//! writable 9p shares (`security_model=passthrough`) give the files the
//! guest makes their owners, modes, device nodes and xattrs, but with a
//! bounding set of only what that takes (and publishing low ports). Gone
//! are, among others, raw I/O (`/proc/kcore` read through the host's root
//! share), ptrace, module loading, network administration and the clock.

use anyhow::{Context, Result};
use caps::{CapSet, Capability};
use hull_runtime::bounding_set;

/// The capabilities QEMU keeps.
const KEPT: [Capability; 10] = [
    // Files made and changed as the guest's users, and read whatever their
    // modes, through the shares.
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_MKNOD,
    // security.capability xattrs (file capabilities in images).
    Capability::CAP_SETFCAP,
    // trusted.* xattrs (overlayfs' trusted.overlay.* in layers).
    Capability::CAP_SYS_ADMIN,
    // Writes into the file system's space reserved for root, as before.
    Capability::CAP_SYS_RESOURCE,
    // Published host ports below 1024 (`-p 80:80`).
    Capability::CAP_NET_BIND_SERVICE,
];

/// Limits the calling thread's bounding set to [`KEPT`] and empties its
/// inheritable and ambient sets, so that a process it starts as root (QEMU)
/// has no more. A thread that may not change its bounding set (not root)
/// starts processes without capabilities anyway, and is left as it is.
pub fn limit_for_qemu() -> Result<()> {
    let effective =
        caps::read(None, CapSet::Effective).context("cannot read this thread's capabilities")?;
    if !effective.contains(&Capability::CAP_SETPCAP) {
        return Ok(());
    }
    bounding_set::limit(&KEPT.into_iter().collect()).context("cannot limit QEMU's capabilities")
}
