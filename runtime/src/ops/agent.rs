//! A new session with a container's agent, over the VM's vsock (the VMM's
//! unix socket takes `CONNECT <port>` and answers `OK <port>` once the
//! guest accepts): for exec, top and stats, in a running container; for
//! copies and the container's file system (diff, commit, export), in any
//! state (a stopped one's files in a VM of their own); and the data the
//! agent sends back as a stream.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hull_protocol::copy::DataReader;
use hull_protocol::{ExitStatus, Message, EXEC_PORT};
use nix::fcntl::Flock;

use crate::container::{self, Container, Status};
use crate::error::{Error, Hint};
use crate::files_vm::FilesVm;
use crate::root::StateRoot;
use crate::session::{self, SessionWriter};

/// How long to retry while the container's process is still being started
/// (the agent takes sessions once it runs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// How long a command on a stopped container's files waits for its
/// writable layer while a boot or another such command holds it.
const LAYER_WAIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Opens a session stream to the agent of `container`, which must run.
pub(crate) fn connect(root: &StateRoot, container: &Container) -> Result<UnixStream> {
    if container.state()?.status != Status::Running {
        return Err(Error::NotRunning {
            name: container.short_id().to_owned(),
            hint: Hint::none(),
        }
        .into());
    }
    connect_to_exec_port(&root.vsock_path(container.id()))
        .with_context(|| format!("cannot reach container {}", container.short_id()))
}

/// A greeted session on the files of the container `name` (`needs` says
/// what for, as "copies need"): its running VM's agent's, or, for a created
/// or stopped container, that of a VM booted for its files alone
/// ([`FilesVm`]), which goes with the session.
pub(crate) fn file_system_session(
    root: &StateRoot,
    name: &str,
    needs: &str,
) -> crate::Result<FileSystemSession> {
    let container = container::find(root, name)?;
    let deadline = Instant::now() + LAYER_WAIT_TIMEOUT;
    loop {
        if !container.exists() {
            return Err(Error::NoSuchContainer(name.to_owned()));
        }
        let state = container.state()?;
        if state.status == Status::Running {
            // Its VM is frozen: its agent would never answer.
            if state.paused {
                return Err(Error::invalid(format!(
                    "container {name} is paused: {needs} its VM running; unpause it first (hull unpause {name})"
                )));
            }
            match connect(root, &container) {
                Ok(stream) => return FileSystemSession::greet(stream, None),
                // It stopped meanwhile: its files are a files VM's now.
                Err(_) if container.state()?.status != Status::Running => continue,
                Err(err) => return Err(err.into()),
            }
        }
        if let Some(layer) = lock_stopped(&container, name)? {
            let files_vm = FilesVm::boot(root, &container, layer)
                .with_context(|| format!("cannot boot a VM for the files of container {name}"))?;
            let stream = connect_to_exec_port(files_vm.vsock_path())
                .with_context(|| format!("cannot reach the files of container {name}"))?;
            return FileSystemSession::greet(stream, Some(files_vm));
        }
        if Instant::now() >= deadline {
            return Err(Error::invalid(format!(
                "container {name} is busy: it is starting, or another command works on its \
                 files; try again"
            )));
        }
        std::thread::sleep(CONNECT_RETRY_INTERVAL);
    }
}

/// The layer lock of `container` (named `name`), if no VM has its writable
/// layer nor boots on it: not held, and its state as recorded now says so
/// too (a monitor may hold it between runs). `None` while it is held, or
/// if the container went meanwhile (the caller then finds it gone).
fn lock_stopped(container: &Container, name: &str) -> crate::Result<Option<Flock<File>>> {
    let layer = match container.try_lock_layer() {
        Ok(Some(layer)) => layer,
        Ok(None) => return Ok(None),
        // Removed meanwhile, its lock file with it.
        Err(_) if !container.exists() => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    if !container.exists() {
        return Ok(None);
    }
    let state = container.state()?;
    // A `--rm` one whose removal is due.
    if container.config.auto_remove && state.monitor_died() {
        return Err(Error::NoSuchContainer(name.to_owned()));
    }
    Ok((state.status != Status::Running && state.monitor_pid().is_none()).then_some(layer))
}

/// A session with an agent that serves a container's files.
pub(crate) struct FileSystemSession {
    pub reader: UnixStream,
    pub writer: SessionWriter,
    /// The VM booted for a stopped container's files; dropped after the
    /// session's streams, it then powers off.
    _files_vm: Option<FilesVm>,
}

impl FileSystemSession {
    /// Greets the agent on `stream`, of `files_vm` if the container's files
    /// have a VM of their own.
    fn greet(stream: UnixStream, files_vm: Option<FilesVm>) -> crate::Result<FileSystemSession> {
        let (reader, writer) = session::greet(stream)?;
        Ok(FileSystemSession {
            reader,
            writer,
            _files_vm: files_vm,
        })
    }
}

/// Copies the data the agent sends in `Stdout` frames on `reader` into
/// `out`, up to the message that ends it, which must say it all went well;
/// `what` names the data in errors.
pub(crate) fn receive_data(reader: &mut UnixStream, out: &mut dyn Write, what: &str) -> Result<()> {
    let mut data = DataReader::new(reader);
    let copied = io::copy(&mut data, out)
        .and_then(|_| out.flush())
        .with_context(|| format!("cannot write {what}"));
    // The agent's reason for stopping explains the rest best.
    match data.finish().context("cannot read from the guest agent")? {
        Some(Message::Exited(ExitStatus::Code(0))) => {}
        Some(Message::Failed { reason, .. }) => {
            return Err(anyhow!("cannot take {what}: {reason}"))
        }
        Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
        None => bail!("the guest agent hung up while sending {what}"),
    }
    copied.map(drop)
}

fn connect_to_exec_port(vsock_socket: &Path) -> Result<UnixStream> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let mut stream = UnixStream::connect(vsock_socket)
            .with_context(|| format!("cannot connect to {}", vsock_socket.display()))?;
        stream.write_all(format!("CONNECT {EXEC_PORT}\n").as_bytes())?;
        match read_line(&mut stream)? {
            Some(line) if line.starts_with("OK ") => return Ok(stream),
            Some(line) => bail!("unexpected answer from the VMM: {line:?}"),
            // Refused: the agent does not listen yet.
            None if Instant::now() < deadline => std::thread::sleep(CONNECT_RETRY_INTERVAL),
            None => bail!("its agent takes no sessions"),
        }
    }
}

/// One short line, or `None` if the stream closes first.
fn read_line(stream: &mut UnixStream) -> Result<Option<String>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 64 {
        match stream.read(&mut byte)? {
            0 => return Ok(None),
            _ if byte[0] == b'\n' => return Ok(Some(String::from_utf8_lossy(&line).into_owned())),
            _ => line.push(byte[0]),
        }
    }
    bail!("the VMM's answer is too long")
}
