//! `list`: every container.

use crate::container;
use crate::error::Result;
use crate::ops::ContainerInfo;
use crate::Runtime;

impl Runtime {
    /// Every container, oldest first.
    pub fn list(&self) -> Result<Vec<ContainerInfo>> {
        container::list(&self.root)?
            .into_iter()
            .map(ContainerInfo::of)
            .collect()
    }
}
