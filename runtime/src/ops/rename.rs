//! `rename`: a container's name, on its network's name server too.

use crate::container::{self, parse_container_name};
use crate::error::{Error, Result};
use crate::events;
use crate::network;
use crate::Runtime;

impl Runtime {
    /// Gives the container `name` the free name `new_name`. Returns a
    /// warning if its network's name server still answers the old name
    /// (the container is renamed either way).
    pub fn rename(&self, name: &str, new_name: &str) -> Result<Option<String>> {
        let new_name = &parse_container_name(new_name).map_err(Error::invalid)?;
        let container = container::find(&self.root, name)?;
        if container.config.name == *new_name {
            return Err(Error::invalid(format!(
                "renaming container {new_name} with the same name as its current name"
            )));
        }
        let (id, network) = (
            container.id().to_owned(),
            container.config.boot.network.clone(),
        );
        let old_name = [("oldName", container.config.name.clone())];
        container.rename(&self.root, new_name)?;
        let renamed = container::find(&self.root, &id)?;
        events::container_event(self.root.path(), &renamed.config, "rename", &old_name);
        Ok(network::rename(&self.root, &id, &network, new_name)
            .err()
            .map(|err| format!("the network's name server still answers the old name: {err:#}")))
    }
}
