//! `prune_containers`: every exited container removed.

use crate::container::{self, Status};
use crate::error::Result;
use crate::removal;
use crate::Runtime;

impl Runtime {
    /// Removes every exited container; returns their IDs.
    pub fn prune_containers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for container in container::list(&self.root)? {
            if container.state()?.status == Status::Exited {
                let id = container.id().to_owned();
                removal::remove(&self.root, &container, false)?;
                removed.push(id);
            }
        }
        Ok(removed)
    }
}
