//! Child processes that hold a VM (the VMM, the KVM test host's QEMU) must
//! not outlive `hull`, and must not get the terminal's signals: `hull`
//! forwards those to the container's process itself.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child that `command` starts leave this terminal's session and
/// get SIGKILL when the thread that started it dies (call it from the main
/// thread).
pub fn tie_to_this_process(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || die_with_parent(parent));
    }
}

/// Makes the child that `command` starts lead a session of its own, with no
/// controlling terminal: it outlives this command, the terminal and the
/// user's login session (a detached container's monitor, the hull machine's
/// supervisor).
pub fn detach_from_terminal(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setsid(2), which is async-signal-safe and takes no pointers.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes the child that `command` starts keep `fds` open, under the same
/// numbers, across its exec.
pub fn inherit_fds(command: &mut Command, fds: &[OwnedFd]) {
    let fds: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    if fds.is_empty() {
        return;
    }
    // SAFETY: the closure runs in the forked child before exec and only
    // calls fcntl(2), which is async-signal-safe, on descriptors the
    // parent keeps open until the child has started.
    unsafe {
        command.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

fn die_with_parent(parent: u32) -> io::Result<()> {
    // SAFETY: setsid, prctl and getppid take no pointers.
    unsafe {
        if libc::setsid() < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
            return Err(io::Error::last_os_error());
        }
        // The parent may have died before prctl took effect.
        if u32::try_from(libc::getppid()).ok() != Some(parent) {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
    }
    Ok(())
}
