//! `kill`: a signal for a container's process; KILL tears its VM down.

use crate::container::{self, State, KILLED_EXIT_CODE};
use crate::error::{Error, Hint, Result};
use crate::events;
use crate::ops::stop::{deliver, mark_manually_stopped, record_killed, tear_down};
use crate::Runtime;

impl Runtime {
    /// Sends `signal_number` (1 to 64) to the running container `name`'s
    /// process; SIGKILL tears the VM down at once. Either way its restart
    /// policy no longer applies.
    pub fn kill(&self, name: &str, signal_number: i32) -> Result<()> {
        if !(1..=64).contains(&signal_number) {
            return Err(Error::invalid(format!("{signal_number} is not a signal")));
        }
        let container = container::find(&self.root, name)?;
        let Some(state) = mark_manually_stopped(&container)? else {
            return Err(Error::NotRunning {
                name: container.short_id().to_owned(),
                hint: Hint::none(),
            });
        };
        let signal = [("signal", signal_number.to_string())];
        let killed =
            || events::container_event(self.root.path(), &container.config, "kill", &signal);
        if signal_number != libc::SIGKILL {
            if !deliver(&self.root, &container, &state, signal_number) {
                return Err(Error::NotRunning {
                    name: container.short_id().to_owned(),
                    hint: Hint::new("its process has not started or has ended"),
                });
            }
            killed();
            return Ok(());
        }
        tear_down(&container)?;
        killed();
        Ok(record_killed(&self.root, &container, |state: &State| {
            state.exited(KILLED_EXIT_CODE, Some("killed by hull kill".into()))
        })?)
    }
}
