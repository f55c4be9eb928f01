//! The three pipes between the agent and the container's process.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

/// The agent's ends: it writes the process's stdin and reads its output.
pub struct HostStdio {
    pub stdin: File,
    pub stdout: File,
    pub stderr: File,
}

/// The process's ends, to become its fds 0, 1 and 2.
pub struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl ChildStdio {
    /// The raw fds, in the order of the fds they become (0, 1, 2).
    pub fn raw_fds(&self) -> [RawFd; 3] {
        [
            self.stdin.as_raw_fd(),
            self.stdout.as_raw_fd(),
            self.stderr.as_raw_fd(),
        ]
    }
}

/// Creates the pipes. All ends are close-on-exec: the child's ends become
/// 0, 1 and 2 through `dup2`, which clears the flag on the copies only.
pub fn pipes() -> io::Result<(HostStdio, ChildStdio)> {
    let (stdin_read, stdin_write) = pipe2(OFlag::O_CLOEXEC)?;
    let (stdout_read, stdout_write) = pipe2(OFlag::O_CLOEXEC)?;
    let (stderr_read, stderr_write) = pipe2(OFlag::O_CLOEXEC)?;
    let host = HostStdio {
        stdin: stdin_write.into(),
        stdout: stdout_read.into(),
        stderr: stderr_read.into(),
    };
    let child = ChildStdio {
        stdin: stdin_read,
        stdout: stdout_write,
        stderr: stderr_write,
    };
    Ok((host, child))
}

/// Opens /dev/null on whichever of fds 0, 1 and 2 is closed, so that pipes
/// never get those numbers and `dup2` onto them cannot clobber one another.
pub fn ensure_standard_fds() -> io::Result<()> {
    for fd in 0..=2 {
        if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
            continue;
        }
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        // open(2) returns the lowest free fd, which is `fd`: keep it open for
        // the life of the agent.
        let opened = std::os::fd::IntoRawFd::into_raw_fd(null);
        if opened != fd {
            return Err(io::Error::other(format!(
                "/dev/null opened as fd {opened} instead of the closed fd {fd}"
            )));
        }
    }
    Ok(())
}
