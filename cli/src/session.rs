//! The host side of one agent session: start a process in the guest and
//! connect it to this terminal's stdio and signals until it ends.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{bail, Context, Result};
use hull_protocol::{
    read_message, write_message, Answer, ExitStatus, Hello, Message, Query, RunSpec, MAX_BODY,
};

use crate::attach_server::AttachServer;
use crate::detach_keys::{DetachKeys, DetachScanner, Scanned};
use crate::signals::ForwardedSignals;
use crate::terminal::{self, ModeGuard};

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The process ran and ended this way; `oom_killed`: the kernel killed
    /// one of the container's processes for want of memory meanwhile.
    Exited {
        status: ExitStatus,
        oom_killed: bool,
    },
    /// The process could not be started; `code` is what a shell would return.
    Failed { code: i32, reason: String },
    /// The user typed the detach keys: the process runs on.
    Detached,
}

impl SessionEnd {
    /// The exit code `hull` itself returns, reporting a failure on stderr.
    pub fn exit_code(&self) -> u8 {
        match self {
            SessionEnd::Exited { status, .. } => status.shell_code(),
            SessionEnd::Failed { code, reason } => {
                eprintln!("hull: {reason}");
                u8::try_from(*code).unwrap_or(u8::MAX)
            }
            SessionEnd::Detached => 0,
        }
    }
}

/// The write side of a session, shared by the threads that send on it.
#[derive(Clone)]
pub struct SessionWriter(Arc<Mutex<UnixStream>>);

impl SessionWriter {
    pub fn send(&self, message: &Message) -> Result<()> {
        let mut stream = self.0.lock().expect("session writer lock poisoned");
        write_message(&mut *stream, message).context("cannot write to the guest agent")
    }

    /// Ends the session both ways: the reader sees end of file.
    fn hang_up(&self) {
        let stream = self.0.lock().expect("session writer lock poisoned");
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// What a session asks of its peer.
pub enum Request {
    /// Start this process (the peer is a guest agent); with `report_oom`,
    /// ask once it has ended whether the kernel killed any of the
    /// container's processes for want of memory (one more round trip, which
    /// only a container's monitor records).
    Run {
        spec: Box<RunSpec>,
        report_oom: bool,
    },
    /// Join the process a detached container's monitor holds (the peer is
    /// its attach socket); `tty`: whether that process has a terminal.
    Join { tty: bool },
}

/// Where the process's stdin comes from.
pub enum Input<'a> {
    /// Nowhere: a started process reads end of file at once.
    Closed,
    /// Our stdin. Typing the detach keys, if given, ends the session and
    /// leaves the process running.
    Stdin(Option<DetachKeys>),
    /// The `hull attach` clients of a detached container's monitor; the
    /// process's stdin stays open for them if `keep_open` (`run -di`).
    Clients {
        server: &'a AttachServer,
        keep_open: bool,
    },
}

/// Runs or joins a process through the peer on `stream`: handshake, stdio
/// pumping and forwarding of `signals`; once a started process has ended,
/// asks the agent to power its machine off. A process on a terminal gets
/// our terminal's size and, with our stdin, our keys raw.
pub fn attach(
    stream: UnixStream,
    request: Request,
    input: Input,
    signals: Option<ForwardedSignals>,
    mut output: Box<dyn OutputSink>,
) -> Result<SessionEnd> {
    let (mut reader, writer) = greet(stream)?;
    let (on_terminal, report_oom) = match request {
        Request::Run { spec, report_oom } => {
            let on_terminal = spec.tty.is_some();
            writer.send(&Message::Run(spec))?;
            (on_terminal, report_oom)
        }
        Request::Join { tty } => (tty, false),
    };
    // Our terminal's mode comes back when the session ends, however it ends.
    let _mode = match (on_terminal, matches!(input, Input::Stdin(_))) {
        (true, true) => ModeGuard::raw_input()?,
        (true, false) => ModeGuard::raw_output()?,
        (false, _) => None,
    };
    if on_terminal {
        follow_terminal_size(&writer)?;
    }

    let detached = Arc::new(AtomicBool::new(false));
    match input {
        Input::Closed => writer.send(&Message::StdinClose)?,
        Input::Stdin(detach_keys) => {
            let (writer, detached) = (writer.clone(), detached.clone());
            let scanner = detach_keys.map(DetachScanner::new);
            thread::Builder::new()
                .name("stdin".into())
                .spawn(move || pump_stdin(&writer, scanner, &detached))
                .context("cannot start the stdin thread")?;
        }
        Input::Clients { server, keep_open } => {
            if !keep_open {
                writer.send(&Message::StdinClose)?;
            }
            server.serve(writer.clone())?;
        }
    }
    if let Some(signals) = signals {
        forward_signals(signals, writer.clone())?;
    }

    let end = match relay_until_end(&mut reader, output.as_mut()) {
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

fn relay_until_end(reader: &mut UnixStream, output: &mut dyn OutputSink) -> Result<ProcessEnd> {
    loop {
        let message = read_message(reader).context("cannot read from the guest agent")?;
        match message {
            Some(Message::Stdout(data)) => output.stdout(&data),
            Some(Message::Stderr(data)) => output.stderr(&data),
            Some(Message::Started { .. }) => {}
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
    let writer = SessionWriter(Arc::new(Mutex::new(stream)));
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

/// Forwards our stdin; on the detach keys, marks the session `detached`
/// and hangs it up.
fn pump_stdin(writer: &SessionWriter, mut scanner: Option<DetachScanner>, detached: &AtomicBool) {
    let mut stdin = io::stdin().lock();
    let mut buffer = vec![0u8; MAX_BODY.min(64 * 1024)];
    loop {
        let read = match stdin.read(&mut buffer) {
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
            writer.hang_up();
            return;
        }
    }
}

/// Keeps the process's terminal the size of ours, if we have one.
fn follow_terminal_size(writer: &SessionWriter) -> Result<()> {
    let Some(size) = terminal::size() else {
        return Ok(());
    };
    let resizes = writer.clone();
    terminal::on_resize(move |size| resizes.send(&Message::Resize(size)).is_ok())?;
    // It may have changed while the machine booted.
    writer.send(&Message::Resize(size))
}

fn forward_signals(signals: ForwardedSignals, writer: SessionWriter) -> Result<()> {
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || signals.for_each(|signal| writer.send(&Message::Signal(signal)).is_ok()))
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Where the process's output goes.
pub trait OutputSink {
    fn stdout(&mut self, data: &[u8]);
    fn stderr(&mut self, data: &[u8]);
}

/// The process's output written to ours. A closed stdout (say, piped into
/// `head`) must not stall the guest, so after a write error that stream's
/// data is dropped while the session drains.
#[derive(Default)]
pub struct Terminal {
    stdout_closed: bool,
    stderr_closed: bool,
}

impl OutputSink for Terminal {
    fn stdout(&mut self, data: &[u8]) {
        if !self.stdout_closed {
            let mut out = io::stdout().lock();
            self.stdout_closed = out.write_all(data).and_then(|()| out.flush()).is_err();
        }
    }

    fn stderr(&mut self, data: &[u8]) {
        if !self.stderr_closed {
            self.stderr_closed = io::stderr().lock().write_all(data).is_err();
        }
    }
}
