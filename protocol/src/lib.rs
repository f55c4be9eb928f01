//! The wire protocol between the hull host and the guest agent.
//!
//! Both ends exchange frames over one byte stream (a vsock connection in the
//! guest, a unix socket on the host, relayed by the VMM):
//!
//! ```text
//! +----------------+--------+------------------------+
//! | len: u32 (LE)  | tag: u8| body: len - 1 bytes    |
//! +----------------+--------+------------------------+
//! ```
//!
//! Stdio bodies are raw bytes; control bodies are JSON. The agent speaks first
//! with [`Message::Hello`]; a peer whose [`VERSION`] differs is refused.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

pub mod container_path;
pub mod copy;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;

/// Protocol version; bumped on any incompatible change to frames or messages.
pub const VERSION: u32 = 16;

/// The vsock port the agent connects to on the host (CID 2) once it is ready.
pub const AGENT_READY_PORT: u32 = 1024;
/// Vsock port the agent listens on, once the container runs, for sessions
/// that start more processes in it (`hull exec`).
pub const EXEC_PORT: u32 = 1025;

/// Largest body a frame may carry. Senders split stdio data to fit.
pub const MAX_BODY: usize = 256 * 1024;

/// What the agent tells the host about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// Free-form build identification of the sender, for diagnostics.
    pub software: String,
}

/// A process to start in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// argv[0] is resolved against PATH from `env` when it has no slash.
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries: the process's whole environment.
    pub env: Vec<String>,
    /// Working directory inside the container's root.
    pub cwd: String,
    /// Who runs the process, as `docker run --user` takes it: `USER[:GROUP]`,
    /// each a name or a numeric id, resolved by the agent against the
    /// container's `/etc/passwd` and `/etc/group`. Empty means root.
    pub user: String,
    pub hostname: String,
    /// The NIS domain name of the container's UTS namespace (empty:
    /// none), as `docker run --domainname` sets it.
    #[serde(default)]
    pub domainname: String,
    /// The container's root file system; `None` where the agent runs
    /// processes in its own root (relay mode in the KVM test host).
    pub rootfs: Option<RootfsSpec>,
    /// Run the process on a terminal of this size (`-t`) instead of pipes:
    /// its stdin, stdout and stderr are then one pseudo-terminal, whose
    /// output arrives as `Stdout`.
    pub tty: Option<TerminalSize>,
    /// The container's network, set up by the agent before the process
    /// starts; `None` where the agent leaves the machine's network alone
    /// (relay mode, `hull exec`).
    #[serde(default)]
    pub network: Option<NetworkSpec>,
    /// The container's limits and privileges, set up with its root file
    /// system (`None` for `hull exec`, which has the container's).
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Set the container up (its root, mounts, cgroup and namespaces) but
    /// start no process in it: its init waits until the session ends, while
    /// `Copy`, `Diff` and `Export` sessions work on its files. How hull
    /// reaches a created or stopped container's files, whose writable layer
    /// only a guest kernel reads.
    #[serde(default)]
    pub hold: bool,
    /// For `hull exec --privileged`: the process gets every capability,
    /// not the container's set (its limits stay the container's).
    #[serde(default)]
    pub privileged: bool,
}

/// The container's network as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The machine's virtio-net interfaces, one per network the container
    /// is on, the one with the default route first; none for loopback only
    /// (`--network none`).
    pub interfaces: Vec<InterfaceSpec>,
    /// Files the agent writes into the container's `/etc`, replacing the
    /// image's: `hosts`, `resolv.conf`, `hostname`.
    pub etc_files: Vec<EtcFile>,
}

/// One of the container's interfaces, found by its MAC address, with its
/// address and, on one of them, the default route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceSpec {
    /// As Linux shows it in sysfs: `02:68:0a:59:00:02`.
    pub mac: String,
    pub address: std::net::Ipv4Addr,
    pub prefix_len: u8,
    /// The default route's gateway; 0.0.0.0 on an interface without it.
    pub gateway: std::net::Ipv4Addr,
}

/// A file of the container's `/etc`, by plain name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcFile {
    pub name: String,
    pub contents: String,
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

/// How the agent assembles the container's root file system: read-only
/// lower layers from a virtio-fs share under an overlay whose writable layer
/// is an ext4 scratch disk, or memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsSpec {
    /// virtio-fs tag of the read-only share holding the lower layers.
    pub share: String,
    /// Layer directories inside the share (relative paths of plain names),
    /// top-most first (overlayfs order). Empty: the share itself is the only
    /// lower layer.
    pub layers: Vec<String>,
    /// Block device with an ext4 file system for the container's writes,
    /// e.g. `/dev/vda`. `None` keeps writes in guest memory.
    pub scratch_device: Option<String>,
    /// Mount the root file system read-only (`--read-only`): only the
    /// mounts below, /dev (with /dev/shm) and the kernel's file systems
    /// stay writable, as with Docker.
    #[serde(default)]
    pub read_only: bool,
    /// What is mounted over the root, in order (a mount inside another
    /// comes after it).
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
}

/// A mount over the container's root file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Where, inside the container: an absolute path, made if missing (as
    /// a directory, or an empty file for a single-file share entry).
    pub target: String,
    /// What.
    pub source: MountSource,
    /// Read-only inside the container.
    pub read_only: bool,
}

/// What a [`MountSpec`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSource {
    /// A virtio-fs share of the host (a bind mount or a volume).
    Share {
        /// The share's virtio-fs tag.
        tag: String,
        /// One entry of the share's directory instead of all of it: how a
        /// single host file is bind-mounted (the host shares its parent
        /// directory showing that entry only).
        entry: Option<String>,
        /// A directory or file below the share's directory instead of all
        /// of it: a volume's `volume-subpath`, a relative path the agent
        /// resolves within the share (links too); it must exist.
        #[serde(default)]
        subpath: Option<String>,
        /// Fill an empty share with what the image has at `target` first,
        /// owners, modes and all (a named volume's first mount, as
        /// Docker's).
        copy_up: bool,
    },
    /// A tmpfs in the guest's memory.
    Tmpfs {
        /// Its size limit (default: half the guest's memory, the kernel's).
        size_bytes: Option<u64>,
        /// Its root directory's mode (default 1777).
        mode: Option<u32>,
    },
}

/// Limits and privileges of a container's processes, enforced in its
/// guest; `None` or empty fields leave the guest's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// cgroup memory.max (`--memory`).
    pub memory_max_bytes: Option<u64>,
    /// cgroup memory.low (`--memory-reservation`).
    pub memory_low_bytes: Option<u64>,
    /// cgroup cpu.max, in millionths of a CPU per period of 100 ms
    /// (`--cpus 1.5`: 150000).
    pub cpu_quota_usec: Option<u64>,
    /// cgroup cpu.weight, from Docker's `--cpu-shares` (1024: 100).
    pub cpu_weight: Option<u64>,
    /// cgroup pids.max (`--pids-limit`).
    pub pids_max: Option<u64>,
    /// Resource limits of the process (`--ulimit nofile=1024:2048`).
    pub rlimits: Vec<Rlimit>,
    /// Size of /dev/shm (`--shm-size`; Docker's default 64 MiB).
    pub shm_size_bytes: Option<u64>,
    /// The capabilities the process keeps, by name without `CAP_`
    /// (`CHOWN`); `None`: all of them (`--privileged`).
    pub capabilities: Option<Vec<String>>,
    /// Kernel parameters set before the process starts
    /// (`--sysctl net.ipv4.ip_forward=1`).
    pub sysctls: Vec<(String, String)>,
    /// Groups every process of the container is in besides its user's
    /// (`--group-add`): names in the container's `/etc/group`, or numeric
    /// ids.
    #[serde(default)]
    pub additional_groups: Vec<String>,
    /// No process of the container gains privileges through `execve`
    /// (set-id bits, file capabilities): `--security-opt
    /// no-new-privileges`.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// The OOM killer's bias for every process of the container, -1000
    /// (never) to 1000 (first): `--oom-score-adj`.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

impl Limits {
    /// The limits of these that are the container's cgroup's.
    pub fn cgroup(&self) -> CgroupLimits {
        CgroupLimits {
            memory_max_bytes: self.memory_max_bytes,
            memory_low_bytes: self.memory_low_bytes,
            cpu_quota_usec: self.cpu_quota_usec,
            cpu_weight: self.cpu_weight,
            pids_max: self.pids_max,
        }
    }
}

/// The limits of a container's cgroup in its guest, as [`Limits`] has
/// them; `None` leaves a file as it is. Zero is no limit for memory, CPU
/// quota and pids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLimits {
    /// memory.max.
    #[serde(default)]
    pub memory_max_bytes: Option<u64>,
    /// memory.low.
    #[serde(default)]
    pub memory_low_bytes: Option<u64>,
    /// cpu.max's quota, per period of 100 ms.
    #[serde(default)]
    pub cpu_quota_usec: Option<u64>,
    /// cpu.weight.
    #[serde(default)]
    pub cpu_weight: Option<u64>,
    /// pids.max.
    #[serde(default)]
    pub pids_max: Option<u64>,
}

/// One resource limit, by its `ulimit` name (`nofile`, `nproc`, `core`,
/// ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `nofile`, `nproc`, `core`, `memlock`, `stack`, ...
    pub name: String,
    /// The soft limit (u64::MAX: unlimited).
    pub soft: u64,
    /// The hard limit (u64::MAX: unlimited).
    pub hard: u64,
}

/// What the host may ask an agent about its container: instead of running
/// a process (on [`EXEC_PORT`]), or once the session's process has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// Its resource use ([`ContainerStats`]).
    Stats,
    /// Its processes ([`ProcessInfo`]).
    Processes,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Stats(ContainerStats),
    Processes(Vec<ProcessInfo>),
}

/// The resource use of a container's cgroup in the guest.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// CPU time used since the container started, in microseconds.
    pub cpu_usage_usec: u64,
    pub memory_bytes: u64,
    /// Its memory limit, or the guest's memory when it has none.
    pub memory_limit_bytes: u64,
    pub pids: u64,
    /// Processes the kernel killed for want of memory.
    pub oom_kills: u64,
    /// Bytes the guest's network interfaces received and sent (the
    /// container has the guest's network namespace).
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// Bytes read from and written to the guest's disks.
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
}

/// One process of a container, as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its pid in the container's pid namespace.
    pub pid: u32,
    /// Its parent's, or 0 when the parent is outside the container.
    pub ppid: u32,
    /// Its effective uid.
    pub uid: u32,
    /// The name of `uid` in the container's `/etc/passwd`, if it has one.
    pub user: Option<String>,
    /// ps's STAT: the state letter of /proc/PID/stat (R, S, D, Z, T, ...)
    /// and BSD flags (`<`, `N`, `s`, `l`, `+`).
    pub state: String,
    /// User plus system CPU time, in milliseconds.
    pub cpu_time_ms: u64,
    /// How long it has run, in milliseconds.
    pub elapsed_ms: u64,
    /// Its controlling terminal (`pts/0`, `console`), if any.
    pub tty: Option<String>,
    /// Virtual memory size and resident set, in KiB.
    pub vsz_kib: u64,
    pub rss_kib: u64,
    /// Its resident set in thousandths of the machine's memory.
    pub memory_permille: u32,
    /// Its executable's name (`comm`, at most 15 bytes).
    pub name: String,
    /// Its command line, or `[name]` for a process without one.
    pub command: String,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// The status a shell would report: the code itself, or 128 + signal.
    /// Values no process can end with (the peer is not trusted) give 255.
    pub fn shell_code(self) -> u8 {
        let code = match self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signal(signal @ 1..=64) => 128 + signal,
            ExitStatus::Signal(_) => i32::from(u8::MAX),
        };
        u8::try_from(code).unwrap_or(u8::MAX)
    }
}

/// One protocol message. Direction is noted on each variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Both ways; the agent sends it first, the host answers with its own.
    Hello(Hello),
    /// Host to agent: start the container's process.
    Run(Box<RunSpec>),
    /// Host to agent, instead of Run, on an exec session ([`EXEC_PORT`])
    /// only (`hull exec -d`): start the process with its stdin, stdout and
    /// stderr on /dev/null (with [`RunSpec::tty`], on a terminal whose output
    /// the agent reads and discards), answer `Started` or `Failed`, and end
    /// the session, leaving the process running. The agent reaps it when it
    /// ends; nobody learns its exit status. The session that starts the
    /// container's process refuses it with `Failed`.
    RunDetached(Box<RunSpec>),
    /// Agent to host: the process is running with this pid (in the guest).
    Started { pid: u32 },
    /// Host to agent: bytes for the process's stdin.
    Stdin(Vec<u8>),
    /// Host to agent: the host's stdin reached end of file.
    StdinClose,
    /// Agent to host: bytes the process wrote to stdout.
    Stdout(Vec<u8>),
    /// Agent to host: bytes the process wrote to stderr.
    Stderr(Vec<u8>),
    /// Host to agent: deliver this signal number to the process.
    Signal(i32),
    /// Agent to host: the process ended; all of its output was sent before.
    Exited(ExitStatus),
    /// Agent to host: the process could not be started; carries the reason.
    /// `code` is the exit status a shell would give (126, 127, ...).
    Failed { code: i32, reason: String },
    /// Host to agent: stop the machine now.
    Shutdown,
    /// Host to agent: the process's terminal (see [`RunSpec::tty`]) now has
    /// this size.
    Resize(TerminalSize),
    /// Host to agent, instead of Run (the session then ends after the
    /// answer) or after the process's Exited: report on the container; the
    /// agent answers with `Answer` (or `Failed`).
    Query(Query),
    /// Agent to host: what a Query asked for.
    Answer(Answer),
    /// Host to agent, instead of Run: copy a path of the container's file
    /// system (see [`copy`]); the agent answers `Exited(Code(0))` once done,
    /// or `Failed`.
    Copy(Copy),
    /// Host to agent, once the session's process has ended, or instead of
    /// Run on an exec session ([`EXEC_PORT`]) of a running container (or of
    /// one held for its files, [`RunSpec::hold`]): send
    /// what its processes changed in the container's root file system, its
    /// writable layer, as a layer tar with OCI whiteouts in `Stdout` frames
    /// (see [`Diff`]); the agent ends it with `Exited(Code(0))`, or
    /// `Failed`.
    Diff(Diff),
    /// Host to agent, instead of Run on an exec session of a running (or
    /// held) container: send its root file system as its processes see it (the
    /// image's layers and the writable layer merged) without what is
    /// mounted on it (`/proc`, `/sys`, `/dev`, volumes, bind mounts), as a
    /// tar in `Stdout` frames (`hull export`); ended as a Diff.
    Export,
    /// Host to agent, instead of Run on an exec session of a running
    /// container: write these limits into its cgroup (`hull update`); the
    /// agent answers `Exited(Code(0))` once done, or `Failed`.
    SetLimits(CgroupLimits),
    /// Host to agent, on an exec session ([`EXEC_PORT`]) whose process
    /// runs: the user typed the detach keys (`docker exec -it`'s ctrl-p
    /// ctrl-q). The host hangs up after it; the agent ends the session
    /// without killing the process, which runs on as a `RunDetached` one
    /// does: its input ends (a terminal stays open), its output is read
    /// and discarded, and nobody learns how it ends.
    Detach,
}

/// What a [`Message::Diff`] leaves out of the layer: paths the agent wrote
/// or mounted for the run rather than the process (its `/etc/hosts`, mount
/// points), absolute paths in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub exclude: Vec<String>,
    /// Freeze the container's processes while the layer is read (`hull
    /// commit --pause`), so that it is one moment's.
    #[serde(default)]
    pub pause: bool,
    /// Directories made only to hold mount points (ancestors of excluded
    /// paths that the image lacks): each is left out too if it holds
    /// nothing but what is left out, as BuildKit removes the mount stubs
    /// of a `RUN`'s mounts.
    #[serde(default)]
    pub stubs: Vec<String>,
}

/// A `hull cp` between the host and a container, paths in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Copy {
    /// The agent sends `path` as a tar stream in `Stdout` frames;
    /// `follow_link`: a link `path` names is sent as what it points to
    /// (`hull cp -L`).
    Out {
        path: String,
        #[serde(default)]
        follow_link: bool,
    },
    /// The host sends a tar stream in `Stdin` frames, ended by
    /// `StdinClose`, which the agent unpacks as `dest`; `contents`: the
    /// stream holds a directory's contents ([`copy::receive`]); `archive`:
    /// the files keep the sender's owners (`hull cp -a`).
    In {
        dest: String,
        contents: bool,
        #[serde(default)]
        archive: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on the agent channel: {0}")]
    Io(#[from] io::Error),
    #[error("agent channel closed in the middle of a frame")]
    Truncated,
    #[error("frame of {0} bytes exceeds the protocol limit")]
    TooLarge(usize),
    #[error("empty frame")]
    Empty,
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    /// `reason` is serde's, cut to [`MAX_REASON`] bytes: it quotes the
    /// peer's strings, and a hostile guest's could fill the host's logs.
    #[error("malformed {what} frame: {reason}")]
    Malformed { what: &'static str, reason: String },
}

mod tag {
    pub const HELLO: u8 = 1;
    pub const RUN: u8 = 2;
    pub const STARTED: u8 = 3;
    pub const STDIN: u8 = 4;
    pub const STDIN_CLOSE: u8 = 5;
    pub const STDOUT: u8 = 6;
    pub const STDERR: u8 = 7;
    pub const SIGNAL: u8 = 8;
    pub const EXITED: u8 = 9;
    pub const FAILED: u8 = 10;
    pub const SHUTDOWN: u8 = 11;
    pub const RESIZE: u8 = 12;
    pub const QUERY: u8 = 13;
    pub const ANSWER: u8 = 14;
    pub const COPY: u8 = 15;
    pub const RUN_DETACHED: u8 = 16;
    pub const DIFF: u8 = 17;
    pub const EXPORT: u8 = 18;
    pub const SET_LIMITS: u8 = 19;
    pub const DETACH: u8 = 20;
}

#[derive(Serialize, Deserialize)]
struct StartedBody {
    pid: u32,
}

#[derive(Serialize, Deserialize)]
struct FailedBody {
    code: i32,
    reason: String,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("protocol types always serialize")
}

fn from_json<'a, T: Deserialize<'a>>(what: &'static str, body: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|source| Error::Malformed {
        what,
        reason: cut(source.to_string()),
    })
}

/// The longest reason a [`Error::Malformed`] quotes.
const MAX_REASON: usize = 160;

/// `text`, or its first [`MAX_REASON`] bytes (at a character boundary)
/// and how long it was.
fn cut(mut text: String) -> String {
    if text.len() <= MAX_REASON {
        return text;
    }
    let len = text.len();
    let end = (0..=MAX_REASON)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text.truncate(end);
    text.push_str(&format!("... ({len} bytes)"));
    text
}

impl Message {
    fn encode_body(&self) -> (u8, Vec<u8>) {
        match self {
            Message::Hello(hello) => (tag::HELLO, json(hello)),
            Message::Run(spec) => (tag::RUN, json(spec)),
            Message::RunDetached(spec) => (tag::RUN_DETACHED, json(spec)),
            Message::Started { pid } => (tag::STARTED, json(&StartedBody { pid: *pid })),
            Message::Stdin(data) => (tag::STDIN, data.clone()),
            Message::StdinClose => (tag::STDIN_CLOSE, Vec::new()),
            Message::Stdout(data) => (tag::STDOUT, data.clone()),
            Message::Stderr(data) => (tag::STDERR, data.clone()),
            Message::Signal(signal) => (tag::SIGNAL, json(signal)),
            Message::Exited(status) => (tag::EXITED, json(status)),
            Message::Failed { code, reason } => (
                tag::FAILED,
                json(&FailedBody {
                    code: *code,
                    reason: reason.clone(),
                }),
            ),
            Message::Shutdown => (tag::SHUTDOWN, Vec::new()),
            Message::Resize(size) => (tag::RESIZE, json(size)),
            Message::Query(query) => (tag::QUERY, json(query)),
            Message::Answer(answer) => (tag::ANSWER, json(answer)),
            Message::Copy(copy) => (tag::COPY, json(copy)),
            Message::Diff(diff) => (tag::DIFF, json(diff)),
            Message::Export => (tag::EXPORT, Vec::new()),
            Message::SetLimits(limits) => (tag::SET_LIMITS, json(limits)),
            Message::Detach => (tag::DETACH, Vec::new()),
        }
    }

    fn decode(tag: u8, body: Vec<u8>) -> Result<Message, Error> {
        Ok(match tag {
            tag::HELLO => Message::Hello(from_json("hello", &body)?),
            tag::RUN => Message::Run(from_json("run", &body)?),
            tag::RUN_DETACHED => Message::RunDetached(from_json("run detached", &body)?),
            tag::STARTED => {
                let StartedBody { pid } = from_json("started", &body)?;
                Message::Started { pid }
            }
            tag::STDIN => Message::Stdin(body),
            tag::STDIN_CLOSE => Message::StdinClose,
            tag::STDOUT => Message::Stdout(body),
            tag::STDERR => Message::Stderr(body),
            tag::SIGNAL => Message::Signal(from_json("signal", &body)?),
            tag::EXITED => Message::Exited(from_json("exited", &body)?),
            tag::FAILED => {
                let FailedBody { code, reason } = from_json("failed", &body)?;
                Message::Failed { code, reason }
            }
            tag::SHUTDOWN => Message::Shutdown,
            tag::RESIZE => Message::Resize(from_json("resize", &body)?),
            tag::QUERY => Message::Query(from_json("query", &body)?),
            tag::ANSWER => Message::Answer(from_json("answer", &body)?),
            tag::COPY => Message::Copy(from_json("copy", &body)?),
            tag::DIFF => Message::Diff(from_json("diff", &body)?),
            tag::EXPORT => Message::Export,
            tag::SET_LIMITS => Message::SetLimits(from_json("set limits", &body)?),
            tag::DETACH => Message::Detach,
            other => return Err(Error::UnknownTag(other)),
        })
    }

    /// Encodes the message as one complete frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, Error> {
        let (tag, body) = self.encode_body();
        if body.len() > MAX_BODY {
            return Err(Error::TooLarge(body.len()));
        }
        let len = u32::try_from(body.len() + 1).expect("bounded by MAX_BODY");
        let mut frame = Vec::with_capacity(5 + body.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.push(tag);
        frame.extend_from_slice(&body);
        Ok(frame)
    }
}

/// Writes one message as a single `write_all`, so frames from threads sharing
/// a writer behind a lock never interleave.
pub fn write_message<W: Write + ?Sized>(writer: &mut W, message: &Message) -> Result<(), Error> {
    writer.write_all(&message.to_frame()?)?;
    writer.flush()?;
    Ok(())
}

/// Reads one message. Returns `Ok(None)` when the stream ends cleanly between
/// frames, and [`Error::Truncated`] when it ends inside one.
pub fn read_message<R: Read + ?Sized>(reader: &mut R) -> Result<Option<Message>, Error> {
    let mut len_bytes = [0u8; 4];
    let mut filled = 0;
    while filled < len_bytes.len() {
        match reader.read(&mut len_bytes[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(Error::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 {
        return Err(Error::Empty);
    }
    if len - 1 > MAX_BODY {
        return Err(Error::TooLarge(len - 1));
    }
    let mut frame = vec![0u8; len];
    reader.read_exact(&mut frame).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Truncated,
        _ => Error::Io(e),
    })?;
    let body = frame.split_off(1);
    Message::decode(frame[0], body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_messages() -> Vec<Message> {
        vec![
            Message::Hello(Hello {
                version: VERSION,
                software: "hull-agent 0.1.0".into(),
            }),
            Message::Run(Box::new(RunSpec {
                argv: vec!["/bin/sh".into(), "-c".into(), "echo 'hi'; exit 3".into()],
                env: vec!["PATH=/bin".into(), "A=b=c".into()],
                cwd: "/tmp".into(),
                user: "1000:100".into(),
                hostname: "box".into(),
                domainname: String::new(),
                rootfs: Some(RootfsSpec {
                    share: "hull-layers".into(),
                    layers: vec!["top".into(), "base".into()],
                    scratch_device: Some("/dev/vda".into()),
                    read_only: true,
                    mounts: vec![
                        MountSpec {
                            target: "/data".into(),
                            source: MountSource::Share {
                                tag: "hull-vol-0".into(),
                                entry: None,
                                subpath: Some("db/data".into()),
                                copy_up: true,
                            },
                            read_only: false,
                        },
                        MountSpec {
                            target: "/tmp".into(),
                            source: MountSource::Tmpfs {
                                size_bytes: Some(1 << 20),
                                mode: Some(0o1777),
                            },
                            read_only: false,
                        },
                    ],
                }),
                tty: Some(TerminalSize { rows: 24, cols: 80 }),
                network: Some(NetworkSpec {
                    interfaces: vec![InterfaceSpec {
                        mac: "02:68:0a:58:00:02".into(),
                        address: std::net::Ipv4Addr::new(10, 88, 0, 2),
                        prefix_len: 16,
                        gateway: std::net::Ipv4Addr::new(10, 88, 0, 1),
                    }],
                    etc_files: vec![EtcFile {
                        name: "hosts".into(),
                        contents: "127.0.0.1\tlocalhost\n".into(),
                    }],
                }),
                limits: Some(Limits {
                    memory_max_bytes: Some(256 << 20),
                    pids_max: Some(100),
                    rlimits: vec![Rlimit {
                        name: "nofile".into(),
                        soft: 1024,
                        hard: 2048,
                    }],
                    capabilities: Some(vec!["CHOWN".into()]),
                    sysctls: vec![("net.ipv4.ip_forward".into(), "1".into())],
                    ..Limits::default()
                }),
                hold: true,
                privileged: false,
            })),
            Message::RunDetached(Box::new(RunSpec {
                argv: vec!["sleep".into(), "600".into()],
                env: Vec::new(),
                cwd: "/".into(),
                user: String::new(),
                hostname: "box".into(),
                domainname: String::new(),
                rootfs: None,
                tty: None,
                network: None,
                limits: None,
                hold: false,
                privileged: false,
            })),
            Message::Started { pid: 7 },
            Message::Stdin(b"input\n".to_vec()),
            Message::StdinClose,
            Message::Stdout(vec![0, 255, 10, 13]),
            Message::Stderr(Vec::new()),
            Message::Signal(15),
            Message::Exited(ExitStatus::Code(3)),
            Message::Exited(ExitStatus::Signal(9)),
            Message::Failed {
                code: 127,
                reason: "exec /nope: No such file or directory".into(),
            },
            Message::Shutdown,
            Message::Resize(TerminalSize {
                rows: 50,
                cols: 132,
            }),
            Message::Query(Query::Stats),
            Message::Query(Query::Processes),
            Message::Copy(Copy::In {
                dest: "/tmp".into(),
                contents: true,
                archive: true,
            }),
            Message::Diff(Diff {
                exclude: vec!["/etc/hosts".into()],
                pause: true,
                stubs: vec!["/root/.cache".into()],
            }),
            Message::Export,
            Message::Detach,
            Message::SetLimits(CgroupLimits {
                memory_max_bytes: Some(256 << 20),
                pids_max: Some(0),
                ..CgroupLimits::default()
            }),
            Message::Answer(Answer::Stats(ContainerStats {
                cpu_usage_usec: 1_234_567,
                memory_bytes: 3 << 20,
                memory_limit_bytes: 512 << 20,
                pids: 4,
                oom_kills: 0,
                net_rx_bytes: 1500,
                net_tx_bytes: 648,
                block_read_bytes: 4096,
                block_write_bytes: 1 << 20,
            })),
            Message::Answer(Answer::Processes(vec![ProcessInfo {
                pid: 1,
                ppid: 0,
                uid: 0,
                user: Some("root".into()),
                state: "S".into(),
                cpu_time_ms: 20,
                elapsed_ms: 61_000,
                tty: Some("pts/0".into()),
                vsz_kib: 1720,
                rss_kib: 980,
                memory_permille: 4,
                name: "sh".into(),
                command: "sh -c sleep 600".into(),
            }])),
        ]
    }

    #[test]
    fn every_message_round_trips_through_one_stream() {
        let mut stream = Vec::new();
        for message in all_messages() {
            write_message(&mut stream, &message).unwrap();
        }
        let mut reader = stream.as_slice();
        for expected in all_messages() {
            assert_eq!(read_message(&mut reader).unwrap(), Some(expected));
        }
        assert_eq!(read_message(&mut reader).unwrap(), None);
    }

    #[test]
    fn truncated_frames_are_errors_not_eof() {
        let frame = Message::Stdout(b"hello".to_vec()).to_frame().unwrap();
        for cut in 1..frame.len() {
            let err = read_message(&mut &frame[..cut]).unwrap_err();
            assert!(matches!(err, Error::Truncated), "cut at {cut}: {err:?}");
        }
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let big = Message::Stdout(vec![0; MAX_BODY + 1]);
        assert!(matches!(big.to_frame(), Err(Error::TooLarge(_))));

        let mut header = ((MAX_BODY + 2) as u32).to_le_bytes().to_vec();
        header.push(tag::STDOUT);
        assert!(matches!(
            read_message(&mut header.as_slice()),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn unknown_tags_empty_frames_and_bad_json_are_errors() {
        let unknown = [1, 0, 0, 0, 200];
        assert!(matches!(
            read_message(&mut &unknown[..]),
            Err(Error::UnknownTag(200))
        ));
        let empty = [0, 0, 0, 0];
        assert!(matches!(read_message(&mut &empty[..]), Err(Error::Empty)));
        let mut bad = 4u32.to_le_bytes().to_vec();
        bad.push(tag::RUN);
        bad.extend_from_slice(b"{x}");
        assert!(matches!(
            read_message(&mut bad.as_slice()),
            Err(Error::Malformed { what: "run", .. })
        ));
    }

    /// Found by the `frames` fuzz target: serde quotes a string where a
    /// number belongs whole, so an agent could make the host print a
    /// 256 KiB line.
    #[test]
    fn malformed_frames_quote_a_short_prefix_of_the_peer_s_text() {
        let body = format!(r#"{{"pid":"{}"}}"#, "é".repeat(MAX_BODY / 4));
        let mut frame = u32::try_from(body.len() + 1)
            .unwrap()
            .to_le_bytes()
            .to_vec();
        frame.push(tag::STARTED);
        frame.extend_from_slice(body.as_bytes());
        let err = read_message(&mut frame.as_slice()).unwrap_err().to_string();
        assert!(err.len() < 256, "{} bytes: {err:.300}", err.len());
        assert!(
            err.starts_with("malformed started frame: invalid type: string \"éé"),
            "{err}"
        );
        assert!(err.ends_with(" bytes)") && err.contains("... ("), "{err}");
    }

    #[test]
    fn shell_codes_follow_the_128_plus_signal_rule() {
        assert_eq!(ExitStatus::Code(3).shell_code(), 3);
        assert_eq!(ExitStatus::Signal(9).shell_code(), 137);
        for impossible in [
            ExitStatus::Code(256),
            ExitStatus::Code(-1),
            ExitStatus::Signal(0),
            ExitStatus::Signal(-3),
            ExitStatus::Signal(i32::MAX),
        ] {
            assert_eq!(impossible.shell_code(), 255, "{impossible:?}");
        }
    }
}
