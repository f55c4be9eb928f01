//! `pause` and `unpause`: a container's whole VM frozen and resumed, by
//! stopping and continuing its VMM's process (Docker freezes the
//! container's cgroup; here the guest kernel stops with it).

use crate::container::{self, State, Status};
use crate::error::{Error, Hint, Result};
use crate::events;
use crate::ops::stop::{resume, send};
use crate::Runtime;

impl Runtime {
    /// Freezes the running container `name`'s VM: its processes and its
    /// clock stand still until [`Runtime::unpause`].
    pub fn pause(&self, name: &str) -> Result<()> {
        let container = container::find(&self.root, name)?;
        let state = container.state()?;
        let vmm = match (state.status, state.vmm_pid) {
            (Status::Running, Some(vmm)) => vmm,
            _ => {
                return Err(Error::NotRunning {
                    name: container.config.name.clone(),
                    hint: Hint::none(),
                })
            }
        };
        if state.paused {
            return Err(Error::invalid(format!(
                "container {} is already paused",
                container.config.name
            )));
        }
        send(vmm, libc::SIGSTOP);
        container.update_state(|state| State {
            paused: true,
            ..state.clone()
        })?;
        events::container_event(self.root.path(), &container.config, "pause", &[]);
        Ok(())
    }

    /// Resumes the paused container `name`'s VM.
    pub fn unpause(&self, name: &str) -> Result<()> {
        let container = container::find(&self.root, name)?;
        let state = container.state()?;
        if !state.paused || state.status != Status::Running {
            return Err(Error::invalid(format!(
                "container {} is not paused",
                container.config.name
            )));
        }
        resume(&container, &state)?;
        events::container_event(self.root.path(), &container.config, "unpause", &[]);
        Ok(())
    }
}
