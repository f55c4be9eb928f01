//! `stop` and `restart`: SIGTERM to the container's process, then, after a
//! grace period, its VM torn down.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::container::{self, is_monitor, Container, State, Status, KILLED_EXIT_CODE};
use crate::error::Result;
use crate::ops::start::start_monitor;
use crate::Runtime;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a killed monitor may take to be gone.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

impl Runtime {
    /// Stops the container `name`: SIGTERM to its process (through its
    /// monitor), then, after `grace`, its VM torn down. Its restart policy
    /// no longer applies. A container that does not run is left alone.
    pub fn stop(&self, name: &str, grace: Duration) -> Result<()> {
        let container = container::find(&self.root, name)?;
        Ok(stop_container(&container, grace)?)
    }

    /// Stops the container `name` as [`Runtime::stop`] does and starts it
    /// again in the background.
    pub fn restart(&self, name: &str, grace: Duration) -> Result<()> {
        let container = container::find(&self.root, name)?;
        stop_container(&container, grace)?;
        Ok(start_monitor(&self.root, &container)?)
    }
}

fn stop_container(container: &Container, grace: Duration) -> anyhow::Result<()> {
    let Some(pid) = mark_manually_stopped(container)? else {
        return Ok(());
    };
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if container.state()?.status == Status::Exited {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    kill_monitor(container)?;
    container.update_state(|state| {
        if state.status != Status::Exited || state.exit_code == Some(KILLED_EXIT_CODE) {
            state.exited(
                KILLED_EXIT_CODE,
                Some(format!("killed after {}s by hull stop", grace.as_secs())),
            )
        } else {
            state.clone()
        }
    })?;
    Ok(())
}

/// Records that the user stops the container, so that its monitor does not
/// restart it; returns the monitor's pid, `None` if it has none.
pub(super) fn mark_manually_stopped(container: &Container) -> anyhow::Result<Option<u32>> {
    let state = container.update_state(|state| State {
        manually_stopped: state.monitor_pid().is_some(),
        ..state.clone()
    })?;
    Ok(state.monitor_pid())
}

/// Kills the container's monitor, if it has one (its VMM dies with it), and
/// waits until it is gone.
pub(super) fn kill_monitor(container: &Container) -> anyhow::Result<()> {
    let state = container.state()?;
    let (Some(pid), true) = (state.pid, is_monitor(&state)) else {
        return Ok(());
    };
    signal(pid, libc::SIGKILL);
    let deadline = Instant::now() + KILL_TIMEOUT;
    while is_monitor(&state) {
        if Instant::now() >= deadline {
            bail!("the VM of container {} does not die", container.short_id());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(())
}

/// Sends `signal` to process `pid`.
pub(super) fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes no pointers; a pid that is gone only fails.
        unsafe { libc::kill(pid, signal) };
    }
}
