//! For a caller on another host than the containers' monitors (the hull
//! machine's supervisor, outside the VM its monitors run in): the records
//! as they are, and the containers ended when that host went down.

use crate::container::{self, KILLED_EXIT_CODE};
use crate::error::Result;
use crate::ops::ContainerInfo;
use crate::Runtime;

impl Runtime {
    /// Every container with its state as recorded, oldest first: not
    /// corrected for monitors that are gone, whose pids mean nothing on
    /// this host.
    pub fn list_as_recorded(&self) -> Result<Vec<ContainerInfo>> {
        let mut infos = Vec::new();
        for container in container::list(&self.root)? {
            container.recorded_state()?;
            infos.push(ContainerInfo::recorded(container));
        }
        Ok(infos)
    }

    /// The container `name` (a name, an ID or a unique ID prefix) with its
    /// state as recorded: not corrected for a monitor that is gone, whose
    /// pid means nothing on this host.
    pub fn inspect_as_recorded(&self, name: &str) -> Result<ContainerInfo> {
        Ok(ContainerInfo::recorded(container::find(&self.root, name)?))
    }

    /// Records the container `id` as killed for `reason` if a monitor still
    /// holds it in its records: the host its monitor ran on went down.
    /// Checked again under the state's lock, so a container that ended
    /// meanwhile keeps its own record.
    pub fn record_monitor_lost(&self, id: &str, reason: &str) -> Result<()> {
        let container = container::find(&self.root, id)?;
        container.update_state(|state| match state.monitor_pid() {
            Some(_) => state.exited(KILLED_EXIT_CODE, Some(reason.to_owned())),
            None => state.clone(),
        })?;
        Ok(())
    }
}
