//! The host side of one agent session: start a process in the guest (or
//! join one through a monitor's attach socket) and connect it to the
//! caller's input, output, resizes and signals until it ends.
//!
//! Nothing here assumes a terminal: input is any reader, output any
//! [`OutputSink`], resizes and signals arrive on channels. Raw mode and
//! SIGWINCH are the front end's business.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crossbeam_channel::{Receiver, Sender};
use hull_protocol::{
    read_message, write_message, Answer, ExitStatus, Hello, Message, Query, RunSpec, TerminalSize,
    MAX_BODY,
};

use crate::detach_keys::{DetachKeys, DetachScanner, Scanned};
use crate::signals::Signals;

/// How long a session that detached waits for its peer to close it.
const DETACH_GRACE: Duration = Duration::from_secs(5);

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The process ran and ended this way; `oom_killed`: the kernel killed
    /// one of the container's processes for want of memory meanwhile.
    Exited {
        /// Its exit code or signal.
        status: ExitStatus,
        /// Whether the kernel killed a process for want of memory.
        oom_killed: bool,
    },
    /// The process could not be started; `code` is what a shell would return.
    Failed {
        /// 127: not found, 126: not executable, ...
        code: i32,
        /// Why, in a line.
        reason: String,
    },
    /// The detach keys were typed: the process runs on.
    Detached,
}

impl SessionEnd {
    /// The exit code a shell would report: the process's, 128+N for signal
    /// N, a shell's code for a process that could not start, 0 for a detach.
    pub fn exit_code(&self) -> u8 {
        match self {
            SessionEnd::Exited { status, .. } => status.shell_code(),
            SessionEnd::Failed { code, .. } => u8::try_from(*code).unwrap_or(u8::MAX),
            SessionEnd::Detached => 0,
        }
    }

    /// Why the process could not start, if it could not.
    pub fn failure(&self) -> Option<&str> {
        match self {
            SessionEnd::Failed { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// The write side of a session, shared by the threads that send on it.
#[derive(Clone)]
pub struct SessionWriter(Arc<Mutex<UnixStream>>);

impl SessionWriter {
    /// Writes messages to `stream`.
    pub(crate) fn over(stream: UnixStream) -> SessionWriter {
        SessionWriter(Arc::new(Mutex::new(stream)))
    }

    /// Sends one message to the peer.
    pub fn send(&self, message: &Message) -> Result<()> {
        let mut stream = self.0.lock().expect("session writer lock poisoned");
        write_message(&mut *stream, message).context("cannot write to the guest agent")
    }

    /// Ends what this side sends, and gives the peer `grace` to end the
    /// rest: a hang-up would make the VMM drop what the guest still sends,
    /// and with it the connection before the last message is delivered.
    fn leave(&self, grace: Duration) {
        let stream = self.0.lock().expect("session writer lock poisoned");
        let _ = stream.shutdown(Shutdown::Write);
        // A read already waiting takes no new timeout: a hang-up ends it.
        if let Ok(stream) = stream.try_clone() {
            let _ = thread::Builder::new()
                .name("session-leave".into())
                .spawn(move || {
                    thread::sleep(grace);
                    let _ = stream.shutdown(Shutdown::Both);
                });
        }
    }
}

/// What a session asks of its peer.
pub enum Request {
    /// Start this process (the peer is a guest agent); with `report_oom`,
    /// ask once it has ended whether the kernel killed any of the
    /// container's processes for want of memory (one more round trip).
    Run {
        /// The process.
        spec: Box<RunSpec>,
        /// Whether to ask about OOM kills at its end.
        report_oom: bool,
    },
    /// Join the process a container's monitor holds (the peer is its
    /// attach socket).
    Join,
}

/// Where the process's stdin comes from.
pub enum Input {
    /// Nowhere: a started process reads end of file at once.
    Closed,
    /// This reader, until its end. Typing the detach keys, if given, ends
    /// the session and leaves the process running.
    Reader {
        /// The input.
        reader: Box<dyn Read + Send>,
        /// The sequence that detaches.
        detach_keys: Option<DetachKeys>,
    },
    /// Nothing here, but the process's stdin stays open for the
    /// [`Controls::peers`] to write to.
    Open,
}

/// What else goes to the process while the session lasts.
#[derive(Default)]
pub struct Controls<'a> {
    /// New sizes of the caller's terminal, for the process's.
    pub resizes: Option<Receiver<TerminalSize>>,
    /// Signals for the process.
    pub signals: Option<Signals>,
    /// Called once the process is asked to start (or joined): the moment
    /// a front end puts its terminal in raw mode. Its error ends the
    /// session.
    pub on_attached: Option<Box<dyn FnOnce() -> Result<()> + Send>>,
    /// Starts serving peers that send input, resizes and signals to the
    /// process themselves, given the session's writer (a monitor's attach
    /// clients).
    pub peers: Option<&'a dyn Fn(SessionWriter) -> Result<()>>,
    /// Called once the agent says the process started (it was found and
    /// executed); its error ends the session.
    pub on_started: Option<Box<dyn FnOnce() -> Result<()> + Send + 'a>>,
}

/// Runs or joins a process through the peer on `stream`: handshake, stdio
/// pumping, resizes and signals; once a started process has ended, asks
/// the agent to power its machine off.
pub fn attach(
    stream: UnixStream,
    request: Request,
    input: Input,
    controls: Controls,
    output: &mut dyn OutputSink,
) -> Result<SessionEnd> {
    attach_then(stream, request, input, controls, output, None)
}

/// What a session does once its process has exited, before the agent
/// powers the machine off: more requests on the session's stream.
pub type AfterExit<'a> = &'a mut dyn FnMut(&mut UnixStream, &SessionWriter) -> Result<()>;

/// [`attach`], then `after_exit` once a started process has exited (not
/// after a failed start); its error is the session's.
pub fn attach_then(
    stream: UnixStream,
    request: Request,
    input: Input,
    controls: Controls,
    output: &mut dyn OutputSink,
    after_exit: Option<AfterExit>,
) -> Result<SessionEnd> {
    let (mut reader, writer) = greet(stream)?;
    let report_oom = match request {
        Request::Run { spec, report_oom } => {
            writer.send(&Message::Run(spec))?;
            report_oom
        }
        Request::Join => false,
    };
    if let Some(attached) = controls.on_attached {
        attached()?;
    }
    // Whatever the threads below still hold ends with the session.
    let (_session_over, session_ended) = crossbeam_channel::bounded::<()>(0);
    if let Some(resizes) = controls.resizes {
        forward(
            resizes,
            session_ended.clone(),
            writer.clone(),
            Message::Resize,
        )?;
    }
    if let Some(signals) = controls.signals {
        let signals = signals.receiver().clone();
        forward(
            signals,
            session_ended.clone(),
            writer.clone(),
            Message::Signal,
        )?;
    }

    let detached = Arc::new(AtomicBool::new(false));
    match input {
        Input::Closed => writer.send(&Message::StdinClose)?,
        Input::Reader {
            reader,
            detach_keys,
        } => {
            let (writer, detached) = (writer.clone(), detached.clone());
            let scanner = detach_keys.map(DetachScanner::new);
            thread::Builder::new()
                .name("stdin".into())
                .spawn(move || pump_input(reader, &writer, scanner, &detached))
                .context("cannot start the stdin thread")?;
        }
        Input::Open => {}
    }
    if let Some(serve) = controls.peers {
        serve(writer.clone())?;
    }

    let end = match relay_until_end(&mut reader, output, controls.on_started, &detached) {
        Err(_) if detached.load(Ordering::SeqCst) => return Ok(SessionEnd::Detached),
        end => end?,
    };
    let end = match end {
        ProcessEnd::Exited(status) => SessionEnd::Exited {
            status,
            oom_killed: report_oom && oom_killed(&mut reader, &writer),
        },
        ProcessEnd::Failed { code, reason } => SessionEnd::Failed { code, reason },
    };
    if let (SessionEnd::Exited { .. }, Some(after_exit)) = (&end, after_exit) {
        after_exit(&mut reader, &writer)?;
    }
    // The process is gone; a lost Shutdown only means the caller's timeout
    // ends the machine instead.
    let _ = writer.send(&Message::Shutdown);
    Ok(end)
}

/// Asks the agent on `stream` about its container.
pub fn query(stream: UnixStream, query: Query) -> Result<Answer> {
    let (mut reader, writer) = greet(stream)?;
    ask(&mut reader, &writer, query)
}

fn ask(reader: &mut UnixStream, writer: &SessionWriter, query: Query) -> Result<Answer> {
    writer.send(&Message::Query(query))?;
    match read_message(reader).context("cannot read from the guest agent")? {
        Some(Message::Answer(answer)) => Ok(answer),
        Some(Message::Failed { reason, .. }) => bail!("the guest agent cannot answer: {reason}"),
        Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
        None => bail!("the guest agent hung up before answering"),
    }
}

/// Whether the kernel killed any of the container's processes for want of
/// memory; asked once its process has ended. An agent that cannot tell
/// (one running processes in its own root) counts as no.
fn oom_killed(reader: &mut UnixStream, writer: &SessionWriter) -> bool {
    matches!(
        ask(reader, writer, Query::Stats),
        Ok(Answer::Stats(stats)) if stats.oom_kills > 0
    )
}

/// How the process ended, as its peer reports it.
enum ProcessEnd {
    Exited(ExitStatus),
    Failed { code: i32, reason: String },
}

/// Relays the process's output into `output` (none once `detached`) until
/// it ends.
fn relay_until_end(
    reader: &mut UnixStream,
    output: &mut dyn OutputSink,
    mut on_started: Option<Box<dyn FnOnce() -> Result<()> + Send + '_>>,
    detached: &AtomicBool,
) -> Result<ProcessEnd> {
    loop {
        let message = read_message(reader).context("cannot read from the guest agent")?;
        match message {
            Some(Message::Stdout(_) | Message::Stderr(_)) if detached.load(Ordering::SeqCst) => {}
            Some(Message::Stdout(data)) => output.stdout(&data),
            Some(Message::Stderr(data)) => output.stderr(&data),
            Some(Message::Started { .. }) => {
                if let Some(started) = on_started.take() {
                    started()?;
                }
            }
            Some(Message::Exited(status)) => return Ok(ProcessEnd::Exited(status)),
            Some(Message::Failed { code, reason }) => {
                return Ok(ProcessEnd::Failed { code, reason })
            }
            Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
            None => bail!("the guest agent hung up before the process exited"),
        }
    }
}

/// Splits `stream` into its read side and a shared write side, and
/// exchanges greetings with the agent on it.
pub fn greet(stream: UnixStream) -> Result<(UnixStream, SessionWriter)> {
    let mut reader = stream
        .try_clone()
        .context("cannot clone the agent stream")?;
    let writer = SessionWriter::over(stream);
    handshake(&mut reader, &writer)?;
    Ok((reader, writer))
}

fn handshake(reader: &mut UnixStream, writer: &SessionWriter) -> Result<()> {
    match read_message(reader).context("no greeting from the guest agent")? {
        Some(Message::Hello(hello)) if hello.version == hull_protocol::VERSION => {}
        Some(Message::Hello(hello)) => bail!(
            "guest agent speaks protocol {} ({}), this hull speaks {}: rebuild them together",
            hello.version,
            hello.software,
            hull_protocol::VERSION
        ),
        Some(other) => bail!("guest agent greeted with {other:?} instead of hello"),
        None => bail!("the guest agent hung up before greeting"),
    }
    writer.send(&hello())
}

/// Our greeting, as hull speaks first or second on a session.
pub fn hello() -> Message {
    Message::Hello(Hello {
        version: hull_protocol::VERSION,
        software: concat!("hull ", env!("CARGO_PKG_VERSION")).into(),
    })
}

/// Forwards `reader`'s bytes as the process's stdin; on the detach keys,
/// marks the session `detached`, says so to the peer and leaves it.
fn pump_input(
    mut reader: Box<dyn Read + Send>,
    writer: &SessionWriter,
    mut scanner: Option<DetachScanner>,
    detached: &AtomicBool,
) {
    let mut buffer = vec![0u8; MAX_BODY.min(64 * 1024)];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => None,
            Ok(n) => Some(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => None,
        };
        let Some(data) = read else {
            let _ = writer.send(&Message::StdinClose);
            return;
        };
        let (data, detach) = match scanner.as_mut().map(|scanner| scanner.scan(data)) {
            None => (data.to_vec(), false),
            Some(Scanned::Forward(data)) => (data, false),
            Some(Scanned::Detach(data)) => (data, true),
        };
        if !data.is_empty() && writer.send(&Message::Stdin(data)).is_err() {
            return;
        }
        if detach {
            detached.store(true, Ordering::SeqCst);
            // An agent leaves the process running (an attach server, whose
            // process is the monitor's, takes it as a hang-up); either
            // closes the session then.
            let _ = writer.send(&Message::Detach);
            writer.leave(DETACH_GRACE);
            return;
        }
    }
}

/// Sends each item of `items` to the process as `message` says, from a
/// thread of its own, until the session ends (`ended` disconnects) or the
/// peer is gone.
fn forward<T: Send + 'static>(
    items: Receiver<T>,
    ended: Receiver<()>,
    writer: SessionWriter,
    message: fn(T) -> Message,
) -> Result<()> {
    thread::Builder::new()
        .name("session-controls".into())
        .spawn(move || loop {
            // The session's end first: an item that comes with it is left
            // for whoever takes the channel next (the next boot's session).
            crossbeam_channel::select_biased! {
                recv(ended) -> _ => return,
                recv(items) -> item => {
                    let sent = item.map(|item| writer.send(&message(item)));
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        })
        .context("cannot start a session thread")?;
    Ok(())
}

/// Where the process's output goes.
pub trait OutputSink: Send {
    /// Bytes the process wrote to stdout.
    fn stdout(&mut self, data: &[u8]);
    /// Bytes the process wrote to stderr.
    fn stderr(&mut self, data: &[u8]);
}

/// The process's output into two writers. A closed one (a stdout piped
/// into `head`) must not stall the guest, so after a write error that
/// stream's data is dropped while the session drains.
pub struct Writers {
    stdout: Option<Box<dyn Write + Send>>,
    stderr: Option<Box<dyn Write + Send>>,
}

impl Writers {
    /// Output to `stdout` and `stderr`, each flushed after every write.
    pub fn new(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Writers {
        Writers {
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }
}

impl OutputSink for Writers {
    fn stdout(&mut self, data: &[u8]) {
        write_or_close(&mut self.stdout, data);
    }

    fn stderr(&mut self, data: &[u8]) {
        write_or_close(&mut self.stderr, data);
    }
}

fn write_or_close(writer: &mut Option<Box<dyn Write + Send>>, data: &[u8]) {
    if let Some(out) = writer {
        if out.write_all(data).and_then(|()| out.flush()).is_err() {
            *writer = None;
        }
    }
}

/// A channel a front end sends its terminal's new sizes on.
pub fn resize_channel() -> (Sender<TerminalSize>, Receiver<TerminalSize>) {
    crossbeam_channel::unbounded()
}
