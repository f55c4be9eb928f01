//! `hull exec` sessions: once the container's process runs, the agent
//! listens on vsock port [`EXEC_PORT`] and runs one session per connection
//! the host makes, each starting a process in the container's namespaces.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;

use anyhow::Context;
use hull_protocol::EXEC_PORT;
use nix::sys::socket::{
    accept, bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, VsockAddr,
};
use nix::unistd::Pid;

use super::init::JoinLauncher;
use crate::session;

/// Serves exec sessions for the container whose init is `init`, in the
/// background, for the rest of the machine's life.
pub fn serve(init: Pid) {
    let started = thread::Builder::new()
        .name("exec-listener".into())
        .spawn(move || {
            if let Err(err) = listen_and_serve(init) {
                session::log_error("exec sessions", &err);
            }
        });
    if let Err(err) = started {
        session::log_error("starting the exec listener", &err.into());
    }
}

fn listen_and_serve(init: Pid) -> anyhow::Result<()> {
    let listener = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("creating the exec socket")?;
    bind(
        listener.as_raw_fd(),
        &VsockAddr::new(libc::VMADDR_CID_ANY, EXEC_PORT),
    )
    .with_context(|| format!("binding vsock port {EXEC_PORT}"))?;
    listen(&listener, Backlog::new(16).expect("a valid backlog"))
        .context("listening for exec sessions")?;
    loop {
        let connection = match accept(listener.as_raw_fd()) {
            Ok(fd) => {
                // SAFETY: accept(2) returned a new fd that nothing else owns.
                File::from(unsafe { OwnedFd::from_raw_fd(fd) })
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("accepting an exec session"),
        };
        let started = thread::Builder::new()
            .name("exec-session".into())
            .spawn(move || {
                if let Err(err) = session::run(connection, &JoinLauncher { init }) {
                    session::log_error("exec session", &err);
                }
            });
        if let Err(err) = started {
            session::log_error("starting an exec session", &err.into());
        }
    }
}
