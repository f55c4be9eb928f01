//! `start_attached`: a container started by a monitor of its own, as
//! `start` starts it, and joined by the caller before its process starts
//! (Docker's `run -it`): the caller sees all of its output, its input,
//! resizes and signals reach the process, and the detach keys leave it
//! running in the background.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Context;
use hull_protocol::ExitStatus;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::attach_server;
use crate::container::{self, Container, Status};
use crate::error::{Error, Hint, Result};
use crate::ops::attach::detach_keys;
use crate::ops::start::{read_rest, reap_in_background, spawn_monitor, start_failure};
use crate::ops::{outcome, Outcome, Stdio};
use crate::session::{self, Request, SessionEnd};
use crate::signals::Signals;
use crate::Runtime;

/// How often the caller looks for the monitor's attach socket, and at the
/// record of a run that ended.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long the monitor may take to record a run's end once its process
/// ended (its VM powers off first), or to take the container at its
/// start.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);

impl Runtime {
    /// Starts the created or stopped container `name` with a monitor of its
    /// own and joins its process with `stdio` from its start, until it ends
    /// or the detach keys (`stdio`'s, else the container's, else Docker's)
    /// are typed, which leave it running. A terminating signal in
    /// [`Stdio::signals`] while its VM boots ends the run
    /// ([`Outcome::Interrupted`]); `stop` and `kill` end it as the
    /// process's end (137 once killed). An ended run returns once it has
    /// been recorded (and the container removed, if it was created to be);
    /// a process that could not be started is an error
    /// ([`Error::CommandNotFound`], ...).
    pub fn start_attached(&self, name: &str, stdio: Stdio) -> Result<Outcome> {
        let container = container::find(&self.root, name)?;
        if container.state()?.monitor_pid().is_some() {
            return Err(Error::Running {
                name: container.config.name.clone(),
                hint: Hint::new("it runs already; attach to it"),
            });
        }
        let (mut monitor, mut log) = spawn_monitor(&self.root, &container, true)?;
        let socket = attach_server::socket_path(&self.root.run_dir_path(container.id()));
        let stream = match join(&mut monitor, &socket, stdio.signals.as_ref())? {
            Joined::Stream(stream) => stream,
            Joined::Interrupted(signal) => {
                interrupt(&container, &mut monitor, signal);
                return Ok(Outcome::Interrupted { signal });
            }
            Joined::MonitorEnded => {
                let state = container.state().ok();
                return Err(start_failure(
                    &container,
                    state.as_ref(),
                    &read_rest(&mut log),
                ));
            }
        };
        let stdio = Stdio {
            detach_keys: detach_keys(
                stdio.detach_keys.clone(),
                &container.config,
                container.config.boot.tty.is_some(),
            ),
            ..stdio
        };
        let (input, mut output, controls) = stdio.split();
        // A session's error is its breaking off; a process that could not
        // start is a session's end.
        let end = session::attach(stream, Request::Join, input, controls, &mut output);
        // Detached, or a session that broke off while the process runs on
        // (not torn down by `stop` or `kill`): the monitor goes on alone.
        let runs_on = || {
            container
                .state()
                .is_ok_and(|state| state.status == Status::Running && !state.manually_stopped)
        };
        if matches!(end, Ok(SessionEnd::Detached)) || (end.is_err() && runs_on()) {
            reap_in_background(monitor);
            return outcome(end?);
        }
        wait_for_record(&container, &mut monitor);
        reap_in_background(monitor);
        let recorded = container.state().ok().filter(|_| container.exists());
        match end {
            Ok(SessionEnd::Exited { status, .. }) => Ok(Outcome::Exited {
                status,
                oom_killed: recorded.is_some_and(|state| state.oom_killed),
            }),
            // `stop` or `kill` tore its VM down under the session (and
            // `--rm` may have removed it since): killed, as Docker has it.
            Err(_) if recorded.as_ref().is_none_or(|state| state.manually_stopped) => {
                Ok(Outcome::Exited {
                    status: ExitStatus::Signal(libc::SIGKILL),
                    oom_killed: false,
                })
            }
            end => outcome(end?),
        }
    }
}

/// How the wait for the monitor's attach socket ended.
enum Joined {
    /// Connected.
    Stream(UnixStream),
    /// The caller got this terminating signal first.
    Interrupted(i32),
    /// The monitor ended without serving the socket.
    MonitorEnded,
}

/// Connects to `socket` once `monitor` serves it, the container booted.
fn join(monitor: &mut Child, socket: &Path, signals: Option<&Signals>) -> Result<Joined> {
    loop {
        if let Some(signal) = signals.and_then(Signals::interruption) {
            return Ok(Joined::Interrupted(signal));
        }
        if let Ok(stream) = UnixStream::connect(socket) {
            return Ok(Joined::Stream(stream));
        }
        let ended = monitor.try_wait().context("cannot check on the monitor")?;
        if ended.is_some() {
            return Ok(Joined::MonitorEnded);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Passes the caller's `signal` on to `monitor`, which ends the boot on it
/// as on a `stop`, once it has taken the container (and so catches it);
/// waits for it to end.
fn interrupt(container: &Container, monitor: &mut Child, signal: i32) {
    let deadline = Instant::now() + RECORD_TIMEOUT;
    while Instant::now() < deadline
        && matches!(monitor.try_wait(), Ok(None))
        && container
            .state()
            .is_ok_and(|state| state.monitor_pid().is_none())
    {
        std::thread::sleep(POLL_INTERVAL);
    }
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = kill(Pid::from_raw(monitor.id() as i32), signal);
    }
    let _ = monitor.wait();
}

/// Waits until the run that `monitor` held has been recorded as ended:
/// removed with the container if it was created to be, else its state no
/// longer running (a monitor that boots it again as `update` changed its
/// restart policy goes on without the caller); at most [`RECORD_TIMEOUT`].
fn wait_for_record(container: &Container, monitor: &mut Child) {
    let deadline = Instant::now() + RECORD_TIMEOUT;
    while Instant::now() < deadline && matches!(monitor.try_wait(), Ok(None)) {
        let recorded = !container.config.auto_remove
            && container
                .state()
                .is_ok_and(|state| state.status != Status::Running);
        if recorded {
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
