//! A container's monitor: the process that holds its VM. It boots the VM,
//! runs the container's process with its output going to the container's
//! log and to attach clients (see [`crate::attach_server`]), passes the
//! signals it gets (`stop` and `kill` signal it) on to that process, and
//! records each change of state.
//!
//! A container started in the background is held by a `__monitor` helper
//! process ([`run_detached`]), which boots it again as its restart policy
//! says when its process ends (the policy and the limits as recorded then:
//! `update` changes them); started for a caller that joins it at once
//! (`start_attached`, Docker's `run -it`), it holds its first run's process
//! until that caller has joined. One run attached ([`run_attached`]) is
//! held by the caller's own process, whose input, output, resizes and
//! signals are the session's too.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hull_protocol::ExitStatus;
use nix::fcntl::Flock;

use crate::attach_server::{self, AttachServer};
use crate::boot::{self, BootOutcome, ConsoleTarget};
use crate::container::{self, Container, State, Status, VmSize, KILLED_EXIT_CODE};
use crate::container_log::{LogDriver, LogWriter};
use crate::events;
use crate::files_vm;
use crate::health::Health;
use crate::health_checker::HealthChecker;
use crate::removal;
use crate::restart_policy::Backoff;
use crate::root::StateRoot;
use crate::session::{self, Controls, Input, OutputSink, Request, SessionEnd};
use crate::signals::{interrupted_exit_code, Signals};

/// Exit code recorded when hull itself failed to run the container.
const HULL_ERROR: i32 = 125;
/// How often a wait before a restart checks whether the user stopped it.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a VM may take to power off after its process ended.
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a run waiting for its writable layer looks again.
const LAYER_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a first run started for a caller that joins it
/// (`awaits_client`) holds its process for that caller.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `__monitor ROOT ID`: holds container `id` in the background, booting it
/// again while its restart policy says so, and removes it at the end if it
/// was created to be. With `awaits_client` its first run's process starts
/// once a client has joined it on the attach socket (or after
/// [`CLIENT_TIMEOUT`]).
///
/// When the container goes with its end (`--rm`) after a run that could
/// not start, the monitor says so in its log (see [`not_started_in_log`]),
/// for the starter to report as it reports a recorded failure.
pub(crate) fn run_detached(root: &StateRoot, id: &str, awaits_client: bool) -> Result<()> {
    let mut container = container::find(root, id)?;
    // Opened while the container is there: its log goes with it.
    let log = OpenOptions::new()
        .append(true)
        .open(container.monitor_log_path())
        .context("cannot open the monitor's log")?;
    let signals = Signals::catch()?;
    // Held from now on: a boot in progress is not removed or started twice.
    container.update_state(|_| State::claimed(false))?;
    let mut backoff = Backoff::default();
    let mut awaits_client = awaits_client;
    let mut not_started;
    loop {
        let started = Instant::now();
        let caller = Caller::Background { awaits_client };
        awaits_client = false;
        let end = run_once(root, &container, &signals, caller);
        not_started = match &end {
            RunEnd::NotStarted { .. } | RunEnd::BootFailed(_) => {
                end.error().map(|reason| (end.exit_code(), reason))
            }
            _ => None,
        };
        // Its policy as recorded now: `update` may have changed it.
        container = as_recorded(container);
        let policy = container.config.restart;
        let next = record(root, &container, &end, |state, code| {
            end.ran() && !state.manually_stopped && policy.restarts_after(code, state.restart_count)
        })?;
        if next.status != Status::Restarting {
            break;
        }
        let delay = backoff.delay_after(started.elapsed());
        if let Some(reason) = stopped_while_waiting(&container, &signals, delay)? {
            container.update_state(|state| state.exited(end.exit_code(), Some(reason.clone())))?;
            break;
        }
        // It boots as recorded now, with what `update` changed meanwhile.
        container = as_recorded(container);
    }
    if finish(root, container)? {
        if let Some((code, reason)) = not_started {
            writeln!(&log, "{}", not_started_line(code, &reason))
                .context("cannot write to the monitor's log")?;
        }
    }
    Ok(())
}

/// How a monitor's log says that the run of its container, removed at its
/// end (`--rm`), could not start: this, the run's code (127, 126, 125),
/// `: ` and why, on one line; the record that says it otherwise went with
/// the container.
const NOT_STARTED: &str = "hull monitor: the run did not start, code ";

fn not_started_line(code: i32, reason: &str) -> String {
    format!("{NOT_STARTED}{code}: {}", reason.replace('\n', " "))
}

/// The code and reason of a run that did not start, as the monitor's `log`
/// says it.
pub(crate) fn not_started_in_log(log: &str) -> Option<(i32, String)> {
    log.lines().rev().find_map(|line| {
        let (code, reason) = line.strip_prefix(NOT_STARTED)?.split_once(": ")?;
        Some((code.parse().ok()?, reason.to_owned()))
    })
}

/// `container` as recorded now, or as it was if its record cannot be
/// read (the next change of its state says why).
fn as_recorded(container: Container) -> Container {
    match container.reload() {
        Ok(current) => current,
        Err(err) => {
            tracing::warn!("{err:#}");
            container
        }
    }
}

/// The I/O of a caller that holds a container itself.
pub(crate) struct Attached {
    /// The process's stdin (`None`: closed).
    pub input: Input,
    /// Where its output goes besides the log.
    pub output: Box<dyn OutputSink>,
    /// Resizes, signals and the moment of attaching.
    pub controls: Controls<'static>,
    /// Where the guest's console goes.
    pub console: ConsoleTarget,
}

/// Holds `container`, which this process has claimed, for one run, with
/// `attached` as its session's I/O, and removes it at the end if it was
/// created to be. What fails once the run has ended is a warning: the
/// process's end stands.
pub(crate) fn run_attached(root: &StateRoot, container: Container, attached: Attached) -> RunEnd {
    let signals = attached.controls.signals.clone();
    // Without the caller's signals, none end the boot early.
    let signals = signals.unwrap_or_else(|| Signals::channel().1);
    let end = run_once(root, &container, &signals, Caller::Attached(attached));
    let end = match record(root, &container, &end, |_, _| false) {
        // `stop` or `kill` tore the VM down under the session.
        Ok(state) if matches!(end, RunEnd::Lost(_)) && state.manually_stopped => RunEnd::Killed,
        Ok(_) => end,
        Err(err) => {
            tracing::warn!("{err:#}");
            end
        }
    };
    if let Err(err) = finish(root, container) {
        tracing::warn!("{err:#}");
    }
    end
}

/// Records how a run ended: restarting if `restarts` says so given the
/// state and the exit code, else exited; and logs the `oom` and `die`
/// events of a process that ran. Returns the new state.
fn record(
    root: &StateRoot,
    container: &Container,
    end: &RunEnd,
    restarts: impl Fn(&State, i32) -> bool,
) -> Result<State> {
    container.update_state(|state| {
        // A run lost because the user killed its VM ended as killed.
        let code = match (end, state.manually_stopped) {
            (RunEnd::Lost(_), true) => KILLED_EXIT_CODE,
            _ => end.exit_code(),
        };
        let state = State {
            oom_killed: end.oom_killed(),
            ..state.clone()
        };
        // Logged before the state shows the end (a `stop` waiting for it
        // logs its own event after this one, in Docker's order), unless
        // whoever tore the VM down logged it.
        if end.ran() && state.status != Status::Exited {
            let config = &container.config;
            if end.oom_killed() {
                events::container_event(root.path(), config, "oom", &[]);
            }
            let exit_code = [("exitCode", code.to_string())];
            events::container_event(root.path(), config, "die", &exit_code);
        }
        if restarts(&state, code) {
            state.restarting(code)
        } else {
            state.exited(code, end.error())
        }
    })
}

/// Removes the container if it was created to go when it ends (`--rm`),
/// unless it is gone already (`rm -f`); whether it did.
fn finish(root: &StateRoot, container: Container) -> Result<bool> {
    match container.config.auto_remove && container.exists() {
        // As Docker's --rm, with its anonymous volumes.
        true => removal::remove(root, &container, true).map(|()| true),
        false => Ok(false),
    }
}

/// How one run of the container's process ended.
pub(crate) enum RunEnd {
    /// The process ran and ended this way.
    Exited {
        status: ExitStatus,
        /// The kernel killed one of its processes for want of memory.
        oom_killed: bool,
    },
    /// A terminating signal came while the VM booted.
    Interrupted(i32),
    /// The agent could not start the process: a shell's code and why.
    NotStarted { code: i32, reason: String },
    /// The VM could not boot.
    BootFailed(anyhow::Error),
    /// The session with the running process broke off.
    Lost(anyhow::Error),
    /// The user's `stop` or `kill` tore its VM down.
    Killed,
}

impl RunEnd {
    /// Whether the process ran at all; a container that cannot start is not
    /// restarted.
    fn ran(&self) -> bool {
        matches!(
            self,
            RunEnd::Exited { .. } | RunEnd::Lost(_) | RunEnd::Killed
        )
    }

    /// The exit code recorded for the run.
    fn exit_code(&self) -> i32 {
        match self {
            RunEnd::Exited { status, .. } => i32::from(status.shell_code()),
            RunEnd::Interrupted(signal) => i32::from(interrupted_exit_code(*signal)),
            RunEnd::NotStarted { code, .. } => *code,
            RunEnd::BootFailed(_) | RunEnd::Lost(_) => HULL_ERROR,
            RunEnd::Killed => KILLED_EXIT_CODE,
        }
    }

    fn oom_killed(&self) -> bool {
        matches!(
            self,
            RunEnd::Exited {
                oom_killed: true,
                ..
            }
        )
    }

    /// Why the container could not run, or what broke off its run.
    fn error(&self) -> Option<String> {
        match self {
            RunEnd::Exited { .. } => None,
            RunEnd::Interrupted(signal) => {
                Some(format!("stopped by signal {signal} while booting"))
            }
            RunEnd::NotStarted { reason, .. } => Some(reason.clone()),
            RunEnd::BootFailed(err) | RunEnd::Lost(err) => Some(format!("{err:#}")),
            RunEnd::Killed => None,
        }
    }
}

/// Who, besides the log and attach clients, takes part in a run.
enum Caller {
    /// Nobody: a monitor in the background; `awaits_client`: its process
    /// starts once an attach client has joined.
    Background { awaits_client: bool },
    /// The process holding the container, with its I/O.
    Attached(Attached),
}

/// Takes `container`'s writable layer for a run, once a VM serving its
/// files (`cp` while it was stopped) has powered off; a terminating signal
/// (`stop`, Ctrl-C) ends the wait as it ends a boot.
fn wait_for_layer(container: &Container, signals: &Signals) -> Result<Flock<File>, RunEnd> {
    loop {
        match container.try_lock_layer() {
            Ok(Some(layer)) => return Ok(layer),
            Ok(None) => {}
            Err(err) => return Err(RunEnd::BootFailed(err)),
        }
        if let Some(signal) = signals.interruption() {
            return Err(RunEnd::Interrupted(signal));
        }
        std::thread::sleep(LAYER_POLL_INTERVAL);
    }
}

/// Boots the VM, runs the process until it ends, and powers the VM off.
fn run_once(root: &StateRoot, container: &Container, signals: &Signals, caller: Caller) -> RunEnd {
    let console = match &caller {
        Caller::Attached(attached) => attached.console,
        Caller::Background { .. } => ConsoleTarget::Log,
    };
    let _layer = match wait_for_layer(container, signals) {
        Ok(layer) => layer,
        Err(end) => return end,
    };
    // A files VM whose command was killed may still be going down.
    files_vm::remove_left_behind(root, container.id());
    let booted = boot::boot(
        root,
        container.id(),
        &container.config.boot,
        &container.scratch_path(),
        console,
        signals,
    );
    let booted = match booted {
        Ok(BootOutcome::Booted(booted)) => booted,
        Ok(BootOutcome::Interrupted(signal)) => return RunEnd::Interrupted(signal),
        Err(err) => return RunEnd::BootFailed(err),
    };
    // What the run needs besides the VM; without it, the VM goes again.
    let socket = attach_server::socket_path(&root.run_dir_path(container.id()));
    let vmm_pid = booted.vm.pid();
    let ready = AttachServer::bind(&socket).and_then(|attach| {
        let log = match container.config.log_driver {
            LogDriver::JsonFile => Some(LogWriter::append_to(
                &container.log_path(),
                container.config.log_limits,
            )?),
            LogDriver::None => None,
        };
        Ok((attach, log))
    });
    let (attach, log) = match ready {
        Ok(ready) => ready,
        Err(err) => return RunEnd::BootFailed(err),
    };
    let serve_clients = |writer| attach.serve(writer);
    let (input, controls, caller_output) = match caller {
        Caller::Attached(attached) => (attached.input, attached.controls, Some(attached.output)),
        Caller::Background { awaits_client } => {
            // A terminating signal meanwhile (`stop`, the caller's Ctrl-C)
            // ends the run before its process starts, as during the boot.
            let interrupted = Cell::new(None);
            let give_up = || {
                interrupted.set(signals.interruption());
                interrupted.get().is_some()
            };
            if awaits_client {
                let terminal = container.config.boot.tty.is_some();
                if let Err(err) = attach.await_client(CLIENT_TIMEOUT, give_up, terminal) {
                    tracing::warn!("{err:#}");
                }
            }
            if let Some(signal) = interrupted.get() {
                // Nothing ran in it: the VM goes at once (killed when
                // dropped), as an interrupted boot's does.
                drop(attach);
                drop(booted);
                return RunEnd::Interrupted(signal);
            }
            let input = match container.config.interactive {
                true => Input::Open,
                false => Input::Closed,
            };
            let controls = Controls {
                signals: Some(signals.clone()),
                ..Controls::default()
            };
            (input, controls, None)
        }
    };
    let mut output = Output {
        log,
        attached: Box::new(attach.output()),
        caller: caller_output,
    };
    // Its health is checked while its process runs.
    let (health_started, health_start) = mpsc::channel();
    let _health_checker =
        container.config.healthcheck.clone().map(|config| {
            HealthChecker::spawn(root.clone(), container.clone(), config, health_start)
        });
    // Running once its process is: one that cannot start never runs.
    let checks_health = container.config.healthcheck.is_some();
    let vm_size = VmSize::of(&container.config.boot);
    let started = move || {
        container.update_state(|state| {
            // Logged before the state shows it: `restart`, waiting for it,
            // logs its own event after this one.
            events::container_event(root.path(), &container.config, "start", &[]);
            State {
                health: checks_health.then(Health::starting),
                ..state.running(vmm_pid, vm_size)
            }
        })?;
        let _ = health_started.send(());
        Ok(())
    };
    let controls = Controls {
        peers: Some(&serve_clients),
        on_started: Some(Box::new(started)),
        ..controls
    };
    let end = session::attach(
        booted.stream,
        Request::Run {
            spec: Box::new(booted.spec),
            report_oom: true,
        },
        input,
        controls,
        &mut output,
    );
    if let Ok(end) = &end {
        attach.finish(end);
    }
    // Before the VM's runtime directory, with the socket, goes away.
    drop(attach);
    booted.vm.finish(POWER_OFF_TIMEOUT);
    match end {
        Ok(SessionEnd::Exited { status, oom_killed }) => RunEnd::Exited { status, oom_killed },
        Ok(SessionEnd::Failed { code, reason }) => RunEnd::NotStarted { code, reason },
        Ok(SessionEnd::Detached) => unreachable!("a monitor's session has no detach keys"),
        Err(err) => RunEnd::Lost(err),
    }
}

/// The process's output: into the container's log, out to the attach
/// clients, and to the caller holding the container, if one does.
struct Output {
    /// `None` with the none log driver.
    log: Option<LogWriter>,
    attached: Box<dyn OutputSink>,
    caller: Option<Box<dyn OutputSink>>,
}

impl OutputSink for Output {
    fn stdout(&mut self, data: &[u8]) {
        if let Some(log) = &mut self.log {
            log.stdout(data);
        }
        self.attached.stdout(data);
        if let Some(caller) = &mut self.caller {
            caller.stdout(data);
        }
    }

    fn stderr(&mut self, data: &[u8]) {
        if let Some(log) = &mut self.log {
            log.stderr(data);
        }
        self.attached.stderr(data);
        if let Some(caller) = &mut self.caller {
            caller.stderr(data);
        }
    }
}

/// Waits `delay` before a restart; returns why not to restart if the user
/// stopped the container (or this monitor was told to end) meanwhile.
fn stopped_while_waiting(
    container: &Container,
    signals: &Signals,
    delay: Duration,
) -> Result<Option<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_did_not_start_is_read_back_from_the_monitors_log() {
        let reason = "exec /no/such: No such file or directory";
        let log = format!("WARN earlier\n{}\n", not_started_line(127, reason));
        assert_eq!(not_started_in_log(&log), Some((127, reason.to_owned())));
        let split = not_started_line(125, "cannot boot:\nno kernel");
        assert_eq!(
            not_started_in_log(&split),
            Some((125, "cannot boot: no kernel".to_owned()))
        );
        assert_eq!(not_started_in_log("hull: exec /no/such\n"), None);
    }
}
