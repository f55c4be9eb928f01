//! The VMM's resource limits.
//!
//! - No core dumps: a crashing VMM would write the guest's memory to disk.
//! - At most [`MAX_OPEN_FILES`] descriptors, hard: the virtio-fs servers
//!   raise their soft limit up to the hard one for the inodes a guest looks
//!   up, and nothing can raise the hard limit again once the VMM's filters
//!   are in (`setrlimit` and `prlimit64` are on no allow-list).
//!
//! RLIMIT_FSIZE is not set: it would bound every file the VMM writes, the
//! guest's files in volumes and its scratch disk, not only its log.

use std::io;

use anyhow::{Context, Result};

/// The most descriptors a VMM may hold.
pub(crate) const MAX_OPEN_FILES: libc::rlim_t = 1 << 20;

/// Sets the calling process's limits (the VMM's, before it starts).
pub(crate) fn apply() -> Result<()> {
    set(libc::RLIMIT_CORE, 0, 0).context("cannot turn off the VMM's core dumps")?;
    let (soft, hard) = get(libc::RLIMIT_NOFILE).context("cannot read the VMM's open file limit")?;
    let hard = hard.min(MAX_OPEN_FILES);
    set(libc::RLIMIT_NOFILE, soft.min(hard), hard)
        .context("cannot cap the VMM's open file limit")?;
    Ok(())
}

fn get(resource: libc::__rlimit_resource_t) -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

fn set(
    resource: libc::__rlimit_resource_t,
    soft: libc::rlim_t,
    hard: libc::rlim_t,
) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_gets_no_core_dumps_and_a_bounded_open_file_limit() {
        // In a child, so the test process keeps its own limits.
        // SAFETY: the child makes syscalls only and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = apply().is_ok()
                && get(libc::RLIMIT_CORE).is_ok_and(|limits| limits == (0, 0))
                && get(libc::RLIMIT_NOFILE)
                    .is_ok_and(|(soft, hard)| soft <= hard && hard <= MAX_OPEN_FILES);
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
