//! One session with the host over the agent channel, shared by both modes:
//! handshake, launch, the stdio pumps, signals and the exit report.
//!
//! Threads: the calling thread reads the channel; one thread per output
//! stream turns pipe reads into frames; one thread feeds stdin; one waits
//! for the process and sends `Exited` once both output streams are drained.
//! Frames are written whole under one lock, so they never interleave.
//!
//! A detached process (`RunDetached`, `hull exec -d`) gets none of these:
//! the session ends once it has started, and the process is nobody's to
//! wait for. The reaper (see [`crate::reaper`]) still reaps the agent's
//! child when it ends, so it leaves no zombie. On a terminal it gets one
//! thread, which reads and drops the terminal's output for as long as the
//! process side holds the terminal open. A process the host detaches from
//! later (`Detach`, the detach keys of `hull exec -it`) keeps its output
//! threads, which drop what they read from then on.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use anyhow::{bail, Context};
use hull_protocol::copy::DataWriter;
use hull_protocol::{
    read_message, write_message, CgroupLimits, Copy, Diff, ExitStatus, Hello, Message, Query,
    RunSpec, MAX_BODY, VERSION,
};

use crate::process::{Launch, Launcher, Process, StartFailure, AGENT_ERROR_CODE};
use crate::stdio::{self, ChildStdio, HostStdio, Terminal};
use crate::{copy, diff};

/// Largest read from an output pipe, and so largest Stdout/Stderr body.
const OUTPUT_CHUNK: usize = 64 * 1024;
const _: () = assert!(OUTPUT_CHUNK <= MAX_BODY);

/// Runs one session on `channel`: greets the host, runs the process it asks
/// for, and returns once the host sends Shutdown or closes the channel.
/// A process still running then is killed. A detached one (`RunDetached`)
/// is left running, and the session returns as soon as it has started; so
/// is one the host detaches from (`Detach`), once the channel is shut.
pub fn run(channel: File, launcher: &dyn Launcher) -> anyhow::Result<()> {
    let writer = FrameWriter::new(channel.try_clone().context("duplicating the channel")?);
    let mut reader = BufReader::new(channel);
    handshake(&mut reader, &writer)?;
    let spec = match receive_request(&mut reader)? {
        Some(Request::Run(spec)) => *spec,
        Some(Request::RunDetached(spec)) => {
            let answer = run_detached(launcher, &spec);
            writer.send(&answer)?;
            return Ok(());
        }
        Some(Request::Query(query)) => {
            writer.send(&answer(launcher, query))?;
            return Ok(());
        }
        Some(Request::Copy(copy)) => {
            let Some(root) = launcher.container_root() else {
                bail!("this agent runs no container to copy from or into");
            };
            let sender = writer.clone();
            let send = |message: &Message| sender.send(message).map_err(std::io::Error::other);
            let end = match copy::run(&copy, &root, &mut reader, send) {
                Ok(()) => Message::Exited(ExitStatus::Code(0)),
                Err(err) => Message::Failed {
                    code: 1,
                    reason: format!("{err:#}"),
                },
            };
            writer.send(&end)?;
            return Ok(());
        }
        Some(Request::Diff(request)) => {
            writer.send(&send_diff(launcher, &request, &writer))?;
            return Ok(());
        }
        Some(Request::Export) => {
            writer.send(&send_root(launcher, &writer))?;
            return Ok(());
        }
        Some(Request::SetLimits(limits)) => {
            let end = match launcher.set_limits(&limits) {
                Ok(()) => Message::Exited(ExitStatus::Code(0)),
                Err(err) => failed(format!("{err:#}")),
            };
            writer.send(&end)?;
            return Ok(());
        }
        None => return Ok(()),
    };
    let (host_stdio, child_stdio) = match spec.tty {
        Some(size) => stdio::terminal(size).context("opening a pseudo-terminal"),
        None => stdio::pipes().context("creating the stdio pipes"),
    }?;
    // No thread has been started yet, as `Launcher::launch` requires.
    let process = match launch(launcher, &spec, child_stdio) {
        Launch::Running(process) => Arc::new(process),
        Launch::Failed(StartFailure { code, reason }) => {
            writer.send(&Message::Failed { code, reason })?;
            return serve_host(&mut reader, None, ProcessIo::default(), launcher, &writer)
                .map(|_| ());
        }
    };
    writer.send(&Message::Started { pid: process.pid() })?;
    let fate = Fate::default();
    let (io, reporter) = start_pumps(host_stdio, &process, &writer, &fate);
    let served = serve_host(&mut reader, Some(&process), io, launcher, &writer);
    let detached = matches!(served, Ok(Served::Detached));
    fate.settle(detached);
    if detached {
        // The host waits for the end of the session; writes to it fail
        // from now on, and the output threads drop what they read.
        shut(reader.get_ref());
        // Its output is drained until it ends, as a detached process's is.
        hold_for_detached("draining a detached process's output", move || {
            let _ = reporter.join();
            Ok(())
        });
        return Ok(());
    }
    if let Err(err) = process.signal(libc::SIGKILL) {
        log_error("killing the process at the end of the session", &err.into());
    }
    served.map(|_| ())
}

/// Shuts `channel` down both ways, if it is a socket (the host's reads end
/// at once, whatever still holds it).
fn shut(channel: &File) {
    let _ = nix::sys::socket::shutdown(channel.as_raw_fd(), nix::sys::socket::Shutdown::Both);
}

/// How serving the host ended.
enum Served {
    /// It hung up or sent Shutdown.
    Over,
    /// It sent Detach: the process runs on.
    Detached,
}

/// Whether the host left the session's process running, known once the
/// session is over. An output thread whose frame cannot be sent asks it
/// (and waits for it): the host hangs up right after its Detach, possibly
/// before the session has read it.
#[derive(Clone, Default)]
struct Fate(Arc<(Mutex<Option<bool>>, Condvar)>);

impl Fate {
    fn settle(&self, detached: bool) {
        let (fate, settled) = &*self.0;
        *lock(fate) = Some(detached);
        settled.notify_all();
    }

    /// Whether the process was detached; false while the session lasts.
    fn is_detached(&self) -> bool {
        *lock(&self.0 .0) == Some(true)
    }

    /// Whether the process was detached, once the session is over.
    fn await_detached(&self) -> bool {
        let (fate, settled) = &*self.0;
        let mut fate = lock(fate);
        loop {
            if let Some(detached) = *fate {
                return detached;
            }
            fate = settled.wait(fate).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Starts `spec` with `stdio`; an error of the agent's is a start failure.
fn launch(launcher: &dyn Launcher, spec: &RunSpec, stdio: ChildStdio) -> Launch {
    launcher.launch(spec, stdio).unwrap_or_else(|err| {
        Launch::Failed(StartFailure {
            code: AGENT_ERROR_CODE,
            reason: format!("{err:#}"),
        })
    })
}

/// Starts `spec` detached and returns the answer for the host: `Started`
/// or `Failed`. Its streams are /dev/null, or a terminal whose output is
/// discarded (see [`keep_detached_terminal`]). Its [`Process`] is dropped
/// here: nobody waits for it, and the reaper takes it when it ends.
fn run_detached(launcher: &dyn Launcher, spec: &RunSpec) -> Message {
    let failed = |reason: String| Message::Failed {
        code: AGENT_ERROR_CODE,
        reason,
    };
    if !launcher.allows_detached() {
        return failed("this session's process cannot be detached from it".into());
    }
    let streams = match spec.tty {
        Some(size) => stdio::terminal(size)
            .map(|(host, child)| (child, host.terminal))
            .context("opening a pseudo-terminal"),
        None => stdio::null()
            .map(|child| (child, None))
            .context("opening /dev/null"),
    };
    let (child_stdio, terminal) = match streams {
        Ok(streams) => streams,
        Err(err) => return failed(format!("{err:#}")),
    };
    match launch(launcher, spec, child_stdio) {
        Launch::Running(process) => {
            if let Some(terminal) = terminal {
                keep_detached_terminal(terminal);
            }
            Message::Started { pid: process.pid() }
        }
        Launch::Failed(StartFailure { code, reason }) => Message::Failed { code, reason },
    }
}

/// How many detached processes' outputs are being drained, and the
/// signal that one is no longer.
static DETACHED_DRAINS: Mutex<usize> = Mutex::new(0);
static DETACHED_DRAIN_ENDED: Condvar = Condvar::new();

/// Keeps a detached process's terminal open and drains its output, until
/// the process side has closed it (the process and whatever inherited the
/// terminal have ended). Closing it earlier would hang up the process
/// (SIGHUP).
fn keep_detached_terminal(terminal: Terminal) {
    hold_for_detached("draining a detached process's terminal", move || {
        Ok(terminal.discard_output()?)
    });
}

/// Runs `drain`, which reads a detached process's output until it ends,
/// on a thread of its own that [`wait_for_detached_output`] waits for.
fn hold_for_detached(
    what: &'static str,
    drain: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) {
    *lock(&DETACHED_DRAINS) += 1;
    let drained = move || {
        if let Err(err) = drain() {
            log_error(what, &err);
        }
        *lock(&DETACHED_DRAINS) -= 1;
        DETACHED_DRAIN_ENDED.notify_all();
    };
    if let Err(err) = thread::Builder::new()
        .name("detached".into())
        .spawn(drained)
    {
        // The closure, and what it drained, is gone.
        *lock(&DETACHED_DRAINS) -= 1;
        log_error(what, &err.into());
    }
}

/// Blocks until the agent drains no detached process's output. An agent
/// that exits after its session (relay mode) calls this first, so that its
/// end does not hang up a detached process on a terminal, or break its
/// pipes.
pub fn wait_for_detached_output() {
    let mut open = lock(&DETACHED_DRAINS);
    while *open > 0 {
        open = DETACHED_DRAIN_ENDED
            .wait(open)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The answer to `query`, or why there is none.
fn answer(launcher: &dyn Launcher, query: Query) -> Message {
    match launcher.answer(query) {
        Ok(answer) => Message::Answer(answer),
        Err(err) => Message::Failed {
            code: AGENT_ERROR_CODE,
            reason: format!("{err:#}"),
        },
    }
}

/// Sends our Hello and checks the host's.
fn handshake(reader: &mut impl Read, writer: &FrameWriter) -> anyhow::Result<()> {
    writer.send(&Message::Hello(Hello {
        version: VERSION,
        software: format!("hull-agent {}", env!("CARGO_PKG_VERSION")),
    }))?;
    match read_message(reader).context("waiting for the host's hello")? {
        Some(Message::Hello(host)) if host.version == VERSION => Ok(()),
        Some(Message::Hello(host)) => bail!(
            "refusing host {:?}: it speaks protocol version {}, this agent speaks version {VERSION}",
            host.software,
            host.version
        ),
        Some(other) => bail!("expected the host's hello, got {}", describe(&other)),
        None => bail!("the host closed the channel before its hello"),
    }
}

/// What the host asks of a session.
enum Request {
    Run(Box<RunSpec>),
    RunDetached(Box<RunSpec>),
    Query(Query),
    Copy(Copy),
    /// A running (or held) container's writable layer.
    Diff(Diff),
    /// A running (or held) container's root file system.
    Export,
    /// New limits for a running container's cgroup.
    SetLimits(CgroupLimits),
}

/// Waits for Run, RunDetached, Query, Copy, Diff, Export or SetLimits;
/// `None` if the host ends the session first.
fn receive_request(reader: &mut impl Read) -> anyhow::Result<Option<Request>> {
    match read_message(reader).context("waiting for the run request")? {
        Some(Message::Run(spec)) => Ok(Some(Request::Run(spec))),
        Some(Message::RunDetached(spec)) => Ok(Some(Request::RunDetached(spec))),
        Some(Message::Query(query)) => Ok(Some(Request::Query(query))),
        Some(Message::Copy(copy)) => Ok(Some(Request::Copy(copy))),
        Some(Message::Diff(diff)) => Ok(Some(Request::Diff(diff))),
        Some(Message::Export) => Ok(Some(Request::Export)),
        Some(Message::SetLimits(limits)) => Ok(Some(Request::SetLimits(limits))),
        Some(Message::Shutdown) | None => Ok(None),
        Some(other) => bail!("expected a run request, got {}", describe(&other)),
    }
}

/// What the host's messages act on while the process runs.
#[derive(Default)]
struct ProcessIo {
    /// `None` once the host closed the process's stdin.
    stdin: Option<StdinFeeder>,
    terminal: Option<Terminal>,
}

/// Starts the output pumps and the thread that reports the process's end
/// (unless it was detached from), and returns what feeds the process's
/// stdin and sizes its terminal, and that thread, which ends once the
/// process has and its output is drained.
fn start_pumps(
    host: HostStdio,
    process: &Arc<Process>,
    writer: &FrameWriter,
    fate: &Fate,
) -> (ProcessIo, JoinHandle<()>) {
    let pump = |pipe, frame| pump_output(pipe, frame, writer.clone(), fate.clone());
    let mut pumps = vec![pump(host.stdout, Message::Stdout as fn(Vec<u8>) -> Message)];
    if let Some(stderr) = host.stderr {
        pumps.push(pump(stderr, Message::Stderr));
    }
    let process = Arc::clone(process);
    let writer = writer.clone();
    let fate = fate.clone();
    let reporter = thread::spawn(move || {
        let end = match process.wait() {
            Ok(status) => Message::Exited(status),
            Err(err) => {
                log_error("lost the container process", &err);
                Message::Failed {
                    code: AGENT_ERROR_CODE,
                    reason: format!("{err:#}"),
                }
            }
        };
        // Exited promises that all output was sent before it.
        for pump in pumps {
            let _ = pump.join();
        }
        if fate.is_detached() {
            return;
        }
        if let Err(err) = writer.send(&end) {
            log_error("sending the exit status", &err.into());
        }
    });
    let io = ProcessIo {
        stdin: Some(StdinFeeder::spawn(host.stdin)),
        terminal: host.terminal,
    };
    (io, reporter)
}

/// Forwards one output pipe (or a terminal's master) as frames made by
/// `frame` until end of file. A terminal's master reads EIO once every fd of
/// the process side is closed: its end of file. Once the host has detached
/// from the process, what it writes is read and dropped.
fn pump_output(
    mut pipe: File,
    frame: fn(Vec<u8>) -> Message,
    writer: FrameWriter,
    fate: Fate,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0; OUTPUT_CHUNK];
        loop {
            let len = match pipe.read(&mut buf) {
                Ok(0) => return,
                Ok(len) => len,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) if err.raw_os_error() == Some(libc::EIO) => return,
                Err(err) => return log_error("reading process output", &err.into()),
            };
            if fate.is_detached() {
                continue;
            }
            // A frame that cannot go waits for the session's fate: drained
            // from then on if detached (it is settled for good).
            if let Err(err) = writer.send(&frame(buf[..len].to_vec())) {
                if !fate.await_detached() {
                    return log_error("forwarding process output", &err.into());
                }
            }
        }
    })
}

/// Serves the host's messages until Shutdown, Detach or the end of the
/// channel: stdio, signals and resizes for the process, and queries (the
/// host asks about the container once its process has ended). `process` is
/// `None` after a failed start.
fn serve_host(
    reader: &mut impl Read,
    process: Option<&Process>,
    mut io: ProcessIo,
    launcher: &dyn Launcher,
    writer: &FrameWriter,
) -> anyhow::Result<Served> {
    loop {
        let message = read_message(reader).context("reading from the host")?;
        match message {
            None | Some(Message::Shutdown) => return Ok(Served::Over),
            Some(Message::Detach) => {
                return Ok(match process.is_some() && launcher.allows_detached() {
                    true => Served::Detached,
                    // Nothing to leave running: a hang-up.
                    false => Served::Over,
                });
            }
            Some(Message::Stdin(data)) => {
                if let Some(stdin) = &io.stdin {
                    stdin.feed(data);
                }
            }
            Some(Message::StdinClose) => io.stdin = None,
            Some(Message::Signal(signo)) => {
                if let Some(Err(err)) = process.map(|process| process.signal(signo)) {
                    log_error(&format!("delivering signal {signo}"), &err.into());
                }
            }
            Some(Message::Resize(size)) => {
                if let Some(Err(err)) = io.terminal.as_ref().map(|terminal| terminal.resize(size)) {
                    log_error("resizing the terminal", &err.into());
                }
            }
            Some(Message::Query(query)) => writer.send(&answer(launcher, query))?,
            // Only once the process has ended: its layer stands still.
            Some(Message::Diff(request)) if process.is_none_or(Process::has_ended) => {
                writer.send(&send_diff(launcher, &request, writer))?
            }
            Some(other) => bail!("unexpected {} from the host", describe(&other)),
        }
    }
}

/// Sends the container's writable layer as a layer tar (see [`diff`]),
/// its processes frozen meanwhile if the host asks, and returns the message
/// that ends it.
fn send_diff(launcher: &dyn Launcher, request: &Diff, writer: &FrameWriter) -> Message {
    let Some(upper) = launcher.writable_layer() else {
        return failed("this agent runs no container with a writable layer".into());
    };
    if request.pause {
        if let Err(err) = launcher.set_frozen(true) {
            return failed(format!("cannot pause the container: {err:#}"));
        }
    }
    let sent = diff::send(
        &upper,
        &request.exclude,
        &request.stubs,
        data_writer(writer),
    );
    let thawed = match request.pause {
        true => launcher.set_frozen(false),
        false => Ok(()),
    };
    match sent.and(thawed) {
        Ok(()) => Message::Exited(ExitStatus::Code(0)),
        Err(err) => failed(format!("{err:#}")),
    }
}

/// Sends the container's root file system as a tar (see
/// [`diff::send_tree`]) and returns the message that ends it.
fn send_root(launcher: &dyn Launcher, writer: &FrameWriter) -> Message {
    let Some(root) = launcher.root_filesystem() else {
        return failed("this agent runs no container to export".into());
    };
    match diff::send_tree(&root, data_writer(writer)) {
        Ok(()) => Message::Exited(ExitStatus::Code(0)),
        Err(err) => failed(format!("{err:#}")),
    }
}

/// Data for the host, in `Stdout` frames.
fn data_writer(writer: &FrameWriter) -> impl std::io::Write + '_ {
    DataWriter::new(Message::Stdout, |message: &Message| {
        writer.send(message).map_err(std::io::Error::other)
    })
}

/// An agent's failure to do what the host asked.
fn failed(reason: String) -> Message {
    Message::Failed {
        code: AGENT_ERROR_CODE,
        reason,
    }
}

/// Feeds the process's stdin from its own thread, so that a process that
/// does not read never stalls the channel (and Signal frames behind it).
/// Dropping the feeder closes the pipe once everything queued is written.
struct StdinFeeder(Sender<Vec<u8>>);

impl StdinFeeder {
    fn spawn(mut pipe: File) -> Self {
        let (sender, receiver) = mpsc::channel::<Vec<u8>>();
        thread::spawn(move || {
            for data in receiver {
                if let Err(err) = pipe.write_all(&data) {
                    // The process closed its stdin or ended: drop the rest.
                    if err.kind() != ErrorKind::BrokenPipe {
                        log_error("writing process stdin", &err.into());
                    }
                    return;
                }
            }
        });
        StdinFeeder(sender)
    }

    fn feed(&self, data: Vec<u8>) {
        // Fails only after the writer gave up on a closed pipe.
        let _ = self.0.send(data);
    }
}

/// The channel's write side, shared by the threads that send frames.
#[derive(Clone)]
struct FrameWriter(Arc<Mutex<File>>);

impl FrameWriter {
    fn new(channel: File) -> Self {
        FrameWriter(Arc::new(Mutex::new(channel)))
    }

    fn send(&self, message: &Message) -> Result<(), hull_protocol::Error> {
        let mut channel = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        write_message(&mut *channel, message)
    }
}

/// Names a message for errors, without dumping its payload.
fn describe(message: &Message) -> &'static str {
    match message {
        Message::Hello(_) => "a Hello message",
        Message::Run(_) => "a Run message",
        Message::RunDetached(_) => "a RunDetached message",
        Message::Started { .. } => "a Started message",
        Message::Stdin(_) => "a Stdin message",
        Message::StdinClose => "a StdinClose message",
        Message::Stdout(_) => "a Stdout message",
        Message::Stderr(_) => "a Stderr message",
        Message::Signal(_) => "a Signal message",
        Message::Exited(_) => "an Exited message",
        Message::Failed { .. } => "a Failed message",
        Message::Shutdown => "a Shutdown message",
        Message::Resize(_) => "a Resize message",
        Message::Query(_) => "a Query message",
        Message::Answer(_) => "an Answer message",
        Message::Copy(_) => "a Copy message",
        Message::Diff(_) => "a Diff message",
        Message::Export => "an Export message",
        Message::SetLimits(_) => "a SetLimits message",
        Message::Detach => "a Detach message",
    }
}

/// Logs an error the session survives; stderr is the serial console in
/// container mode.
pub fn log_error(context: &str, err: &anyhow::Error) {
    eprintln!("hull-agent: {context}: {err:#}");
}
