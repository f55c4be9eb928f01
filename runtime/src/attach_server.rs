//! The attach socket of a detached container (`<run dir>/attach.sock`):
//! its monitor relays the process's output to every `hull attach` client
//! and their input, resizes and signals to the process.
//!
//! Clients speak the agent protocol: the server greets first, the client
//! answers, then the server sends `Stdout`/`Stderr` and finally how the
//! process ended, while the client sends `Stdin`, `Resize` and `Signal`.
//! A client's `StdinClose` and `Shutdown` are its own: the process's stdin
//! stays open for the others; but the awaited client's `StdinClose` (the
//! caller a run was started for) closes it, as Docker's `StdinOnce` does
//! for `run -i`, and so does its leaving without a terminal.
//!
//! A run started for a caller that joins it at once (`hull run -it`) waits
//! for that client before its process starts ([`AttachServer::await_client`]),
//! so that the client sees all of its output.

use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hull_protocol::{read_message, write_message, Message};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::session::{self, OutputSink, SessionEnd, SessionWriter};

/// A client that takes longer than this to accept output is dropped, so
/// that it cannot stall the container or its log; not the awaited one,
/// the caller the run was started for, which holds it back as a caller
/// holding the container would (a paused terminal, a pager).
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an awaited client may take to greet once connected.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a wait for a client looks whether to give up.
const AWAIT_INTERVAL: Duration = Duration::from_millis(100);

/// The attach socket's path in a container's runtime directory.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join("attach.sock")
}

pub struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    clients: Clients,
    /// Clients that greeted before [`AttachServer::serve`]: their input
    /// waits for the process.
    awaited: Mutex<Vec<(UnixStream, StdinClose)>>,
    /// Set when the server is dropped: its accept thread then ends.
    closed: Arc<AtomicBool>,
}

/// The write sides of the clients that greeted.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<Vec<UnixStream>>>);

impl Clients {
    /// Sends `message` to every client; drops those that fail to take it,
    /// hanging up on them so that they learn it.
    fn broadcast(&self, message: &Message) {
        let mut clients = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        clients.retain_mut(|client| {
            let sent = write_message(client, message).is_ok();
            if !sent {
                let _ = client.shutdown(Shutdown::Both);
            }
            sent
        });
    }

    fn add(&self, client: UnixStream) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(client);
    }
}

impl AttachServer {
    /// Listens on `path`, which must not exist (it is in a fresh runtime
    /// directory).
    pub fn bind(path: &Path) -> Result<AttachServer> {
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(AttachServer {
            listener,
            path: path.to_owned(),
            clients: Clients::default(),
            awaited: Mutex::default(),
            closed: Arc::default(),
        })
    }

    /// Waits until a client has connected and greeted, for at most
    /// `timeout`, or until `give_up` says to; that client gets the
    /// process's output from its start, and its input's end is the
    /// process's, as is its leaving if the process has no `terminal`.
    /// Returns whether one came.
    pub fn await_client(
        &self,
        timeout: Duration,
        give_up: impl Fn() -> bool,
        terminal: bool,
    ) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !give_up() {
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            let wait = PollTimeout::try_from(AWAIT_INTERVAL).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, wait) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(err) => return Err(err).context("cannot wait on the attach socket"),
            }
            let (client, _) = self
                .listener
                .accept()
                .context("cannot accept on the attach socket")?;
            client.set_read_timeout(Some(GREETING_TIMEOUT))?;
            // One that does not greet is not the caller: wait on.
            if let Ok(Some(reader)) = greet_client(client, &self.clients, None) {
                reader.set_read_timeout(None)?;
                let stdin_close = StdinClose::Forward {
                    on_hang_up: !terminal,
                };
                self.awaited
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((reader, stdin_close));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes clients in the background from now on; what they send goes
    /// to the process through `process`.
    pub fn serve(&self, process: SessionWriter) -> Result<()> {
        let listener = self
            .listener
            .try_clone()
            .context("cannot share the attach socket")?;
        let awaited =
            std::mem::take(&mut *self.awaited.lock().unwrap_or_else(PoisonError::into_inner));
        for (reader, stdin_close) in awaited {
            let process = process.clone();
            thread::Builder::new()
                .name("attach-client".into())
                .spawn(move || relay_input(reader, &process, stdin_close))
                .context("cannot start an attach client's thread")?;
        }
        let (clients, closed) = (self.clients.clone(), self.closed.clone());
        thread::Builder::new()
            .name("attach".into())
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    if closed.load(Ordering::SeqCst) {
                        return;
                    }
                    let (clients, process) = (clients.clone(), process.clone());
                    // A client that cannot be served is simply not attached.
                    let _ = thread::Builder::new()
                        .name("attach-client".into())
                        .spawn(move || serve_client(client, &clients, &process));
                }
            })
            .context("cannot start the attach thread")?;
        Ok(())
    }

    /// Where the process's output goes besides the log.
    pub fn output(&self) -> impl OutputSink {
        AttachedOutput(self.clients.clone())
    }

    /// Tells every client how the process ended.
    pub fn finish(&self, end: &SessionEnd) {
        let message = match end {
            SessionEnd::Exited { status, .. } => Message::Exited(*status),
            SessionEnd::Failed { code, reason } => Message::Failed {
                code: *code,
                reason: reason.clone(),
            },
            SessionEnd::Detached => return,
        };
        self.clients.broadcast(&message);
    }
}

impl Drop for AttachServer {
    /// Ends the accept thread: it sees `closed` once woken by a connection.
    /// Drop the server before its socket's directory is removed.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
    }
}

fn serve_client(client: UnixStream, clients: &Clients, process: &SessionWriter) -> Result<()> {
    match greet_client(client, clients, Some(CLIENT_WRITE_TIMEOUT))? {
        Some(reader) => relay_input(reader, process, StdinClose::Own),
        None => Ok(()),
    }
}

/// Greets `client` and, if it answers as a peer of this version, adds it
/// to `clients`, its writes bounded by `write_timeout`; returns its read
/// side.
fn greet_client(
    client: UnixStream,
    clients: &Clients,
    write_timeout: Option<Duration>,
) -> Result<Option<UnixStream>> {
    let mut reader = client.try_clone()?;
    let mut writer = client;
    writer.set_write_timeout(Some(GREETING_TIMEOUT))?;
    write_message(&mut writer, &session::hello())?;
    match read_message(&mut reader)? {
        Some(Message::Hello(hello)) if hello.version == hull_protocol::VERSION => {}
        _ => return Ok(None),
    }
    writer.set_write_timeout(write_timeout)?;
    clients.add(writer);
    Ok(Some(reader))
}

/// What a client's end of input means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StdinClose {
    /// The end of the process's input, as is the client's leaving if
    /// `on_hang_up`.
    Forward { on_hang_up: bool },
    /// The end of this client's input only.
    Own,
}

/// Passes what a client sends on to the process until it leaves.
fn relay_input(
    mut reader: UnixStream,
    process: &SessionWriter,
    stdin_close: StdinClose,
) -> Result<()> {
    let relayed = relay_messages(&mut reader, process, stdin_close);
    if stdin_close == (StdinClose::Forward { on_hang_up: true }) {
        // Gone, whether it said so or broke off: the process reads no more.
        let _ = process.send(&Message::StdinClose);
    }
    // A client that detached (or said nothing more) waits for the end of
    // its output; the next broadcast to it fails and drops it. One whose
    // input could not be passed on still gets how the process ended.
    if relayed.is_ok() {
        let _ = reader.shutdown(Shutdown::Both);
    }
    relayed
}

fn relay_messages(
    reader: &mut UnixStream,
    process: &SessionWriter,
    stdin_close: StdinClose,
) -> Result<()> {
    while let Some(message) = read_message(reader)? {
        match message {
            Message::Stdin(_) | Message::Resize(_) | Message::Signal(_) => {
                process.send(&message)?
            }
            Message::StdinClose => match stdin_close {
                StdinClose::Forward { .. } => process.send(&message)?,
                StdinClose::Own => {}
            },
            _ => break,
        }
    }
    Ok(())
}

/// The process's output, copied to the attached clients.
struct AttachedOutput(Clients);

impl OutputSink for AttachedOutput {
    fn stdout(&mut self, data: &[u8]) {
        self.0.broadcast(&Message::Stdout(data.to_vec()));
    }

    fn stderr(&mut self, data: &[u8]) {
        self.0.broadcast(&Message::Stderr(data.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that greets as `hull attach` does, then reads what comes.
    fn greeting_client(path: &Path) -> thread::JoinHandle<Vec<Message>> {
        let path = path.to_owned();
        thread::spawn(move || {
            let mut stream = UnixStream::connect(path).unwrap();
            let mut received = vec![read_message(&mut stream).unwrap().unwrap()];
            write_message(&mut stream, &session::hello()).unwrap();
            while let Ok(Some(message)) = read_message(&mut stream) {
                received.push(message);
            }
            received
        })
    }

    #[test]
    fn an_awaited_client_gets_the_output_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(dir.path());
        let server = AttachServer::bind(&path).unwrap();
        let client = greeting_client(&path);
        assert!(server
            .await_client(Duration::from_secs(10), || false, true)
            .unwrap());
        let mut output = server.output();
        output.stdout(b"first");
        server.finish(&SessionEnd::Exited {
            status: hull_protocol::ExitStatus::Code(0),
            oom_killed: false,
        });
        // The client's end of file: the server and its output are gone.
        drop((server, output));
        let received = client.join().unwrap();
        assert!(matches!(received[0], Message::Hello(_)), "{received:?}");
        assert_eq!(
            received[1..],
            [
                Message::Stdout(b"first".to_vec()),
                Message::Exited(hull_protocol::ExitStatus::Code(0))
            ]
        );
    }

    #[test]
    fn the_wait_for_a_client_gives_up_when_told_to_or_at_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let server = AttachServer::bind(&socket_path(dir.path())).unwrap();
        assert!(!server
            .await_client(Duration::from_secs(60), || true, true)
            .unwrap());
        assert!(!server
            .await_client(Duration::from_millis(300), || false, true)
            .unwrap());
    }

    /// The messages the process gets from `server`'s clients, as its
    /// session writer's peer reads them, until the server is dropped.
    fn process_side(server: &AttachServer) -> UnixStream {
        let (process, agent) = UnixStream::pair().unwrap();
        server.serve(SessionWriter::over(process)).unwrap();
        agent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        agent
    }

    #[test]
    fn the_awaited_clients_leaving_ends_the_input_of_a_process_without_a_terminal() {
        for (terminal, expected) in [(false, Some(Message::StdinClose)), (true, None)] {
            let dir = tempfile::tempdir().unwrap();
            let path = socket_path(dir.path());
            let server = AttachServer::bind(&path).unwrap();
            let client = thread::spawn({
                let path = path.clone();
                move || {
                    let mut stream = UnixStream::connect(path).unwrap();
                    read_message(&mut stream).unwrap();
                    write_message(&mut stream, &session::hello()).unwrap();
                    write_message(&mut stream, &Message::Stdin(b"x".to_vec())).unwrap();
                    // Gone without a StdinClose, as a killed caller goes.
                }
            });
            assert!(server
                .await_client(Duration::from_secs(10), || false, terminal)
                .unwrap());
            let mut agent = process_side(&server);
            client.join().unwrap();
            assert_eq!(
                read_message(&mut agent).unwrap(),
                Some(Message::Stdin(b"x".to_vec()))
            );
            agent
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            assert_eq!(
                read_message(&mut agent).ok().flatten(),
                expected,
                "{terminal}"
            );
        }
    }
}
