//! `hull run -d`: the container is recorded, its monitor process started
//! in the background, and `hull` returns once the container runs.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::child_process;
use crate::container::{Container, ContainerConfig, State, Status};
use crate::state::StateRoot;

/// How long the container may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(150);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Creates the container `config` describes and starts it in the
/// background; prints its ID.
pub fn create_and_start(root: &StateRoot, config: ContainerConfig) -> Result<u8> {
    let container = Container::create(root, config)?;
    start(root, &container)?;
    println!("{}", container.id());
    Ok(0)
}

/// Starts `container`'s monitor in the background and waits until the
/// container runs (or has run and exited by itself).
pub fn start(root: &StateRoot, container: &Container) -> Result<()> {
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
    let exe = std::env::current_exe().context("cannot locate the hull executable")?;
    let mut command = Command::new(exe);
    command
        .arg("--root")
        .arg(root.path())
        .args(["__monitor", id])
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
