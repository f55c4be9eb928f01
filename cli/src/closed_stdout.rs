//! `hull images | head -1`: once the reader of hull's stdout is gone,
//! printing fails with EPIPE (Rust ignores SIGPIPE), which `println!`
//! turns into a panic and `writeln!` into an error line. Docker, a Go
//! program, just dies of the SIGPIPE; so does hull, quietly, when it is
//! stdout that is closed (an EPIPE on a socket stays an error).

use std::io;
use std::os::fd::RawFd;

/// Ends the process as SIGPIPE ends it when a panic is `println!`'s failure
/// to write a closed stdout; other panics go to the default hook.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && stdout_closed() {
            die_of_sigpipe();
        }
        default(info);
    }));
}

/// Ends the process as SIGPIPE ends it if `err` is a broken pipe and the
/// pipe is stdout's.
pub fn end_if_stdout_closed(err: &anyhow::Error) {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|err| err.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken_pipe && stdout_closed() {
        die_of_sigpipe();
    }
}

/// Whether stdout is a pipe or socket whose other end is gone.
fn stdout_closed() -> bool {
    other_end_gone(libc::STDOUT_FILENO)
}

/// Whether `fd` is a pipe or socket whose other end is gone.
fn other_end_gone(fd: RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: poll(2) on one pollfd this function owns, without waiting.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready == 1 && poll.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Dies of SIGPIPE, as a process that never ignored it would have.
fn die_of_sigpipe() -> ! {
    // SAFETY: restoring a signal's default action and raising it touch no
    // memory of this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached: SIGPIPE's default action ends the process.
    std::process::exit(128 + libc::SIGPIPE)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn a_pipe_whose_reader_is_gone_is_told_from_an_open_one() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        assert!(!other_end_gone(writer.as_raw_fd()));
        drop(reader);
        assert!(other_end_gone(writer.as_raw_fd()));
    }
}
