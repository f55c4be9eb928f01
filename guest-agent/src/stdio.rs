//! What connects the agent and the container's process: three pipes, or
//! one pseudo-terminal (`-t`); nothing, for a detached process (`exec -d`),
//! whose streams are /dev/null.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use hull_protocol::TerminalSize;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::{openpty, Winsize};
use nix::unistd::pipe2;

/// The agent's ends: it writes the process's stdin and reads its output.
pub struct HostStdio {
    pub stdin: File,
    pub stdout: File,
    /// `None` on a terminal, where stderr goes to `stdout` too.
    pub stderr: Option<File>,
    /// The terminal's master side, to resize it; `None` with pipes.
    pub terminal: Option<Terminal>,
}

/// The process's ends, to become its fds 0, 1 and 2.
pub struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Whether they are a terminal, to become the process's controlling
    /// terminal.
    pub is_terminal: bool,
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
        stderr: Some(stderr_read.into()),
        terminal: None,
    };
    let child = ChildStdio {
        stdin: stdin_read,
        stdout: stdout_write,
        stderr: stderr_write,
        is_terminal: false,
    };
    Ok((host, child))
}

/// The streams of a detached process: /dev/null, read-write, as fds 0, 1
/// and 2, as Docker gives an `exec -d` process no stdin and discards its
/// output. Close-on-exec, as the pipes are.
pub fn null() -> io::Result<ChildStdio> {
    let open = || -> io::Result<OwnedFd> {
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        Ok(null.into())
    };
    Ok(ChildStdio {
        stdin: open()?,
        stdout: open()?,
        stderr: open()?,
        is_terminal: false,
    })
}

/// Opens a pseudo-terminal of `size` from the machine's /dev/pts (which
/// the container shares). Both sides are close-on-exec, as the pipes are.
pub fn terminal(size: TerminalSize) -> io::Result<(HostStdio, ChildStdio)> {
    let pty = openpty(Some(&winsize(size)), None)?;
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    let master = File::from(pty.master);
    let host = HostStdio {
        stdin: master.try_clone()?,
        stdout: master.try_clone()?,
        stderr: None,
        terminal: Some(Terminal(master)),
    };
    let child = ChildStdio {
        stdin: pty.slave.try_clone()?,
        stdout: pty.slave.try_clone()?,
        stderr: pty.slave,
        is_terminal: true,
    };
    Ok((host, child))
}

/// The master side of the process's pseudo-terminal.
pub struct Terminal(File);

impl Terminal {
    /// Sets the terminal's size; the kernel signals SIGWINCH to the
    /// terminal's foreground process group.
    pub fn resize(&self, size: TerminalSize) -> io::Result<()> {
        let winsize = winsize(size);
        // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer,
        // which points at a live, initialized one.
        let result = unsafe { libc::ioctl(self.0.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &winsize) };
        if result == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Terminal {
    /// Reads and drops everything the process writes on the terminal until
    /// every fd of its side is closed (the master then reads EIO, or end of
    /// file), so that a detached process (`exec -d -t`) never blocks on a
    /// full terminal, and never loses its terminal while it runs. Blocks the
    /// calling thread until then.
    pub fn discard_output(mut self) -> io::Result<()> {
        let mut buf = [0; 4096];
        loop {
            match io::Read::read(&mut self.0, &mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.raw_os_error() == Some(libc::EIO) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
}

fn winsize(size: TerminalSize) -> Winsize {
    Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;
    use std::thread;

    use super::*;

    #[test]
    fn null_streams_are_dev_null_open_both_ways_and_close_on_exec() {
        let stdio = null().unwrap();
        assert!(!stdio.is_terminal);
        let dev_null = std::fs::metadata("/dev/null").unwrap().rdev();
        for fd in [&stdio.stdin, &stdio.stdout, &stdio.stderr] {
            let flags =
                FdFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD).unwrap());
            assert!(flags.contains(FdFlag::FD_CLOEXEC));
            let mut file = File::from(fd.try_clone().unwrap());
            assert_eq!(file.metadata().unwrap().rdev(), dev_null);
            assert!(fd.as_raw_fd() > 2);
            file.write_all(b"discarded").unwrap();
            let mut read = Vec::new();
            assert_eq!(file.read_to_end(&mut read).unwrap(), 0);
        }
    }

    #[test]
    fn a_detached_terminal_drains_until_its_process_side_closes() {
        let (host, child) = terminal(TerminalSize { rows: 24, cols: 80 }).unwrap();
        let terminal = host.terminal.unwrap();
        drop((host.stdin, host.stdout));
        let drainer = thread::spawn(move || terminal.discard_output());
        // Far more than a terminal buffers: the writer would block forever
        // if nobody read.
        let mut slave = File::from(child.stdout);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..32 {
            slave.write_all(&chunk).unwrap();
        }
        drop((slave, child.stdin, child.stderr));
        drainer.join().unwrap().unwrap();
    }
}
