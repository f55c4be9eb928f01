//! `start`: a container's monitor started in the background, as a helper
//! process of its own that outlives the caller.

use std::fs::File;
use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::container::{self, Container, State, Status};
use crate::error::{Error, Result};
use crate::helper_command;
use crate::monitor;
use crate::root::StateRoot;
use crate::Runtime;
use crate::{child_process, fsutil};

/// How long a start may take, whatever the monitor's boot budget says: a
/// loaded host slows starts (twenty VMs booting at once in the test host on
/// CI's machine took over 300 s), so this is only the backstop for a guest
/// that hangs idle, or after its agent connected.
const START_BACKSTOP: Duration = Duration::from_secs(20 * 60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a monitor may take to exit once it removed its container.
const REMOVED_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

impl Runtime {
    /// Starts the container `name` (a name, an ID or a unique ID prefix) in
    /// the background and returns once it runs (or has run and ended by
    /// itself); its writable layer is kept from earlier runs. A container
    /// that runs already is left alone.
    pub fn start(&self, name: &str) -> Result<()> {
        let container = container::find(&self.root, name)?;
        if container.state()?.monitor_pid().is_none() {
            start_monitor(&self.root, &container)?;
        }
        Ok(())
    }
}

/// Removes what a monitor that was killed left behind (its sockets, its
/// logs), before a new one boots the container.
pub(super) fn remove_stale_run_dir(root: &StateRoot, container: &Container) -> anyhow::Result<()> {
    let stale = root.run_dir_path(container.id());
    match std::fs::remove_dir_all(&stale) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("cannot remove {}", stale.display()))
        }
        _ => Ok(()),
    }
}

/// Starts `container`'s monitor in the background and waits until the
/// container runs (or has run and exited by itself).
pub(super) fn start_monitor(root: &StateRoot, container: &Container) -> anyhow::Result<()> {
    let (mut monitor, log) = spawn_monitor(root, container, false)?;
    let started = wait_until_started(container, &mut monitor, log);
    reap_in_background(monitor);
    started
}

/// Starts `container`'s monitor, a process that outlives this one;
/// `awaits_client`: its process starts once a client has joined it.
/// Returns it and its log to read, whose words outlive a container
/// removed at its end.
pub(super) fn spawn_monitor(
    root: &StateRoot,
    container: &Container,
    awaits_client: bool,
) -> anyhow::Result<(Child, File)> {
    // A restart must not read the last run's end as this one's.
    container.set_state(&State::created())?;
    remove_stale_run_dir(root, container)?;
    let log = fsutil::create_log(&container.monitor_log_path())
        .context("cannot create the monitor log")?;
    let reader = File::open(container.monitor_log_path()).context("cannot read the monitor log")?;
    let mut command = helper_command::monitor_command(root, container.id(), awaits_client)?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log.try_clone().context("cannot share the monitor log")?,
        ))
        .stderr(Stdio::from(log));
    child_process::detach_from_terminal(&mut command);
    let monitor = command
        .spawn()
        .context("cannot start the container's monitor")?;
    Ok((monitor, reader))
}

/// Reaps `monitor` when it ends, so that a long-lived caller keeps no
/// zombies.
pub(super) fn reap_in_background(mut monitor: Child) {
    let _ = std::thread::Builder::new()
        .name("monitor-reaper".into())
        .spawn(move || monitor.wait());
}

/// Why `container` did not start: the error its run recorded in `state`,
/// else in its monitor's `log` (the container removed at its end), else
/// the log's last line. A missing or unrunnable command keeps its own code.
pub(super) fn start_failure(container: &Container, state: Option<&State>, log: &str) -> Error {
    let recorded =
        state.and_then(|state| Some((state.exit_code.unwrap_or(0), state.error.clone()?)));
    match recorded.or_else(|| monitor::not_started_in_log(log)) {
        Some((code, error)) => Error::not_started(
            code,
            format!("container {} did not start: {error}", container.short_id()),
        ),
        None => Error::Other(anyhow::anyhow!(
            "the monitor of container {} stopped: {}",
            container.short_id(),
            log.lines().last().unwrap_or("no message")
        )),
    }
}

/// What is left to read of a monitor's log.
pub(super) fn read_rest(log: &mut File) -> String {
    let mut text = String::new();
    let _ = log.read_to_string(&mut text);
    text
}

/// Waits until the container whose monitor is `monitor` (writing to
/// `log`) runs, or has run and ended by itself: the monitor gives up on a
/// boot that spins or stands still (`boot::BOOT_BUDGET`), this on one that
/// takes past [`START_BACKSTOP`].
fn wait_until_started(
    container: &Container,
    monitor: &mut Child,
    mut log: File,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_BACKSTOP;
    loop {
        // Looked at first: the state read after a monitor's end is final.
        let monitor_ended = monitor
            .try_wait()
            .context("cannot check on the monitor")?
            .is_some();
        // `run --rm -d` that has already ended and been removed (maybe
        // between these two looks): its monitor says whether it ran.
        let state = match container.state() {
            Err(_) if !container.exists() => return removed_run(container, monitor, &mut log),
            state => state?,
        };
        match state.status {
            Status::Running | Status::Restarting => break,
            Status::Exited if state.error.is_some() => {
                return Err(start_failure(container, Some(&state), "").into());
            }
            Status::Exited => break, // Ran and already ended.
            Status::Created => {}
        }
        if monitor_ended {
            return Err(start_failure(container, Some(&state), &read_rest(&mut log)).into());
        }
        if Instant::now() >= deadline {
            bail!(
                "container {} did not start within {} minutes",
                container.short_id(),
                START_BACKSTOP.as_secs() / 60
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(())
}

/// How the run of `container`, removed at its end (`--rm`), went: an error
/// if it did not start, as its `monitor` says in its `log` once it has
/// ended (or has taken [`REMOVED_EXIT_TIMEOUT`] to).
fn removed_run(container: &Container, monitor: &mut Child, log: &mut File) -> anyhow::Result<()> {
    let deadline = Instant::now() + REMOVED_EXIT_TIMEOUT;
    while monitor
        .try_wait()
        .context("cannot check on the monitor")?
        .is_none()
        && Instant::now() < deadline
    {
        std::thread::sleep(POLL_INTERVAL);
    }
    let text = read_rest(log);
    match monitor::not_started_in_log(&text) {
        Some(_) => Err(start_failure(container, None, &text).into()),
        None => Ok(()),
    }
}
