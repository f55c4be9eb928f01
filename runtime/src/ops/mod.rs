//! What a [`Runtime`](crate::Runtime) does, one operation per file, each
//! an `impl Runtime` block with its options and report.

pub(crate) mod agent;
mod attach;
mod commit;
mod copy;
mod create;
mod diff;
mod exec;
mod export;
mod held_elsewhere;
mod inspect;
mod kill;
mod list;
mod logs;
mod networks;
mod pause;
mod prune;
mod remove;
mod rename;
mod run;
mod start;
mod start_attached;
mod stats;
mod step;
mod stop;
mod top;
mod update;
mod volumes;
mod wait;

use std::io::{Read, Write};

use crossbeam_channel::Receiver;
use hull_protocol::{ExitStatus, TerminalSize};

pub use commit::CommitOptions;
pub use copy::{CopyOptions, CopySource, CopyTarget};
pub use create::{CreateOptions, Created, RootfsChoice};
pub use exec::ExecOptions;
pub use inspect::ContainerInfo;
pub use logs::{Logs, LogsOptions};
pub use networks::{NetworkInfo, NetworkMember};
pub use prune::PrunedContainers;
pub use remove::RemoveOptions;
pub use stats::StatsSample;
pub use step::StepOptions;
pub use stop::StopOptions;
pub use update::UpdateOptions;
pub use volumes::{CreateVolumeOptions, PrunedVolumes, VolumeInfo};

use crate::detach_keys::DetachKeys;
use crate::error::Error;
use crate::session::{self, Controls, Input, SessionEnd, Writers};
use crate::signals::Signals;

/// The I/O of a session with a container's process: where its stdin comes
/// from and its output goes, the caller's terminal sizes (for a process on
/// a terminal) and the signals to pass on.
pub struct Stdio {
    /// The process's stdin; `None` closes it at once. It is read by a
    /// thread of its own, which a read blocked at the session's end keeps
    /// until the reader returns.
    pub stdin: Option<Box<dyn Read + Send>>,
    /// Where its stdout goes (its terminal's output, with a terminal).
    pub stdout: Box<dyn Write + Send>,
    /// Where its stderr goes.
    pub stderr: Box<dyn Write + Send>,
    /// The caller's terminal's sizes as it changes.
    pub resizes: Option<Receiver<TerminalSize>>,
    /// Signals for the process (see [`Signals::catch`]).
    pub signals: Option<Signals>,
    /// Typed in `stdin`, these end the session and leave the process
    /// running (exec and attach).
    pub detach_keys: Option<DetachKeys>,
    /// Called once the process is started or joined (after the VM booted):
    /// when a front end puts its terminal in raw mode. Its error ends the
    /// session.
    pub on_attached: Option<Box<dyn FnOnce() -> anyhow::Result<()> + Send>>,
}

impl Stdio {
    /// No input, output into `stdout` and `stderr`, nothing else.
    pub fn new(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Stdio {
        Stdio {
            stdin: None,
            stdout,
            stderr,
            resizes: None,
            signals: None,
            detach_keys: None,
            on_attached: None,
        }
    }

    /// The session's input, output sink and controls.
    fn split(self) -> (Input, Writers, Controls<'static>) {
        let input = match self.stdin {
            Some(reader) => Input::Reader {
                reader,
                detach_keys: self.detach_keys,
            },
            None => Input::Closed,
        };
        let controls = Controls {
            resizes: self.resizes,
            signals: self.signals,
            on_attached: self.on_attached,
            ..Controls::default()
        };
        (input, Writers::new(self.stdout, self.stderr), controls)
    }
}

/// How a session with a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The process ended.
    Exited {
        /// Its exit code or the signal that killed it.
        status: ExitStatus,
        /// Whether the kernel killed one of the container's processes for
        /// want of memory meanwhile (known to a run, not to an exec).
        oom_killed: bool,
    },
    /// The process runs on without the session: the detach keys were
    /// typed, or it was started detached (`exec -d`).
    Detached,
    /// A terminating signal came while the VM booted: the process never
    /// ran.
    Interrupted {
        /// The signal.
        signal: i32,
    },
}

impl Outcome {
    /// The exit code a shell would report: the process's own, 128+N for
    /// signal N, 0 for a detach.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Exited { status, .. } => status.shell_code(),
            Outcome::Detached => 0,
            Outcome::Interrupted { signal } => crate::signals::interrupted_exit_code(*signal),
        }
    }
}

/// A session's end as an outcome, or the error for a process that could
/// not be started.
pub(super) fn outcome(end: SessionEnd) -> crate::Result<Outcome> {
    match end {
        SessionEnd::Exited { status, oom_killed } => Ok(Outcome::Exited { status, oom_killed }),
        SessionEnd::Detached => Ok(Outcome::Detached),
        SessionEnd::Failed { code, reason } => Err(Error::not_started(code, reason)),
    }
}

/// Runs `request` through the agent session on `stream` with `stdio`.
fn run_session(
    stream: std::os::unix::net::UnixStream,
    request: session::Request,
    stdio: Stdio,
) -> crate::Result<Outcome> {
    let (input, mut output, controls) = stdio.split();
    outcome(session::attach(
        stream,
        request,
        input,
        controls,
        &mut output,
    )?)
}
