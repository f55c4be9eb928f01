//! `prune_containers`: every stopped container (made and never started, or
//! exited) that the caller selects, removed.

use crate::container::{self, Status};
use crate::error::Result;
use crate::ops::ContainerInfo;
use crate::removal;
use crate::Runtime;

impl Runtime {
    /// Removes every container that is not running (created or exited, as
    /// Docker's prune takes them) and that `selected` picks (the caller's
    /// `--filter`s); returns their IDs.
    pub fn prune_containers(
        &self,
        selected: &dyn Fn(&ContainerInfo) -> bool,
    ) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for container in container::list(&self.root)? {
            let state = container.state()?;
            if !matches!(state.status, Status::Created | Status::Exited) {
                continue;
            }
            let info = ContainerInfo {
                state,
                ..ContainerInfo::recorded(container.clone())
            };
            if selected(&info) {
                let id = container.id().to_owned();
                removal::remove(&self.root, &container, false)?;
                removed.push(id);
            }
        }
        Ok(removed)
    }
}
