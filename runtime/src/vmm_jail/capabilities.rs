//! The capabilities a jailed VMM keeps: those its virtio-fs servers need
//! to act on the shares' files as the guest's users (virtiofsd keeps the
//! same set), and no other. Without CAP_SYS_ADMIN it cannot mount or undo
//! its jail; without CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE,
//! CAP_KILL and the rest it cannot act on the host beyond those files. No
//! new privileges either: nothing it could exec gains any.

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

use crate::bounding_set;

/// What the virtio-fs servers use: ownership and modes of any file,
/// switching to the guest user's IDs to create files as that user, and
/// hard links made from a descriptor (`linkat` with `AT_EMPTY_PATH` takes
/// CAP_DAC_READ_SEARCH; what else it allows, `open_by_handle_at`, no
/// thread's seccomp filter lets through).
const FILE_SERVER: [Capability; 9] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_MKNOD,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
];

/// Limits the calling process (single-threaded) to [`FILE_SERVER`], for
/// good: bounding, permitted and effective sets, none inheritable or
/// ambient, and no new privileges.
pub(super) fn keep_only_file_server_set() -> Result<()> {
    let keep: CapsHashSet = FILE_SERVER.into_iter().collect();
    // The bounding set first: limiting it takes CAP_SETPCAP.
    bounding_set::limit(&keep).context("cannot limit the VMM's capabilities")?;
    let permitted = caps::read(None, CapSet::Permitted)
        .context("cannot read the VMM's permitted capabilities")?;
    let kept: CapsHashSet = permitted.intersection(&keep).copied().collect();
    // Effective first: it must stay within the permitted set.
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::set(None, set, &kept)
            .with_context(|| format!("cannot limit the VMM's {set:?} capabilities"))?;
    }
    // SAFETY: prctl with integer arguments takes no pointers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot deny the VMM new privileges");
    }
    Ok(())
}
