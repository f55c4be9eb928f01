//! The host side of one agent session: start a process in the guest and
//! connect it to this terminal's stdio and signals until it ends.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{bail, Context, Result};
use hull_protocol::{
    read_message, write_message, Answer, ExitStatus, Hello, Message, Query, RunSpec, MAX_BODY,
};

use crate::signals::ForwardedSignals;
use crate::terminal::{self, ModeGuard};

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The process ran and ended this way.
    Exited(ExitStatus),
    /// The process could not be started; `code` is what a shell would return.
    Failed { code: i32, reason: String },
}

impl SessionEnd {
    /// The exit code `hull` itself returns, reporting a failure on stderr.
    pub fn exit_code(&self) -> u8 {
        match self {
            SessionEnd::Exited(status) => status.shell_code(),
            SessionEnd::Failed { code, reason } => {
                eprintln!("hull: {reason}");
                u8::try_from(*code).unwrap_or(u8::MAX)
            }
        }
    }
}

type SharedWriter = Arc<Mutex<UnixStream>>;

fn send(writer: &SharedWriter, message: &Message) -> Result<()> {
    let mut stream = writer.lock().expect("session writer lock poisoned");
    write_message(&mut *stream, message).context("cannot write to the guest agent")
}

/// Runs `spec` through the agent on `stream`: handshake, stdio pumping and
/// forwarding of `signals`; once the process has ended, asks the agent to
/// power its machine off. Without `forward_stdin` the process sees an empty
/// stdin. A process on a terminal (`spec.tty`) gets our terminal's size
/// and, with `forward_stdin`, our keys raw.
pub fn attach(
    stream: UnixStream,
    spec: RunSpec,
    forward_stdin: bool,
    signals: ForwardedSignals,
    mut output: Box<dyn OutputSink>,
) -> Result<SessionEnd> {
    let (mut reader, writer) = greet(stream)?;
    let on_terminal = spec.tty.is_some();
    send(&writer, &Message::Run(spec))?;
    // Our terminal's mode comes back when the session ends, however it ends.
    let _mode = match (on_terminal, forward_stdin) {
        (true, true) => ModeGuard::raw_input()?,
        (true, false) => ModeGuard::raw_output()?,
        (false, _) => None,
    };
    if on_terminal {
        follow_terminal_size(&writer)?;
    }

    if forward_stdin {
        let writer = writer.clone();
        thread::Builder::new()
            .name("stdin".into())
            .spawn(move || pump_stdin(&writer))
            .context("cannot start the stdin thread")?;
    } else {
        send(&writer, &Message::StdinClose)?;
    }
    forward_signals(signals, writer.clone())?;

    let end = relay_until_end(&mut reader, output.as_mut())?;
    // The process is gone; a lost Shutdown only means the caller's timeout
    // ends the machine instead.
    let _ = send(&writer, &Message::Shutdown);
    Ok(end)
}

/// Asks the agent on `stream` about its container.
pub fn query(stream: UnixStream, query: Query) -> Result<Answer> {
    let (mut reader, writer) = greet(stream)?;
    send(&writer, &Message::Query(query))?;
    match read_message(&mut reader).context("cannot read from the guest agent")? {
        Some(Message::Answer(answer)) => Ok(answer),
        Some(Message::Failed { reason, .. }) => bail!("the guest agent cannot answer: {reason}"),
        Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
        None => bail!("the guest agent hung up before answering"),
    }
}

fn relay_until_end(reader: &mut UnixStream, output: &mut dyn OutputSink) -> Result<SessionEnd> {
    loop {
        let message = read_message(reader).context("cannot read from the guest agent")?;
        match message {
            Some(Message::Stdout(data)) => output.stdout(&data),
            Some(Message::Stderr(data)) => output.stderr(&data),
            Some(Message::Started { .. }) => {}
            Some(Message::Exited(status)) => return Ok(SessionEnd::Exited(status)),
            Some(Message::Failed { code, reason }) => {
                return Ok(SessionEnd::Failed { code, reason })
            }
            Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
            None => bail!("the guest agent hung up before the process exited"),
        }
    }
}

/// Splits `stream` into its read side and a shared write side, and
/// exchanges greetings with the agent on it.
fn greet(stream: UnixStream) -> Result<(UnixStream, SharedWriter)> {
    let mut reader = stream
        .try_clone()
        .context("cannot clone the agent stream")?;
    let writer: SharedWriter = Arc::new(Mutex::new(stream));
    handshake(&mut reader, &writer)?;
    Ok((reader, writer))
}

fn handshake(reader: &mut UnixStream, writer: &SharedWriter) -> Result<()> {
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
    send(
        writer,
        &Message::Hello(Hello {
            version: hull_protocol::VERSION,
            software: concat!("hull ", env!("CARGO_PKG_VERSION")).into(),
        }),
    )
}

fn pump_stdin(writer: &SharedWriter) {
    let mut stdin = io::stdin().lock();
    let mut buffer = vec![0u8; MAX_BODY.min(64 * 1024)];
    loop {
        let message = match stdin.read(&mut buffer) {
            Ok(0) => Message::StdinClose,
            Ok(n) => Message::Stdin(buffer[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Message::StdinClose,
        };
        let closing = message == Message::StdinClose;
        if send(writer, &message).is_err() || closing {
            return;
        }
    }
}

/// Keeps the process's terminal the size of ours, if we have one.
fn follow_terminal_size(writer: &SharedWriter) -> Result<()> {
    let Some(size) = terminal::size() else {
        return Ok(());
    };
    let resizes = writer.clone();
    terminal::on_resize(move |size| send(&resizes, &Message::Resize(size)).is_ok())?;
    // It may have changed while the machine booted.
    send(writer, &Message::Resize(size))
}

fn forward_signals(signals: ForwardedSignals, writer: SharedWriter) -> Result<()> {
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || signals.for_each(|signal| send(&writer, &Message::Signal(signal)).is_ok()))
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
