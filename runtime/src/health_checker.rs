//! Runs a container's healthcheck while its process runs: a thread of the
//! process holding the VM (its monitor, or a foreground `run`) that runs
//! the check through the agent as `exec` does, on schedule, and records
//! each result in the container's state. No process on the host per check.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use hull_protocol::RunSpec;

use crate::container::{Container, State, Status};
use crate::events;
use crate::health::{Health, HealthConfig, HealthResult, OUTPUT_LIMIT};
use crate::ops::agent;
use crate::root::StateRoot;
use crate::session::{self, Controls, Input, OutputSink, Request, SessionEnd};
use crate::timestamp::now;

/// Checks a container's health until dropped.
pub(crate) struct HealthChecker {
    /// Dropped to stop the thread.
    _stop: Sender<()>,
}

impl HealthChecker {
    /// Starts checking `container` by `config` once `started` says its
    /// process runs (a dropped sender: it never did) and its state says so
    /// with its health `starting`.
    pub(crate) fn spawn(
        root: StateRoot,
        container: Container,
        config: HealthConfig,
        started: Receiver<()>,
    ) -> HealthChecker {
        let (stop, stopped) = mpsc::channel();
        thread::spawn(move || {
            if started.recv().is_ok() {
                check_until_stopped(&root, &container, &config, &stopped);
            }
        });
        HealthChecker { _stop: stop }
    }
}

fn check_until_stopped(
    root: &StateRoot,
    container: &Container,
    config: &HealthConfig,
    stopped: &Receiver<()>,
) {
    let started = Instant::now();
    let in_start_period = || started.elapsed() < config.start_period();
    loop {
        let wait = match in_start_period() {
            true => config.start_interval(),
            false => config.interval(),
        };
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Ok(state) = container.state() else { return };
        if state.status != Status::Running {
            return;
        }
        if state.paused {
            continue;
        }
        let result = run_check(root, container, config);
        let counted_in_start_period = in_start_period();
        let before = state.health.as_ref().map(|health| health.status);
        let recorded = container.update_state(|state| {
            let health = state.health.clone().unwrap_or_else(Health::starting);
            let health = health.after(result, config.retries(), counted_in_start_period);
            with_health(state, health)
        });
        let Ok(recorded) = recorded else { return };
        // As Docker's, an event when the status changes.
        let after = recorded.health.as_ref().map(|health| health.status);
        if let Some(status) = after.filter(|_| after != before) {
            let action = format!("health_status: {}", status.as_str());
            events::container_event(root.path(), &container.config, &action, &[]);
        }
    }
}

/// `state` with `health` in it.
fn with_health(state: &State, health: Health) -> State {
    State {
        health: Some(health),
        ..state.clone()
    }
}

/// Runs one check in the container, ended after the timeout (the agent
/// kills a process whose session ends).
fn run_check(root: &StateRoot, container: &Container, config: &HealthConfig) -> HealthResult {
    let start = now();
    let boot = &container.config.boot;
    let spec = RunSpec {
        argv: config.argv(),
        env: boot.env.clone(),
        cwd: boot.cwd.clone(),
        user: boot.user.clone(),
        hostname: boot.hostname.clone(),
        domainname: String::new(),
        rootfs: None,
        tty: None,
        network: None,
        limits: None,
        hold: false,
        privileged: false,
    };
    let (exit_code, output) = match check_with_timeout(root, container, spec, config.timeout()) {
        Ok(done) => done,
        Err(reason) => (-1, reason),
    };
    HealthResult {
        start,
        end: now(),
        exit_code,
        output,
    }
}

/// The check's exit code and output, or why it has none.
fn check_with_timeout(
    root: &StateRoot,
    container: &Container,
    spec: RunSpec,
    timeout: Duration,
) -> Result<(i32, String), String> {
    let stream = agent::connect(root, container).map_err(|err| format!("{err:#}"))?;
    let closer = stream.try_clone().map_err(|err| err.to_string())?;
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let mut output = CheckOutput::default();
        let request = Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        };
        let end = session::attach(
            stream,
            request,
            Input::Closed,
            Controls::default(),
            &mut output,
        );
        let _ = done.send((end, output.text()));
    });
    match finished.recv_timeout(timeout) {
        Ok((Ok(SessionEnd::Exited { status, .. }), output)) => {
            Ok((i32::from(status.shell_code()), output))
        }
        Ok((Ok(SessionEnd::Failed { code, reason }), _)) => Ok((code, reason)),
        Ok((Ok(SessionEnd::Detached), _)) => Err("the check was detached".into()),
        Ok((Err(err), _)) => Err(format!("{err:#}")),
        Err(_) => {
            let _ = closer.shutdown(std::net::Shutdown::Both);
            Err(format!(
                "Health check exceeded timeout ({})",
                humanize(timeout)
            ))
        }
    }
}

/// `30s`, `1.5s`, as Go prints a duration Docker reports.
fn humanize(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// The start of a check's stdout and stderr, interleaved as written.
#[derive(Default)]
struct CheckOutput(Vec<u8>);

impl CheckOutput {
    fn keep(&mut self, data: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.0.len());
        self.0.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl OutputSink for CheckOutput {
    fn stdout(&mut self, data: &[u8]) {
        self.keep(data);
    }

    fn stderr(&mut self, data: &[u8]) {
        self.keep(data);
    }
}
