//! `list`: every container.

use std::collections::BTreeSet;

use crate::container::{self, RootfsSource};
use crate::error::Result;
use crate::ops::ContainerInfo;
use crate::removal;
use crate::Runtime;

impl Runtime {
    /// The IDs of the images containers were created from, which the image
    /// store must keep (`sha256:...`).
    pub fn images_in_use(&self) -> Result<BTreeSet<String>> {
        Ok(container::list(&self.root)?
            .into_iter()
            .filter_map(|container| match container.config.boot.rootfs {
                RootfsSource::Image(id) => Some(id),
                RootfsSource::Directory(_) | RootfsSource::Layers(_) => None,
            })
            .collect())
    }

    /// Every container, oldest first; `--rm` containers whose monitor died
    /// are removed first, as their monitor would have.
    pub fn list(&self) -> Result<Vec<ContainerInfo>> {
        removal::sweep_abandoned(&self.root)?;
        let mut listed = Vec::new();
        for container in container::list(&self.root)? {
            match ContainerInfo::of(container.clone()) {
                Ok(info) => listed.push(info),
                // Removed since it was listed.
                Err(_) if !container.exists() => {}
                Err(err) => return Err(err),
            }
        }
        Ok(listed)
    }
}
