//! The attach socket of a detached container (`<run dir>/attach.sock`):
//! its monitor relays the process's output to every `hull attach` client
//! and their input, resizes and signals to the process.
//!
//! Clients speak the agent protocol: the server greets first, the client
//! answers, then the server sends `Stdout`/`Stderr` and finally how the
//! process ended, while the client sends `Stdin`, `Resize` and `Signal`.
//! A client's `StdinClose` and `Shutdown` are its own: the process's stdin
//! stays open for the others.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use hull_protocol::{read_message, write_message, Message};

use crate::session::{self, OutputSink, SessionEnd, SessionWriter};

/// A client that takes longer than this to accept output is dropped, so
/// that it cannot stall the container or its log.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The attach socket's path in a container's runtime directory.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join("attach.sock")
}

pub struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    clients: Clients,
    /// Set when the server is dropped: its accept thread then ends.
    closed: Arc<AtomicBool>,
}

/// The write sides of the clients that greeted.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<Vec<UnixStream>>>);

impl Clients {
    /// Sends `message` to every client; drops those that fail to take it.
    fn broadcast(&self, message: &Message) {
        let mut clients = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        clients.retain_mut(|client| write_message(client, message).is_ok());
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
            closed: Arc::default(),
        })
    }

    /// Takes clients in the background from now on; what they send goes
    /// to the process through `process`.
    pub fn serve(&self, process: SessionWriter) -> Result<()> {
        let listener = self
            .listener
            .try_clone()
            .context("cannot share the attach socket")?;
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
    let mut reader = client.try_clone()?;
    let mut writer = client;
    writer.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT))?;
    write_message(&mut writer, &session::hello())?;
    match read_message(&mut reader)? {
        Some(Message::Hello(hello)) if hello.version == hull_protocol::VERSION => {}
        _ => return Ok(()),
    }
    clients.add(writer);
    while let Some(message) = read_message(&mut reader)? {
        match message {
            Message::Stdin(_) | Message::Resize(_) | Message::Signal(_) => {
                process.send(&message)?
            }
            Message::StdinClose => {}
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
