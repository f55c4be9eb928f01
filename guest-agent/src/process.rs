//! The container's process as the agent sees it: how it is started, signalled
//! and waited for, and how its start and its end are reported across `fork`.

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use hull_protocol::{Answer, CgroupLimits, ExitStatus, Query, RunSpec};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::WaitStatus;
use nix::unistd::{pipe2, Pid};

use crate::reaper::Child;
use crate::stdio::ChildStdio;

/// Exit status for errors of the agent itself rather than of the command,
/// as `docker run` uses 125 for errors of the daemon and runtime.
pub const AGENT_ERROR_CODE: i32 = 125;

/// Starts the container's process; one implementation per agent mode.
pub trait Launcher {
    /// Starts `spec` with `stdio` as its fds 0, 1 and 2, and returns once
    /// it runs the user's program or has failed to. The session calls this
    /// before it starts any thread, so implementations may `fork` and then
    /// allocate in the child.
    fn launch(&self, spec: &RunSpec, stdio: ChildStdio) -> anyhow::Result<Launch>;

    /// Answers a query about the container, where there is one.
    fn answer(&self, query: Query) -> anyhow::Result<Answer> {
        anyhow::bail!("this agent runs no container to answer {query:?} about")
    }

    /// The container's root directory as the agent reaches it, where there
    /// is a container (for `hull cp`).
    fn container_root(&self) -> Option<PathBuf> {
        None
    }

    /// The container's writable layer (the overlay's upper directory),
    /// where there is one (for `Diff`).
    fn writable_layer(&self) -> Option<PathBuf> {
        None
    }

    /// The container's root file system without what is mounted on it
    /// (the overlay's merged directory), where there is one (for `Export`).
    fn root_filesystem(&self) -> Option<PathBuf> {
        None
    }

    /// Freezes (`true`) or thaws the container's processes.
    fn set_frozen(&self, frozen: bool) -> anyhow::Result<()> {
        let _ = frozen;
        anyhow::bail!("this agent runs no container to freeze")
    }

    /// Writes `limits` into the running container's cgroup.
    fn set_limits(&self, limits: &CgroupLimits) -> anyhow::Result<()> {
        let _ = limits;
        anyhow::bail!("this agent runs no container to limit")
    }

    /// Whether this launcher's processes may be started detached
    /// (`RunDetached`) and left running when their session ends.
    fn allows_detached(&self) -> bool {
        true
    }
}

/// What came of a launch.
pub enum Launch {
    Running(Process),
    Failed(StartFailure),
}

/// Why the user's program could not be started, with the exit status a shell
/// would give (126, 127) or [`AGENT_ERROR_CODE`] for setup errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    pub code: i32,
    pub reason: String,
}

/// A child of the agent that runs the container's process: the process
/// itself (relay mode) or the tiny init that runs it (container mode).
pub struct Process {
    pid: Pid,
    /// Its wait status, once the reaper has taken it.
    child: Arc<Child>,
    /// Read end of the pipe on which a tiny init reports the exact status of
    /// the process it runs (see [`encode_exit`]); `None` when the child is
    /// the process itself.
    exit_report: Option<File>,
}

impl Process {
    /// Takes charge of the forked child `pid`, registered with the reaper
    /// as `child` (see [`crate::reaper::fork_watched`]).
    pub fn new(pid: Pid, child: Arc<Child>, exit_report: Option<File>) -> Self {
        Process {
            pid,
            child,
            exit_report,
        }
    }

    /// The child's pid in the agent's pid namespace.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// The same, as the system calls take it.
    pub fn raw_pid(&self) -> Pid {
        self.pid
    }

    /// Sends signal number `signo` (real-time signals included) to the
    /// child. Does nothing once the child has ended.
    pub fn signal(&self, signo: i32) -> io::Result<()> {
        let sent = self.child.while_unreaped(|| {
            // SAFETY: kill(2) touches no memory of ours. The pid cannot have
            // been recycled: the reaper waits for us.
            if unsafe { libc::kill(self.pid.as_raw(), signo) } == -1 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::ESRCH) {
                    return Err(err);
                }
            }
            Ok(())
        });
        sent.unwrap_or(Ok(()))
    }

    /// Whether the child has ended and been reaped.
    pub fn has_ended(&self) -> bool {
        self.child.while_unreaped(|| ()).is_none()
    }

    /// Blocks until the child ends and returns the status of the container's
    /// process.
    pub fn wait(&self) -> anyhow::Result<ExitStatus> {
        let own = self.child.wait();
        let own = exit_status(own).with_context(|| format!("unexpected wait status {own:?}"))?;
        let Some(mut report) = self.exit_report.as_ref() else {
            return Ok(own);
        };
        let mut record = Vec::new();
        report
            .read_to_end(&mut record)
            .context("reading the exit report of the container's init")?;
        // No record means the init itself was killed (Signal(9) from the
        // host): then the whole container died with it, by that signal.
        Ok(decode_exit(&record).unwrap_or(own))
    }
}

/// The end of a process, from its wait status.
pub fn exit_status(status: WaitStatus) -> Option<ExitStatus> {
    match status {
        WaitStatus::Exited(_, code) => Some(ExitStatus::Code(code)),
        WaitStatus::Signaled(_, signal, _) => Some(ExitStatus::Signal(signal as i32)),
        _ => None,
    }
}

/// Size of an exit record: a kind word and a value word.
pub const EXIT_RECORD_LEN: usize = 8;
const EXIT_KIND_CODE: u32 = 0;
const EXIT_KIND_SIGNAL: u32 = 1;

/// Encodes `status` as the record a tiny init writes to its exit report pipe.
pub fn encode_exit(status: ExitStatus) -> [u8; EXIT_RECORD_LEN] {
    let (kind, value) = match status {
        ExitStatus::Code(code) => (EXIT_KIND_CODE, code),
        ExitStatus::Signal(signal) => (EXIT_KIND_SIGNAL, signal),
    };
    let mut record = [0; EXIT_RECORD_LEN];
    record[..4].copy_from_slice(&kind.to_le_bytes());
    record[4..].copy_from_slice(&value.to_le_bytes());
    record
}

/// Decodes a record written by [`encode_exit`]; `None` if it is not one.
pub fn decode_exit(record: &[u8]) -> Option<ExitStatus> {
    let record: &[u8; EXIT_RECORD_LEN] = record.try_into().ok()?;
    let kind = u32::from_le_bytes(record[..4].try_into().ok()?);
    let value = i32::from_le_bytes(record[4..].try_into().ok()?);
    match kind {
        EXIT_KIND_CODE => Some(ExitStatus::Code(value)),
        EXIT_KIND_SIGNAL => Some(ExitStatus::Signal(value)),
        _ => None,
    }
}

/// Creates the close-on-exec pipe on which a forked child reports a failed
/// start. The parent learns that `exec` succeeded when the pipe closes
/// without a report.
pub fn start_report_pipe() -> io::Result<(StartReport, StartReporter)> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    Ok((StartReport(read.into()), StartReporter(write)))
}

/// The agent's end of the start report pipe.
pub struct StartReport(File);

impl StartReport {
    /// Blocks until every copy of the write end is closed (by `exec` or by
    /// exit) and returns the failure reported, if any.
    pub fn read(mut self) -> io::Result<Option<StartFailure>> {
        let mut report = Vec::new();
        self.0.read_to_end(&mut report)?;
        Ok((!report.is_empty()).then(|| decode_start_failure(&report)))
    }
}

/// The child's end of the start report pipe.
pub struct StartReporter(OwnedFd);

impl StartReporter {
    pub fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Reports `failure` to the agent and ends the calling forked process
    /// with `failure.code`, without running any exit handlers.
    pub fn fail(&self, failure: &StartFailure) -> ! {
        // Nothing is left to tell about a failed write: the agent then sees
        // the child's exit status instead.
        let _ = write_all(self.0.as_fd(), &encode_start_failure(failure));
        // SAFETY: _exit(2) is always safe; it skips the atexit handlers that
        // belong to the parent's copy of this address space.
        unsafe { libc::_exit(failure.code) }
    }
}

/// Longest reason sent, so that a report stays one atomic pipe write.
const MAX_REASON_LEN: usize = 2048;

fn encode_start_failure(failure: &StartFailure) -> Vec<u8> {
    let mut end = failure.reason.len().min(MAX_REASON_LEN);
    while !failure.reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut report = failure.code.to_le_bytes().to_vec();
    report.extend_from_slice(&failure.reason.as_bytes()[..end]);
    report
}

fn decode_start_failure(report: &[u8]) -> StartFailure {
    match report.split_first_chunk::<4>() {
        Some((code, reason)) => StartFailure {
            code: i32::from_le_bytes(*code),
            reason: String::from_utf8_lossy(reason).into_owned(),
        },
        None => StartFailure {
            code: AGENT_ERROR_CODE,
            reason: format!("truncated start report {report:?}"),
        },
    }
}

/// Runs `body` in a freshly forked child. A panic ends the child with
/// [`AGENT_ERROR_CODE`] instead of unwinding into its copy of the agent's
/// stack (which, in PID 1, would run the agent's shutdown path).
pub fn in_forked_child(body: impl FnOnce() -> Infallible) -> ! {
    let _ = panic::catch_unwind(AssertUnwindSafe(body));
    // SAFETY: _exit(2) is always safe; it skips the atexit handlers that
    // belong to the parent's copy of this address space.
    unsafe { libc::_exit(AGENT_ERROR_CODE) }
}

/// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(Errno::EINTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Waits for the start report of a freshly forked `process`: it is running
/// once the report pipe closes empty; a process that failed to start is
/// reaped, and its failure returned.
pub fn await_start(process: Process, report: StartReport) -> anyhow::Result<Launch> {
    match report.read().context("reading the start report")? {
        None => Ok(Launch::Running(process)),
        Some(failure) => {
            process
                .wait()
                .context("reaping the process that failed to start")?;
            Ok(Launch::Failed(failure))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn wait_statuses_map_to_codes_and_signals() {
        let pid = Pid::from_raw(42);
        assert_eq!(
            exit_status(WaitStatus::Exited(pid, 3)),
            Some(ExitStatus::Code(3))
        );
        assert_eq!(
            exit_status(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(ExitStatus::Signal(15))
        );
        assert_eq!(exit_status(WaitStatus::StillAlive), None);
    }

    #[test]
    fn exit_records_round_trip_and_reject_garbage() {
        for status in [
            ExitStatus::Code(0),
            ExitStatus::Code(255),
            ExitStatus::Code(-1),
            ExitStatus::Signal(9),
            ExitStatus::Signal(64),
        ] {
            assert_eq!(decode_exit(&encode_exit(status)), Some(status));
        }
        assert_eq!(decode_exit(&[]), None);
        assert_eq!(decode_exit(&encode_exit(ExitStatus::Code(1))[..7]), None);
        let mut unknown_kind = encode_exit(ExitStatus::Code(1));
        unknown_kind[0] = 7;
        assert_eq!(decode_exit(&unknown_kind), None);
    }

    #[test]
    fn start_failures_round_trip_and_long_reasons_are_cut_on_char_boundaries() {
        let failure = StartFailure {
            code: 127,
            reason: "exec nope: No such file or directory".into(),
        };
        assert_eq!(
            decode_start_failure(&encode_start_failure(&failure)),
            failure
        );

        let long = StartFailure {
            code: 126,
            reason: "é".repeat(MAX_REASON_LEN),
        };
        let decoded = decode_start_failure(&encode_start_failure(&long));
        assert_eq!(decoded.code, 126);
        assert!(decoded.reason.len() <= MAX_REASON_LEN);
        assert!(decoded.reason.chars().all(|c| c == 'é'));

        assert_eq!(decode_start_failure(&[1, 2]).code, AGENT_ERROR_CODE);
    }

    #[test]
    fn a_closed_report_pipe_without_data_means_started() {
        let (report, reporter) = start_report_pipe().unwrap();
        drop(reporter);
        assert_eq!(report.read().unwrap(), None);
    }
}
