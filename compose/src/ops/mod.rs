//! What Compose does to a project, one operation per file, each an `impl
//! Compose` block with its options and report. Progress comes out as
//! [`Event`]s through the caller's sink; nothing is printed.

mod control;
mod down;
mod events;
mod images;
mod list;
mod logs;
mod run;
mod up;
mod wait;

use hull_runtime::{ContainerInfo, Runtime};

use crate::error::Result;
use crate::labels;
use crate::project::Project;

pub use control::RemoveReport;
pub use down::{DownOptions, ImageRemoval};
pub use images::{ContainerImage, ImageNeed, ServiceImages};
pub use list::{list_projects, ProjectSummary};
pub use logs::{follow, LogLine};
pub use run::{RunEnd, RunOptions};
pub use up::{UpOptions, UpReport};

/// A project on a runtime: what the operations work on.
pub struct Compose<'a> {
    runtime: &'a Runtime,
    project: &'a Project,
}

/// What an operation did to one object, as Compose reports its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Network`, `Volume` or `Container`.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// What happened.
    pub action: Action,
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// A container.
    Container,
    /// An image.
    Image,
}

/// What happened to an object, in Compose's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Made.
    Created,
    /// Running.
    Started,
    /// Left running: it was up to date.
    Running,
    /// Being remade: its configuration changed.
    Recreate,
    /// Remade.
    Recreated,
    /// Waiting for what it depends on.
    Waiting,
    /// Its healthcheck passes.
    Healthy,
    /// Its process ended with 0, as a dependent waited for.
    Exited,
    /// Stopped.
    Stopped,
    /// Signalled.
    Killed,
    /// Frozen.
    Paused,
    /// Thawed.
    Unpaused,
    /// Removed.
    Removed,
    /// Left alone, with why.
    Warning(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self {
            Action::Created => "Created",
            Action::Started => "Started",
            Action::Running => "Running",
            Action::Recreate => "Recreate",
            Action::Recreated => "Recreated",
            Action::Waiting => "Waiting",
            Action::Healthy => "Healthy",
            Action::Exited => "Exited",
            Action::Stopped => "Stopped",
            Action::Killed => "Killed",
            Action::Paused => "Paused",
            Action::Unpaused => "Unpaused",
            Action::Removed => "Removed",
            Action::Warning(why) => return write!(f, "Warning: {why}"),
        };
        f.write_str(word)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Network => "Network",
            Kind::Volume => "Volume",
            Kind::Container => "Container",
            Kind::Image => "Image",
        })
    }
}

/// Where events go.
pub type Events<'e> = &'e mut dyn FnMut(Event);

fn event(kind: Kind, name: &str, action: Action) -> Event {
    Event {
        kind,
        name: name.to_owned(),
        action,
    }
}

impl<'a> Compose<'a> {
    /// `project` on `runtime`.
    pub fn new(runtime: &'a Runtime, project: &'a Project) -> Compose<'a> {
        Compose { runtime, project }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        self.runtime
    }

    /// The project.
    pub fn project(&self) -> &Project {
        self.project
    }

    /// The project's containers (its `run` containers only if `oneoff`),
    /// by service and number.
    pub fn containers(&self, oneoff: bool) -> Result<Vec<ContainerInfo>> {
        project_containers(self.runtime, &self.project.name, oneoff)
    }

    /// The containers of `services` (all services if empty), running ones
    /// only unless `all`.
    pub fn service_containers(&self, services: &[String], all: bool) -> Result<Vec<ContainerInfo>> {
        self.select(services, all, false)
    }

    /// The containers of `services` as `compose ps` lists them: running
    /// ones, or with `all` (`-a` or a status asked for) stopped ones and
    /// `run` ones too.
    pub fn listed_containers(&self, services: &[String], all: bool) -> Result<Vec<ContainerInfo>> {
        self.select(services, all, all)
    }

    fn select(&self, services: &[String], all: bool, oneoff: bool) -> Result<Vec<ContainerInfo>> {
        for service in services {
            self.project.service(service)?;
        }
        Ok(self
            .containers(oneoff)?
            .into_iter()
            .filter(|c| {
                services.is_empty() || services.iter().any(|s| Some(s.as_str()) == service_of(c))
            })
            .filter(|c| all || c.state.monitor_pid().is_some())
            .collect())
    }
}

/// The containers labelled as `project`'s (with `run` ones if `oneoff`),
/// by service and number.
pub fn project_containers(
    runtime: &Runtime,
    project: &str,
    oneoff: bool,
) -> Result<Vec<ContainerInfo>> {
    let mut containers: Vec<ContainerInfo> = runtime
        .list()?
        .into_iter()
        .filter(|c| c.config.labels.get(labels::PROJECT).map(String::as_str) == Some(project))
        .filter(|c| oneoff || !is_oneoff(c))
        .collect();
    containers.sort_by_key(|c| {
        (
            service_of(c).map(str::to_owned),
            number_of(c),
            c.config.created.clone(),
        )
    });
    Ok(containers)
}

/// The service a container belongs to.
pub fn service_of(container: &ContainerInfo) -> Option<&str> {
    container
        .config
        .labels
        .get(labels::SERVICE)
        .map(String::as_str)
}

/// A container's number in its service.
pub fn number_of(container: &ContainerInfo) -> u32 {
    container
        .config
        .labels
        .get(labels::CONTAINER_NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Whether it is a `run` container.
pub fn is_oneoff(container: &ContainerInfo) -> bool {
    container
        .config
        .labels
        .get(labels::ONEOFF)
        .map(String::as_str)
        == Some("True")
}
