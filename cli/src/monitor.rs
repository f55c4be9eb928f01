//! `hull __monitor ID`: the process that holds a detached container's VM.
//! It boots the VM, runs the container's process with its output going to
//! the container's log and to `hull attach` clients (see
//! [`crate::attach_server`]), forwards the signals it gets (`hull stop` and
//! `hull kill` signal it) to that process, and records each change of state.
//! When the process ends, the container's restart policy may have it boot
//! the VM again.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::attach_server::{self, AttachServer};
use crate::boot::{self, BootOutcome, ConsoleTarget};
use crate::container::{self, Container, State, Status};
use crate::container_log::LogWriter;
use crate::restart_policy::Backoff;
use crate::run::POWER_OFF_TIMEOUT;
use crate::session::{self, Input, OutputSink, Request, SessionEnd};
use crate::signals::{interrupted_exit_code, ForwardedSignals};
use crate::state::StateRoot;

/// Exit code recorded when hull itself failed to run the container.
const HULL_ERROR: i32 = 125;
/// How often a wait before a restart checks whether the user stopped it.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(100);

pub fn monitor(id: &str, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, id)?;
    let policy = container.config.restart;
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let end = run_once(root, &container)?;
        let next = container.update_state(|state| {
            let restart = end.ran
                && !state.manually_stopped
                && policy.restarts_after(end.exit_code, state.restart_count);
            let state = State {
                oom_killed: end.oom_killed,
                ..state.clone()
            };
            if restart {
                state.restarting(end.exit_code)
            } else {
                state.exited(end.exit_code, end.error.clone())
            }
        })?;
        if next.status != Status::Restarting {
            break;
        }
        let delay = backoff.delay_after(started.elapsed());
        if let Some(reason) = stopped_while_waiting(&container, delay)? {
            container.update_state(|state| state.exited(end.exit_code, Some(reason.clone())))?;
            break;
        }
    }
    if container.config.auto_remove {
        container.remove(root)?;
    }
    Ok(0)
}

/// How one run of the container's process ended.
struct RunEnd {
    /// Whether the process ran at all; a container that cannot start is not
    /// restarted.
    ran: bool,
    exit_code: i32,
    /// The kernel killed one of its processes for want of memory.
    oom_killed: bool,
    error: Option<String>,
}

/// Boots the VM, runs the process until it ends, and powers the VM off.
fn run_once(root: &StateRoot, container: &Container) -> Result<RunEnd> {
    let not_run = |exit_code, error| RunEnd {
        ran: false,
        exit_code,
        oom_killed: false,
        error: Some(error),
    };
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
            return Ok(not_run(
                i32::from(interrupted_exit_code(signal)),
                format!("stopped by signal {signal} while booting"),
            ));
        }
        Err(err) => return Ok(not_run(HULL_ERROR, format!("{err:#}"))),
    };
    let attach = AttachServer::bind(&attach_server::socket_path(
        &root.run_dir_path(container.id()),
    ))?;
    container.update_state(|state| state.running(std::process::id()))?;
    let output = Output {
        log: LogWriter::append_to(&container.log_path(), container.config.log_limits)?,
        attached: Box::new(attach.output()),
    };
    let input = Input::Clients {
        server: &attach,
        keep_open: container.config.interactive,
    };
    let end = session::attach(
        booted.stream,
        Request::Run {
            spec: Box::new(booted.spec),
            report_oom: true,
        },
        input,
        Some(signals),
        Box::new(output),
    );
    if let Ok(end) = &end {
        attach.finish(end);
    }
    // Before the VM's runtime directory, with the socket, goes away.
    drop(attach);
    booted.vm.finish(POWER_OFF_TIMEOUT);
    Ok(match end {
        Ok(SessionEnd::Exited { status, oom_killed }) => RunEnd {
            ran: true,
            exit_code: i32::from(status.shell_code()),
            oom_killed,
            error: None,
        },
        Ok(SessionEnd::Failed { code, reason }) => not_run(code, reason),
        Ok(SessionEnd::Detached) => unreachable!("the monitor's session has no detach keys"),
        Err(err) => RunEnd {
            ran: true,
            exit_code: HULL_ERROR,
            oom_killed: false,
            error: Some(format!("{err:#}")),
        },
    })
}

/// The process's output: into the container's log and out to the
/// attached clients.
struct Output {
    log: LogWriter,
    attached: Box<dyn OutputSink>,
}

impl OutputSink for Output {
    fn stdout(&mut self, data: &[u8]) {
        self.log.stdout(data);
        self.attached.stdout(data);
    }

    fn stderr(&mut self, data: &[u8]) {
        self.log.stderr(data);
        self.attached.stderr(data);
    }
}

/// Waits `delay` before a restart; returns why not to restart if the user
/// stopped the container (or this monitor was told to end) meanwhile.
fn stopped_while_waiting(container: &Container, delay: Duration) -> Result<Option<String>> {
    let mut signals = ForwardedSignals::catch()?;
    let deadline = Instant::now() + delay;
    loop {
        if let Some(signal) = signals.interruption() {
            return Ok(Some(format!(
                "stopped by signal {signal} before restarting"
            )));
        }
        if container.state()?.manually_stopped {
            return Ok(Some("stopped before restarting".into()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(left.min(STOP_POLL_INTERVAL));
    }
}
