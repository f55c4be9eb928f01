//! Relay mode: the session over a serial port, a unix socket or standard
//! input (a connection the relay listener accepted), running the process
//! directly (no mounts, no namespaces), for the KVM test host and the hull
//! machine.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::Context;
use hull_protocol::RunSpec;
use nix::unistd::{dup2, fork};

use crate::exec::Command;
use crate::privileges::Privileges;
use crate::process::{await_start, in_forked_child, start_report_pipe, Launch, Launcher, Process};
use crate::reaper::{self, Forked};
use crate::session;
use crate::stdio::{self, ChildStdio};

/// Runs one session on the channel at `path` and returns when it is over.
/// A detached process (`RunDetached`) outlives the agent, which exits after
/// its session, unless it runs on a terminal, or was detached from (the
/// detach keys): the agent drains its output (see
/// [`session::wait_for_detached_output`]) until the process side closes
/// it, and returns only then.
pub fn run(path: &Path) -> anyhow::Result<()> {
    stdio::ensure_standard_fds().context("opening /dev/null for closed standard fds")?;
    let channel = open_channel(path)?;
    let result = session::run(channel, &RelayLauncher);
    session::wait_for_detached_output();
    result
}

/// The channel argument that means standard input.
const STDIN_CHANNEL: &str = "-";

/// Takes standard input if `path` is `-` (leaving /dev/null in its place),
/// connects to `path` if it is a unix socket, else opens it read-write (a
/// virtio-serial port such as /dev/virtio-ports/NAME).
fn open_channel(path: &Path) -> anyhow::Result<File> {
    if path.as_os_str() == STDIN_CHANNEL {
        let channel = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating standard input")?;
        let null = File::open("/dev/null").context("opening /dev/null")?;
        dup2(null.as_raw_fd(), libc::STDIN_FILENO).context("replacing standard input")?;
        return Ok(File::from(channel));
    }
    let is_socket = std::fs::metadata(path)
        .with_context(|| format!("channel {}", path.display()))?
        .file_type()
        .is_socket();
    let channel = if is_socket {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connecting to {}", path.display()))?;
        File::from(OwnedFd::from(stream))
    } else {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?
    };
    Ok(channel)
}

/// Forks and execs the process as a direct child of the agent.
struct RelayLauncher;

impl Launcher for RelayLauncher {
    fn launch(&self, spec: &RunSpec, stdio: ChildStdio) -> anyhow::Result<Launch> {
        anyhow::ensure!(
            spec.rootfs.is_none(),
            "relay mode runs processes in its own root; it cannot assemble a container root"
        );
        let command = match Command::from_spec(spec, Path::new("/"), Privileges::default()) {
            Ok(command) => command,
            Err(failure) => return Ok(Launch::Failed(failure)),
        };
        let (report, reporter) = start_report_pipe().context("creating the start report pipe")?;
        let forked = reaper::fork_watched(|| {
            // SAFETY: the agent is single-threaded while it launches (see
            // `Launcher::launch`), so the child's copy holds no lock it uses.
            unsafe { fork() }.context("forking the process")
        })?;
        match forked {
            Forked::Child => in_forked_child(|| command.exec(&stdio, &reporter)),
            Forked::Parent { pid, child } => {
                drop((stdio, reporter));
                await_start(Process::new(pid, child, None), report)
            }
        }
    }
}
