//! The services' existing containers: `start`, `stop`, `restart`,
//! `kill`, `pause`, `unpause`, `rm`, `top` and `port`.

use std::time::Duration;

use hull_runtime::{ContainerInfo, PortMapping, ProcessInfo, StopOptions};

use super::{event, number_of, Action, Compose, Events, Kind};
use crate::error::{Error, Result};
use crate::graph::dependency_order;

/// What `rm` removed, and what it left because it runs.
#[derive(Debug, Clone, Default)]
pub struct RemoveReport {
    /// Removed containers.
    pub removed: Vec<String>,
}

impl Compose<'_> {
    /// The containers of `services` (all if empty), in dependency order
    /// (reversed if `reverse`), in any state.
    fn ordered(&self, services: &[String], reverse: bool) -> Result<Vec<ContainerInfo>> {
        let order = dependency_order(&self.project.file.services)?;
        let mut containers = self.service_containers(services, true)?;
        containers.sort_by_key(|c| {
            let service = super::service_of(c).unwrap_or_default();
            (order.iter().position(|s| s == service), number_of(c))
        });
        if reverse {
            containers.reverse();
        }
        Ok(containers)
    }

    /// Starts the stopped containers of `services` (all if empty).
    pub fn start(&self, services: &[String], events: Events) -> Result<()> {
        let containers = self.ordered(services, false)?;
        if containers.is_empty() {
            return Err(Error::Failed(
                "no containers to start; create them with `up`".into(),
            ));
        }
        for container in containers {
            if container.state.monitor_pid().is_none() {
                self.runtime.start(container.id())?;
                events(event(Kind::Container, container.name(), Action::Started));
            }
        }
        Ok(())
    }

    /// Stops the running containers of `services` (all if empty),
    /// dependents first.
    pub fn stop(&self, services: &[String], grace: Option<Duration>, events: Events) -> Result<()> {
        for container in self.ordered(services, true)? {
            if container.state.monitor_pid().is_some() {
                self.runtime
                    .stop(container.id(), StopOptions::within(grace))?;
                events(event(Kind::Container, container.name(), Action::Stopped));
            }
        }
        Ok(())
    }

    /// Restarts the containers of `services` (all if empty).
    pub fn restart(
        &self,
        services: &[String],
        grace: Option<Duration>,
        events: Events,
    ) -> Result<()> {
        for container in self.ordered(services, false)? {
            self.runtime
                .restart(container.id(), StopOptions::within(grace))?;
            events(event(Kind::Container, container.name(), Action::Started));
        }
        Ok(())
    }

    /// Sends `signal` to the running containers of `services`.
    pub fn kill(&self, services: &[String], signal: i32, events: Events) -> Result<()> {
        for container in self.ordered(services, true)? {
            if container.state.monitor_pid().is_some() {
                self.runtime.kill(container.id(), signal)?;
                events(event(Kind::Container, container.name(), Action::Killed));
            }
        }
        Ok(())
    }

    /// Freezes the running containers of `services` (all if empty) that
    /// are not frozen yet.
    pub fn pause(&self, services: &[String], events: Events) -> Result<()> {
        for container in self.ordered(services, true)? {
            if container.state.monitor_pid().is_some() && !container.state.paused {
                self.runtime.pause(container.id())?;
                events(event(Kind::Container, container.name(), Action::Paused));
            }
        }
        Ok(())
    }

    /// Thaws the frozen containers of `services` (all if empty).
    pub fn unpause(&self, services: &[String], events: Events) -> Result<()> {
        for container in self.ordered(services, false)? {
            if container.state.paused {
                self.runtime.unpause(container.id())?;
                events(event(Kind::Container, container.name(), Action::Unpaused));
            }
        }
        Ok(())
    }

    /// The stopped containers of `services` that `rm` would remove (with
    /// the running ones too if `stop`).
    pub fn removable(&self, services: &[String], stop: bool) -> Result<Vec<ContainerInfo>> {
        Ok(self
            .ordered(services, true)?
            .into_iter()
            .filter(|c| stop || c.state.monitor_pid().is_none())
            .collect())
    }

    /// Removes `containers` (stopping running ones), with their anonymous
    /// volumes if `volumes`.
    pub fn remove(
        &self,
        containers: &[ContainerInfo],
        volumes: bool,
        events: Events,
    ) -> Result<RemoveReport> {
        let mut report = RemoveReport::default();
        for container in containers {
            self.remove_container(container, None, volumes, events)?;
            report.removed.push(container.name().to_owned());
        }
        Ok(report)
    }

    /// The processes of each running container of `services`.
    pub fn top(&self, services: &[String]) -> Result<Vec<(String, Vec<ProcessInfo>)>> {
        let mut tops = Vec::new();
        for container in self.ordered(services, false)? {
            if container.state.monitor_pid().is_some() {
                tops.push((
                    container.name().to_owned(),
                    self.runtime.top(container.id())?,
                ));
            }
        }
        Ok(tops)
    }

    /// Where container `index` of `service` publishes `port`/`protocol`.
    pub fn port(
        &self,
        service: &str,
        port: u16,
        protocol: &str,
        index: u32,
    ) -> Result<PortMapping> {
        let container = self.replica(service, index)?;
        container
            .config
            .boot
            .network
            .ports
            .iter()
            .find(|p| p.container_port == port && p.protocol.to_string() == protocol)
            .cloned()
            .ok_or_else(|| {
                Error::Failed(format!(
                    "no port {port}/{protocol} of service {service} is published"
                ))
            })
    }

    /// Container `index` (from 1) of `service`.
    pub fn replica(&self, service: &str, index: u32) -> Result<ContainerInfo> {
        self.service_containers(&[service.to_owned()], true)?
            .into_iter()
            .find(|c| number_of(c) == index)
            .ok_or_else(|| Error::Failed(format!("service {service} has no container {index}")))
    }
}
