//! `start`: a container's monitor started in the background, as a helper
//! process of its own that outlives the caller.

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::child_process;
use crate::container::{self, Container, State, Status};
use crate::error::Result;
use crate::helper_command;
use crate::root::StateRoot;
use crate::Runtime;

/// How long the container may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(150);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

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

/// Starts `container`'s monitor in the background and waits until the
/// container runs (or has run and exited by itself).
pub(super) fn start_monitor(root: &StateRoot, container: &Container) -> anyhow::Result<()> {
    let id = container.id();
    // A restart must not read the last run's end as this one's.
    container.set_state(&State::created())?;
    // What a monitor that was killed left behind (its sockets, its logs).
    let stale = root.run_dir_path(id);
    if stale.exists() {
        std::fs::remove_dir_all(&stale)
            .with_context(|| format!("cannot remove {}", stale.display()))?;
    }
    let log =
        File::create(container.monitor_log_path()).context("cannot create the monitor log")?;
    let mut command = helper_command::monitor_command(root, id)?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log.try_clone().context("cannot share the monitor log")?,
        ))
        .stderr(Stdio::from(log));
    child_process::detach_from_terminal(&mut command);
    let mut monitor = command
        .spawn()
        .context("cannot start the container's monitor")?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if !container.exists() {
            break; // `run --rm -d` that has already run and been removed.
        }
        let state = container.state()?;
        match state.status {
            Status::Running | Status::Restarting => break,
            Status::Exited => match state.error {
                Some(error) => bail!("container {} did not start: {error}", container.short_id()),
                None => break, // Ran and already ended.
            },
            Status::Created => {}
        }
        if monitor
            .try_wait()
            .context("cannot check on the monitor")?
            .is_some()
        {
            let log = std::fs::read_to_string(container.monitor_log_path()).unwrap_or_default();
            bail!(
                "the monitor of container {} stopped: {}",
                container.short_id(),
                log.lines().last().unwrap_or("no message")
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "container {} did not start within {}s",
                container.short_id(),
                START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(())
}
