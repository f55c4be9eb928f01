//! `remove`: a container and everything it owns.

use crate::container::{self, KILLED_EXIT_CODE};
use crate::error::{Error, Hint, Result};
use crate::events;
use crate::ops::stop::{mark_manually_stopped, tear_down};
use crate::removal;
use crate::Runtime;

/// How `remove` removes a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Kill it first if it runs.
    pub force: bool,
    /// Remove its anonymous volumes too (`rm -v`).
    pub volumes: bool,
}

impl Runtime {
    /// Removes the container `name`: its records, writable layer, logs and
    /// network addresses. A running one is refused unless `force`, which
    /// kills it first.
    pub fn remove(&self, name: &str, options: RemoveOptions) -> Result<()> {
        let force = options.force;
        let container = container::find(&self.root, name)?;
        if container.state()?.monitor_pid().is_some() {
            if !force {
                return Err(Error::Running {
                    name: container.short_id().to_owned(),
                    hint: Hint::new("stop it first, or use rm -f"),
                });
            }
            // Its holder, if a caller, ends the run as killed.
            mark_manually_stopped(&container)?;
            tear_down(&container)?;
            // As Docker's `rm -f`: killed, and dead, before destroyed.
            let config = &container.config;
            let signal = [("signal", libc::SIGKILL.to_string())];
            events::container_event(self.root.path(), config, "kill", &signal);
            let exit_code = [("exitCode", KILLED_EXIT_CODE.to_string())];
            events::container_event(self.root.path(), config, "die", &exit_code);
        }
        Ok(removal::remove(&self.root, &container, options.volumes)?)
    }
}
