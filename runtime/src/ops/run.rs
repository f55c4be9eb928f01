//! `run_attached`: one run of a container held by the caller's own
//! process, with the caller's I/O as its session's (a foreground
//! `hull run`).

use std::cell::Cell;

use hull_protocol::ExitStatus;

use crate::boot::ConsoleTarget;
use crate::container::{self, State};
use crate::error::{Error, Hint, Result};
use crate::monitor::{self, Attached, RunEnd};
use crate::ops::start::remove_stale_run_dir;
use crate::ops::{Outcome, Stdio};
use crate::restart_policy::RestartPolicy;
use crate::Runtime;

impl Runtime {
    /// Runs the created or stopped container `name` once in this process,
    /// which holds its VM meanwhile, with `stdio` as its input and output
    /// besides its log; `console` says where the guest's console goes.
    /// `stop` and `kill` reach its process through its attach socket and
    /// tear down its VMM, never this process; the signals in
    /// [`Stdio::signals`] (a front end's own Ctrl-C) go to its process too,
    /// and a terminating one ends its boot. Detach keys do not apply: the
    /// VM ends with the run. Returns how the process ended; one that could
    /// not be started is an error ([`Error::CommandNotFound`], ...).
    pub fn run_attached(
        &self,
        name: &str,
        stdio: Stdio,
        console: ConsoleTarget,
    ) -> Result<Outcome> {
        let container = container::find(&self.root, name)?;
        if container.config.restart != RestartPolicy::No {
            return Err(Error::invalid(
                "a container with a restart policy is held by a monitor of its own: start it, \
                 then attach to it",
            ));
        }
        // Held by this run from now on, unless another holds it.
        container.state()?;
        let claimed = Cell::new(false);
        container.update_state(|state| {
            if state.monitor_pid().is_some() && container.is_monitor(state) {
                return state.clone();
            }
            claimed.set(true);
            State::claimed(true)
        })?;
        if !claimed.get() {
            return Err(Error::Running {
                name: container.config.name.clone(),
                hint: Hint::new("it runs already; attach to it"),
            });
        }
        remove_stale_run_dir(&self.root, &container)?;
        let stdio = Stdio {
            detach_keys: None,
            ..stdio
        };
        let (input, output, controls) = stdio.split();
        let attached = Attached {
            input,
            output: Box::new(output),
            controls,
            console,
        };
        match monitor::run_attached(&self.root, container, attached) {
            RunEnd::Exited { status, oom_killed } => Ok(Outcome::Exited { status, oom_killed }),
            RunEnd::Interrupted(signal) => Ok(Outcome::Interrupted { signal }),
            RunEnd::NotStarted { code, reason } => Err(Error::not_started(code, reason)),
            RunEnd::BootFailed(err) | RunEnd::Lost(err) => Err(err.into()),
            RunEnd::Killed => Ok(Outcome::Exited {
                status: ExitStatus::Signal(libc::SIGKILL),
                oom_killed: false,
            }),
        }
    }
}
