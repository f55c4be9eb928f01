//! Waiting for containers: running (`up --wait`) and healthy
//! (`depends_on: condition: service_healthy`).

use std::time::{Duration, Instant};

use hull_runtime::Status;

use super::{event, Action, Compose, Events, Kind};
use crate::error::{Error, Result};

/// How often a container's state is looked at while waiting.
const POLL: Duration = Duration::from_millis(250);

impl Compose<'_> {
    /// Waits until each of `containers` runs (within `timeout`, if given);
    /// one that exited is an error.
    pub(super) fn wait_ready(
        &self,
        containers: &[String],
        timeout: Option<Duration>,
        events: Events,
    ) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        for name in containers {
            loop {
                let info = self.runtime.inspect(name)?;
                match info.state.status {
                    Status::Running => break,
                    Status::Exited => {
                        return Err(Error::Failed(format!(
                            "container {name} exited ({})",
                            info.state.exit_code.unwrap_or(-1)
                        )))
                    }
                    Status::Created | Status::Restarting => {}
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Failed(format!(
                        "container {name} is not running yet: timed out"
                    )));
                }
                std::thread::sleep(POLL);
            }
            events(event(Kind::Container, name, Action::Running));
        }
        Ok(())
    }

    /// Waits until the container `id` (`name`) is healthy.
    pub(super) fn wait_healthy(
        &self,
        id: &str,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let _ = (id, timeout, POLL);
        Err(Error::Failed(format!(
            "container {name}: `condition: service_healthy` needs healthchecks, which hull does not run yet"
        )))
    }
}
