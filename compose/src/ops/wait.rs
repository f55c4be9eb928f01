//! Waiting for containers: running and, with a healthcheck, healthy
//! (`up --wait`), and healthy (`depends_on: condition: service_healthy`).

use std::time::{Duration, Instant};

use hull_runtime::{ContainerInfo, HealthStatus, Status};

use super::{event, Action, Compose, Events, Kind};
use crate::error::{Error, Result};

/// How often a container's state is looked at while waiting.
const POLL: Duration = Duration::from_millis(250);

/// What `up --wait` and `service_healthy` wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// Running, and healthy if it has a healthcheck.
    Ready,
    /// Healthy: it must have a healthcheck.
    Healthy,
}

/// Where a container stands against a goal.
enum Standing {
    Reached,
    Pending,
    Failed(String),
}

impl Compose<'_> {
    /// Waits until each of `containers` runs and, if it has a healthcheck,
    /// is healthy (within `timeout`, if given); one that exited or turned
    /// unhealthy is an error.
    pub(super) fn wait_ready(
        &self,
        containers: &[String],
        timeout: Option<Duration>,
        events: Events,
    ) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        for name in containers {
            let info = self.wait_for(name, Goal::Ready, deadline)?;
            let action = match info.config.healthcheck.is_some() {
                true => Action::Healthy,
                false => Action::Running,
            };
            events(event(Kind::Container, name, action));
        }
        Ok(())
    }

    /// Waits until the container `name` is healthy (within `timeout`, if
    /// given).
    pub(super) fn wait_healthy(&self, name: &str, timeout: Option<Duration>) -> Result<()> {
        self.wait_for(name, Goal::Healthy, timeout.map(|t| Instant::now() + t))?;
        Ok(())
    }

    /// Polls container `name` until it reaches `goal`, fails, or the
    /// deadline passes; returns its last state.
    fn wait_for(&self, name: &str, goal: Goal, deadline: Option<Instant>) -> Result<ContainerInfo> {
        loop {
            let info = self.runtime.inspect(name)?;
            match standing(&info, goal) {
                Standing::Reached => return Ok(info),
                Standing::Failed(why) => {
                    return Err(Error::Failed(format!("container {name} {why}")))
                }
                Standing::Pending => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Failed(format!(
                    "container {name} is not {} yet: timed out",
                    match goal {
                        Goal::Ready => "ready",
                        Goal::Healthy => "healthy",
                    }
                )));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Where `container` stands against `goal`.
fn standing(container: &ContainerInfo, goal: Goal) -> Standing {
    let state = &container.state;
    if container.config.healthcheck.is_none() {
        if goal == Goal::Healthy {
            return Standing::Failed(
                "has no healthcheck, which `condition: service_healthy` needs".into(),
            );
        }
        return match state.status {
            Status::Running => Standing::Reached,
            Status::Exited => Standing::Failed(exited(container)),
            Status::Created | Status::Restarting => Standing::Pending,
        };
    }
    match (state.status, state.health.as_ref().map(|h| h.status)) {
        (Status::Running, Some(HealthStatus::Healthy)) => Standing::Reached,
        (Status::Running, Some(HealthStatus::Unhealthy)) => Standing::Failed("is unhealthy".into()),
        (Status::Exited, _) => Standing::Failed(exited(container)),
        _ => Standing::Pending,
    }
}

fn exited(container: &ContainerInfo) -> String {
    format!("exited ({})", container.state.exit_code.unwrap_or(-1))
}
