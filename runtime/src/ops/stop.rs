//! `stop` and `restart`: SIGTERM to the container's process, then, after a
//! grace period, its VM torn down.
//!
//! A container held by a monitor of its own gets signals through that
//! monitor, which passes them on, and its VM is torn down by killing the
//! monitor (the VMM dies with it). One held by a caller that runs it
//! attached (a foreground `hull run`, a front end holding several) gets
//! them through its attach socket, and its VM is torn down by killing the
//! VMM: the caller's process is not the container's to kill.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::bail;
use hull_protocol::Message;

use crate::attach_server;
use crate::container::{self, Container, State, Status, KILLED_EXIT_CODE};
use crate::error::Result;
use crate::events;
use crate::ops::start::start_monitor;
use crate::removal;
use crate::root::StateRoot;
use crate::session;
use crate::signals::FORWARDED;
use crate::Runtime;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long `stop` waits by default, as Docker's.
const DEFAULT_STOP_TIMEOUT_SECS: u64 = 10;
/// How long a torn-down VM's holder may take to be gone, or to record it.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// How `stop` and `restart` stop a container; `None`: its own setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopOptions {
    /// How long its process has before the VM is torn down (default: its
    /// stop timeout, else 10 s).
    pub grace: Option<Duration>,
    /// The signal sent first (default: its stop signal, else SIGTERM).
    pub signal: Option<i32>,
}

impl StopOptions {
    /// The container's own signal, with `grace` if given.
    pub fn within(grace: Option<Duration>) -> StopOptions {
        StopOptions {
            grace,
            signal: None,
        }
    }
}

impl Runtime {
    /// Stops the container `name`: a signal (its stop signal, SIGTERM
    /// unless it was created with another) to its process, then, after a
    /// grace period (its stop timeout, else 10 s), its VM torn down, as
    /// `options` say. Its restart policy no longer applies. A paused
    /// container is resumed first; one that does not run is left alone.
    pub fn stop(&self, name: &str, options: StopOptions) -> Result<()> {
        let container = container::find(&self.root, name)?;
        // As Docker's, no event for one that was not running.
        if stop_container(&self.root, &container, options)? {
            events::container_event(self.root.path(), &container.config, "stop", &[]);
        }
        Ok(())
    }

    /// Stops the container `name` as [`Runtime::stop`] does and starts it
    /// again in the background.
    pub fn restart(&self, name: &str, options: StopOptions) -> Result<()> {
        let container = container::find(&self.root, name)?;
        if stop_container(&self.root, &container, options)? {
            events::container_event(self.root.path(), &container.config, "stop", &[]);
        }
        start_monitor(&self.root, &container)?;
        events::container_event(self.root.path(), &container.config, "restart", &[]);
        Ok(())
    }
}

/// Stops `container` if it runs; returns whether it did.
fn stop_container(
    root: &StateRoot,
    container: &Container,
    options: StopOptions,
) -> anyhow::Result<bool> {
    let Some(state) = mark_manually_stopped(container)? else {
        return Ok(false);
    };
    let config = &container.config;
    let grace = options.grace.unwrap_or(Duration::from_secs(
        config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT_SECS),
    ));
    if state.paused {
        resume(container, &state)?;
    }
    let signal = options
        .signal
        .or(config.stop_signal)
        .unwrap_or(libc::SIGTERM);
    if deliver(root, container, &state, signal) {
        let signal = [("signal", signal.to_string())];
        events::container_event(root.path(), config, "kill", &signal);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !container.exists() || container.state()?.status == Status::Exited {
            return Ok(true);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    tear_down(container)?;
    events::container_event(
        root.path(),
        config,
        "kill",
        &[("signal", libc::SIGKILL.to_string())],
    );
    record_killed(root, container, |state| {
        if state.status != Status::Exited || state.exit_code == Some(KILLED_EXIT_CODE) {
            state.exited(
                KILLED_EXIT_CODE,
                Some(format!("killed after {}s by hull stop", grace.as_secs())),
            )
        } else {
            state.clone()
        }
    })?;
    Ok(true)
}

/// Records `change` in the state of the container whose VM was just torn
/// down, and removes it if it was created to go when it ends (`--rm`): its
/// monitor, killed, cannot. A container its holder removed meanwhile is
/// left alone.
pub(super) fn record_killed(
    root: &StateRoot,
    container: &Container,
    change: impl FnOnce(&State) -> State,
) -> anyhow::Result<()> {
    // Its monitor, killed, cannot log its end: logged here, before the
    // state shows it, once.
    let change = |state: &State| {
        let changed = change(state);
        if state.status != Status::Exited && changed.status == Status::Exited {
            let code = changed.exit_code.unwrap_or(KILLED_EXIT_CODE);
            events::container_event(
                root.path(),
                &container.config,
                "die",
                &[("exitCode", code.to_string())],
            );
        }
        changed
    };
    match container.update_state(change) {
        Err(err) if container.exists() => Err(err),
        Err(_) => Ok(()),
        Ok(_) if container.config.auto_remove => removal::remove(root, container, true),
        Ok(_) => Ok(()),
    }
}

/// Records that the user stops the container, so that its monitor does not
/// restart it; returns its state if a monitor holds it (not if it ended and
/// was removed meanwhile: `--rm`).
pub(super) fn mark_manually_stopped(container: &Container) -> anyhow::Result<Option<State>> {
    let marked = container.update_state(|state| State {
        manually_stopped: state.monitor_pid().is_some(),
        ..state.clone()
    });
    match marked {
        Ok(state) => Ok(state.monitor_pid().is_some().then_some(state)),
        Err(_) if !container.exists() => Ok(None),
        Err(err) => Err(err),
    }
}

/// Sends `signal` to the process of the container `state` describes:
/// through its monitor's attach socket while it runs; else, if it is one a
/// monitor catches, to the monitor (one of its own passes it on, or stops
/// waiting to restart; a caller still booting it ends the boot). Whether
/// it was sent.
pub(super) fn deliver(root: &StateRoot, container: &Container, state: &State, signal: i32) -> bool {
    let socket = attach_server::socket_path(&root.run_dir_path(container.id()));
    let through_socket = || {
        UnixStream::connect(&socket)
            .map_err(anyhow::Error::from)
            .and_then(session::greet)
            .and_then(|(_, writer)| writer.send(&Message::Signal(signal)))
    };
    if state.status == Status::Running && through_socket().is_ok() {
        return true;
    }
    let to_monitor =
        FORWARDED.contains(&signal) && (!state.attached || state.status == Status::Created);
    match state.pid.filter(|_| to_monitor) {
        Some(pid) => {
            send(pid, signal);
            true
        }
        None => false,
    }
}

/// Resumes the paused VM of the container `state` describes.
pub(super) fn resume(container: &Container, state: &State) -> anyhow::Result<()> {
    if let Some(vmm) = state.vmm_pid {
        send(vmm, libc::SIGCONT);
    }
    container.update_state(|state| State {
        paused: false,
        ..state.clone()
    })?;
    Ok(())
}

/// Tears the container's VM down, if a monitor holds it, and waits until
/// its holder is gone (a monitor of its own) or has recorded the end (a
/// caller running it attached).
pub(super) fn tear_down(container: &Container) -> anyhow::Result<()> {
    let state = container.state()?;
    let Some(pid) = state.monitor_pid() else {
        return Ok(());
    };
    let (target, gone): (Option<u32>, Box<dyn Fn() -> bool>) = match state.attached {
        true => {
            let ended =
                || !container.exists() || container.state().is_ok_and(|s| s.pid != Some(pid));
            (
                state
                    .vmm_pid
                    .or(Some(pid).filter(|_| state.status == Status::Created)),
                Box::new(ended),
            )
        }
        false => (Some(pid), Box::new(|| !container.is_monitor(&state))),
    };
    if let Some(target) = target {
        send(target, libc::SIGKILL);
    }
    let deadline = Instant::now() + KILL_TIMEOUT;
    while !gone() {
        if Instant::now() >= deadline {
            bail!("the VM of container {} does not die", container.short_id());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(())
}

/// Sends `signal` to process `pid`.
pub(super) fn send(pid: u32, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes no pointers; a pid that is gone only fails.
        unsafe { libc::kill(pid, signal) };
    }
}
