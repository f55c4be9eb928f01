//! `hull exec` sessions, and those on the container's files (copies,
//! diff, export): once the container's process runs, or the container is
//! held for its files with none, the agent listens on vsock port
//! [`EXEC_PORT`] and runs one session per connection the host makes, each
//! starting a process in the container's namespaces
//! and cgroup with [`JoinLauncher`], held to the container's resource
//! limits and capabilities, which the agent keeps from the container's run
//! request (an exec request carries none), as Docker gives an exec the
//! container's.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread;

use anyhow::Context;
use hull_protocol::{Answer, CgroupLimits, Query, RunSpec, EXEC_PORT};
use nix::sys::socket::{
    accept, bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, VsockAddr,
};
use nix::unistd::{fork, Pid};

use super::init::{launch_under_init, Namespaces, Work};
use super::rootfs::{ROOT_DIR, UPPER_DIR};
use super::{cgroup, report};
use crate::exec::Command;
use crate::privileges::Privileges;
use crate::process::{Launch, Launcher};
use crate::session;
use crate::stdio::ChildStdio;

/// Serves exec sessions for the container whose init is `init` and whose
/// processes have `privileges`, in the background, for the rest of the
/// machine's life.
pub fn serve(init: Pid, privileges: Privileges) {
    let started = thread::Builder::new()
        .name("exec-listener".into())
        .spawn(move || {
            if let Err(err) = listen_and_serve(init, &privileges) {
                session::log_error("exec sessions", &err);
            }
        });
    if let Err(err) = started {
        session::log_error("starting the exec listener", &err.into());
    }
}

fn listen_and_serve(init: Pid, privileges: &Privileges) -> anyhow::Result<()> {
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
        let launcher = JoinLauncher {
            init,
            privileges: privileges.clone(),
        };
        let started = thread::Builder::new()
            .name("exec-session".into())
            .spawn(move || {
                if let Err(err) = session::run(connection, &launcher) {
                    session::log_error("exec session", &err);
                }
            });
        if let Err(err) = started {
            session::log_error("starting an exec session", &err.into());
        }
    }
}

/// Launches a process of `hull exec` in the namespaces of the container
/// whose init is `init`, under a small supervisor like the tiny init.
///
/// Unlike the container's launcher, this forks while other sessions' threads
/// run: the child only makes system calls and allocates (glibc's malloc is
/// fork-safe), as the tiny init's code does.
pub struct JoinLauncher {
    pub init: Pid,
    /// The container's resource limits and capabilities.
    pub privileges: Privileges,
}

impl Launcher for JoinLauncher {
    fn launch(&self, spec: &RunSpec, stdio: ChildStdio) -> anyhow::Result<Launch> {
        let proc_dir = format!("/proc/{}", self.init);
        let root = format!("{proc_dir}/root");
        let mut privileges = self.privileges.clone();
        if spec.privileged {
            privileges = privileges.with_every_capability();
        }
        let command = match Command::from_spec(spec, Path::new(&root), privileges) {
            Ok(command) => command,
            Err(failure) => return Ok(Launch::Failed(failure)),
        };
        // mnt last: joining it changes what /proc paths would mean.
        let namespaces = ["ipc", "uts", "cgroup", "pid", "mnt"]
            .iter()
            .map(|ns| {
                File::open(format!("{proc_dir}/ns/{ns}"))
                    .map(OwnedFd::from)
                    .with_context(|| format!("opening the container's {ns} namespace"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let fork_supervisor = || {
            // SAFETY: see the type's documentation.
            unsafe { fork() }.context("forking the exec supervisor")
        };
        launch_under_init(
            Work::Command(Box::new(command)),
            stdio,
            Namespaces::Join(namespaces),
            fork_supervisor,
        )
    }

    fn answer(&self, query: Query) -> anyhow::Result<Answer> {
        report::answer(query)
    }

    fn container_root(&self) -> Option<PathBuf> {
        Some(PathBuf::from(format!("/proc/{}/root", self.init)))
    }

    fn writable_layer(&self) -> Option<PathBuf> {
        Some(UPPER_DIR.into())
    }

    /// The overlay as mounted in the agent's mount namespace: the
    /// container's mounts are in its own.
    fn root_filesystem(&self) -> Option<PathBuf> {
        Some(ROOT_DIR.into())
    }

    fn set_frozen(&self, frozen: bool) -> anyhow::Result<()> {
        cgroup::set_frozen(frozen)
    }

    fn set_limits(&self, limits: &CgroupLimits) -> anyhow::Result<()> {
        cgroup::limit(limits)
    }
}
