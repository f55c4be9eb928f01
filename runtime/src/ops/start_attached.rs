//! `start_attached`: a container started by a monitor of its own, as
//! `start` starts it, and joined by the caller before its process starts
//! (Docker's `run -it`): the caller sees all of its output, its input,
//! resizes and signals reach the process, and the detach keys leave it
//! running in the background.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use anyhow::{anyhow, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::attach_server;
use crate::container::{self, Container};
use crate::error::{Error, Hint, Result};
use crate::ops::start::{reap_in_background, spawn_monitor};
use crate::ops::{run_session, Outcome, Stdio};
use crate::session::Request;
use crate::signals::Signals;
use crate::Runtime;

/// How often the caller looks for the monitor's attach socket.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl Runtime {
    /// Starts the created or stopped container `name` with a monitor of its
    /// own and joins its process with `stdio` from its start, until it ends
    /// or the detach keys (`stdio`'s, else the container's, else Docker's)
    /// are typed, which leave it running. A terminating signal in
    /// [`Stdio::signals`] while its VM boots ends the run
    /// ([`Outcome::Interrupted`]). An ended run returns once it has been
    /// recorded (and the container removed, if it was created to be); a
    /// process that could not be started is an error
    /// ([`Error::CommandNotFound`], ...).
    pub fn start_attached(&self, name: &str, stdio: Stdio) -> Result<Outcome> {
        let container = container::find(&self.root, name)?;
        if container.state()?.monitor_pid().is_some() {
            return Err(Error::Running {
                name: container.config.name.clone(),
                hint: Hint::new("it runs already; attach to it"),
            });
        }
        let mut monitor = spawn_monitor(&self.root, &container, true)?;
        let socket = attach_server::socket_path(&self.root.run_dir_path(container.id()));
        let stream = match join(&mut monitor, &socket, stdio.signals.as_ref())? {
            Joined::Stream(stream) => stream,
            Joined::Interrupted(signal) => {
                // The monitor ends the boot on it, as for `stop`.
                let _ = Signal::try_from(signal)
                    .map(|signal| kill(Pid::from_raw(monitor.id() as i32), signal));
                let _ = monitor.wait();
                return Ok(Outcome::Interrupted { signal });
            }
            Joined::MonitorEnded => return Err(not_started(&container)),
        };
        let detach_keys = stdio
            .detach_keys
            .clone()
            .or_else(|| container.config.detach_keys.clone())
            .or_else(|| Some(Default::default()));
        let outcome = run_session(
            stream,
            Request::Join,
            Stdio {
                detach_keys,
                ..stdio
            },
        );
        if let Ok(Outcome::Detached) = outcome {
            reap_in_background(monitor);
            return outcome;
        }
        // Recorded, and removed if it was to be, once its monitor ends.
        let _ = monitor.wait();
        match outcome? {
            Outcome::Exited { status, .. } => Ok(Outcome::Exited {
                status,
                oom_killed: container.exists()
                    && container.state().is_ok_and(|state| state.oom_killed),
            }),
            other => Ok(other),
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

/// Why `container`'s monitor ended before its process started, as its
/// state or its log says.
fn not_started(container: &Container) -> Error {
    match container.state() {
        Ok(state) if state.error.is_some() => Error::not_started(
            state.exit_code.unwrap_or(0),
            format!(
                "container {} did not start: {}",
                container.short_id(),
                state.error.unwrap_or_default()
            ),
        ),
        _ => {
            let log = std::fs::read_to_string(container.monitor_log_path()).unwrap_or_default();
            anyhow!(
                "the monitor of container {} stopped: {}",
                container.short_id(),
                log.lines().last().unwrap_or("no message")
            )
            .into()
        }
    }
}
