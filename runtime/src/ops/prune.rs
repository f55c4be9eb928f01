//! `prune_containers`: every stopped container (made and never started, or
//! exited) that the caller selects, removed.

use crate::container::{self, Status};
use crate::error::Result;
use crate::ops::ContainerInfo;
use crate::removal;
use crate::Runtime;

/// What `prune_containers` removed.
#[derive(Debug, Clone, Default)]
pub struct PrunedContainers {
    /// Their IDs.
    pub ids: Vec<String>,
    /// Bytes their writable layers took on the host.
    pub bytes: u64,
}

impl Runtime {
    /// Removes every container that is not running (created or exited, as
    /// Docker's prune takes them) and that `selected` picks (the caller's
    /// `--filter`s).
    pub fn prune_containers(
        &self,
        selected: &dyn Fn(&ContainerInfo) -> bool,
    ) -> Result<PrunedContainers> {
        let mut removed = PrunedContainers::default();
        for container in container::list(&self.root)? {
            let state = container.state()?;
            // A made container being booted has its monitor already.
            let stopped = matches!(state.status, Status::Created | Status::Exited);
            if !stopped || state.monitor_pid().is_some() {
                continue;
            }
            let info = ContainerInfo {
                state,
                ..ContainerInfo::recorded(container.clone())
            };
            if selected(&info) {
                removal::remove(&self.root, &container, false)?;
                removed.ids.push(info.config.id);
                removed.bytes += info.writable_bytes;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use crate::container::{test_config, Container, State};
    use crate::Runtime;

    #[test]
    fn stopped_containers_go_but_not_one_that_is_booting_nor_those_not_selected() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(dir.path());
        let made = |digit: &str, name: &str| {
            Container::create(&runtime.root, test_config(&digit.repeat(64), name)).unwrap()
        };
        made("1", "never-started");
        made("2", "kept");
        // Claimed by this process, as a container is while it boots.
        made("3", "booting")
            .set_state(&State::claimed(false))
            .unwrap();
        let removed = runtime
            .prune_containers(&|info| info.name() != "kept")
            .unwrap();
        assert_eq!(removed.ids, ["1".repeat(64)]);
        let left: Vec<String> = runtime
            .list()
            .unwrap()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
