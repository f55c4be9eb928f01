//! The VMM as PID 1 of a PID namespace of its own: it sees no other
//! process, and whatever it forked would die with it.
//!
//! A process cannot move itself into a new PID namespace, only its
//! children, so the `__vmm` helper forks once: the child goes on to build
//! and run the VM, jailed; the parent stays outside, does nothing but
//! wait, and ends as the child did (its exit code; a signal that killed
//! it is said in the VMM's log), so to the runtime the helper is still
//! one process that ends with its VM.
//! The child dies with the parent (SIGKILL), and the parent records the
//! child's PID as the host sees it in [`PID_FILE`] before letting it run:
//! `pause` stops that process, not the waiting one.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// The file in the VMM's run directory holding the PID of the process that
/// runs the VM.
pub(crate) const PID_FILE: &str = "vmm.pid";

/// Which side of the fork this process is on.
pub(super) enum Side {
    /// The child: PID 1 of the new namespace, to build and run the VM.
    Jailed,
    /// The parent, once the child has exited with this code.
    Waited(u8),
}

/// Forks into a new PID namespace. The child returns at once; the parent
/// returns once the child has exited, with its code (a child killed by a
/// signal is an error naming it). Call it while the process has a single
/// thread.
pub(super) fn enter(run_dir: &Path) -> Result<Side> {
    unshare(CloneFlags::CLONE_NEWPID).context("cannot make a PID namespace for the VMM")?;
    let (mut parent_end, mut child_end) =
        UnixStream::pair().context("cannot make the VMM's start-up channel")?;
    // SAFETY: the helper has started no thread yet, so the child gets a
    // consistent copy of the whole process and may do anything.
    match unsafe { fork() }.context("cannot fork the VMM into its PID namespace")? {
        ForkResult::Child => {
            drop(parent_end);
            // SAFETY: prctl with an integer argument takes no pointers.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } < 0 {
                return Err(std::io::Error::last_os_error())
                    .context("cannot tie the VMM to its helper");
            }
            // Tied from here on; the parent answers once it has seen that,
            // and a parent that died before cannot answer.
            child_end
                .write_all(b"t")
                .context("the VMM's helper is gone")?;
            let mut go = [0u8];
            child_end
                .read_exact(&mut go)
                .context("the VMM's helper is gone")?;
            Ok(Side::Jailed)
        }
        ForkResult::Parent { child } => {
            drop(child_end);
            let started = release(&mut parent_end, run_dir, child);
            drop(parent_end);
            if let Err(e) = started {
                // The child fails its read and exits; its status is not
                // the news.
                let _ = waitpid(child, None);
                return Err(e);
            }
            wait_for(child).map(Side::Waited)
        }
    }
}

/// Waits for the child to be tied to this process, records its PID and
/// lets it go on.
fn release(channel: &mut UnixStream, run_dir: &Path, child: Pid) -> Result<()> {
    let mut tied = [0u8];
    channel
        .read_exact(&mut tied)
        .context("the VMM died as it started")?;
    let path = run_dir.join(PID_FILE);
    let staging = run_dir.join(format!("{PID_FILE}.new"));
    fs::write(&staging, child.to_string())
        .and_then(|()| fs::rename(&staging, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    channel
        .write_all(b"g")
        .context("the VMM died as it started")
}

/// Waits for `child` to end: its exit code, or an error naming the signal
/// that killed it.
fn wait_for(child: Pid) -> Result<u8> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code as u8),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                bail!("the jailed VMM was killed by {signal}")
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("cannot wait for the jailed VMM"),
        }
    }
}

/// The PID of the process that runs the VM started in `run_dir`, if it
/// recorded one.
pub(crate) fn read(run_dir: &Path) -> Option<u32> {
    fs::read_to_string(run_dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_pid_is_read_back_and_anything_else_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        fs::write(dir.path().join(PID_FILE), "4242").unwrap();
        assert_eq!(read(dir.path()), Some(4242));
        fs::write(dir.path().join(PID_FILE), "x").unwrap();
        assert_eq!(read(dir.path()), None);
    }
}
