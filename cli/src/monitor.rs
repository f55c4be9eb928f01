//! `hull __monitor ID`: the process that holds a detached container's VM.
//! It boots the VM, runs the container's process with its output going to
//! the container's log, forwards the signals it gets (`hull stop` and
//! `hull kill` signal it) to that process, and records each change of state.

use anyhow::Result;

use crate::boot::{self, BootOutcome, ConsoleTarget};
use crate::container::{self, Container, State};
use crate::container_log::LogWriter;
use crate::run::POWER_OFF_TIMEOUT;
use crate::session::{self, SessionEnd};
use crate::signals::{interrupted_exit_code, ForwardedSignals};
use crate::state::StateRoot;

/// Exit code recorded when hull itself failed to run the container.
const HULL_ERROR: i32 = 125;

pub fn monitor(id: &str, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, id)?;
    let mut signals = ForwardedSignals::catch()?;
    let booted = boot::boot(
        root,
        container.id(),
        &container.config.boot,
        &container.scratch_path(),
        ConsoleTarget::Log,
        &mut signals,
    );
    let booted = match booted {
        Ok(BootOutcome::Booted(booted)) => booted,
        Ok(BootOutcome::Interrupted(signal)) => {
            let code = i32::from(interrupted_exit_code(signal));
            return record_end(
                root,
                container,
                code,
                Some(format!("stopped by signal {signal} while booting")),
            );
        }
        Err(err) => return record_end(root, container, HULL_ERROR, Some(format!("{err:#}"))),
    };
    container.set_state(&State::running(std::process::id()))?;
    let log = LogWriter::append_to(&container.log_path())?;
    let end = session::attach(booted.stream, booted.spec, false, signals, Box::new(log));
    booted.vm.finish(POWER_OFF_TIMEOUT);
    match end {
        Ok(SessionEnd::Exited(status)) => {
            record_end(root, container, i32::from(status.shell_code()), None)
        }
        Ok(SessionEnd::Failed { code, reason }) => record_end(root, container, code, Some(reason)),
        Err(err) => record_end(root, container, HULL_ERROR, Some(format!("{err:#}"))),
    }
}

/// Records how the container ended; a `run --rm` container is removed.
fn record_end(
    root: &StateRoot,
    container: Container,
    exit_code: i32,
    error: Option<String>,
) -> Result<u8> {
    container.set_state(&container.state()?.exited(exit_code, error))?;
    if container.config.auto_remove {
        container.remove(root)?;
    }
    Ok(0)
}
