//! `kill`: a signal for a container's process; KILL tears its VM down.

use crate::container::{self, State, KILLED_EXIT_CODE};
use crate::error::{Error, Hint, Result};
use crate::ops::stop::{kill_monitor, mark_manually_stopped, signal};
use crate::Runtime;

impl Runtime {
    /// Sends `signal` to the running container `name`'s process (its
    /// monitor passes it on); SIGKILL tears the VM down at once. Either way
    /// its restart policy no longer applies.
    pub fn kill(&self, name: &str, signal_number: i32) -> Result<()> {
        let container = container::find(&self.root, name)?;
        let Some(pid) = mark_manually_stopped(&container)? else {
            return Err(Error::NotRunning {
                name: container.short_id().to_owned(),
                hint: Hint::none(),
            });
        };
        if signal_number == libc::SIGKILL {
            kill_monitor(&container)?;
            container.update_state(|state: &State| {
                state.exited(KILLED_EXIT_CODE, Some("killed by hull kill".into()))
            })?;
        } else {
            signal(pid, signal_number);
        }
        Ok(())
    }
}
