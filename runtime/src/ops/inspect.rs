//! `inspect`: what a container is and what it is doing.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::container::{self, Container, ContainerConfig, State};
use crate::error::Result;
use crate::root::SHORT_ID_LEN;
use crate::Runtime;

/// A container as `inspect` and `list` report it.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// What it is, as created.
    pub config: ContainerConfig,
    /// What it is doing.
    pub state: State,
    /// Its log (Docker's json-file format).
    pub log_path: PathBuf,
    /// What its writable layer (its scratch disk) takes on the host.
    pub writable_bytes: u64,
}

impl ContainerInfo {
    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The first digits of its ID, as lists show it.
    pub fn short_id(&self) -> &str {
        &self.config.id[..SHORT_ID_LEN]
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub(super) fn of(container: Container) -> Result<ContainerInfo> {
        Ok(ContainerInfo {
            state: container.state()?,
            ..ContainerInfo::recorded(container)
        })
    }

    /// The container with its state as recorded, not corrected for a
    /// monitor that is gone.
    pub(super) fn recorded(container: Container) -> ContainerInfo {
        let state = container
            .recorded_state()
            .unwrap_or_else(|_| State::created());
        ContainerInfo {
            state,
            log_path: container.log_path(),
            writable_bytes: fs::metadata(container.scratch_path()).map_or(0, |m| m.blocks() * 512),
            config: container.config,
        }
    }
}

impl Runtime {
    /// The ID of the container `name` names (a name, an ID or a unique ID
    /// prefix), found without reading its state: as a caller on another
    /// host than its monitor may.
    pub fn id_of(&self, name: &str) -> Result<String> {
        Ok(container::find(&self.root, name)?.id().to_owned())
    }

    /// The container `name` (a name, an ID or a unique ID prefix).
    pub fn inspect(&self, name: &str) -> Result<ContainerInfo> {
        ContainerInfo::of(container::find(&self.root, name)?)
    }
}
