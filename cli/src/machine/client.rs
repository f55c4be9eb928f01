//! The host side of the hull machine: starting it on first use, and running
//! a hull command line inside it through a relay session, with this
//! process's stdio, terminal, signals and exit code.

use std::env;
use std::fs::File;
use std::io::IsTerminal;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hull_protocol::RunSpec;

use super::control::{self, Request};
use super::layout::Layout;
use crate::child_process;
use crate::fsutil;
use crate::session::{self, Input, OutputSink};
use crate::signals::{interrupted_exit_code, ForwardedSignals};
use crate::state::StateRoot;
use crate::terminal;
use crate::testhost::vm::log_tails;
use crate::vm_process::Boot;

/// How long a starting machine may take until its supervisor answers.
const START_TIMEOUT: Duration = Duration::from_secs(240);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often a session is tried against a machine that stops meanwhile.
const SESSION_ATTEMPTS: u32 = 3;
/// The machine's host name, as its processes see it.
const HOSTNAME: &str = "hull-machine";
/// Supervisor log lines shown when the machine fails to start.
const DIAGNOSTIC_LINES: usize = 30;

/// Starts the machine unless it is up; `notice` is printed when it starts.
/// A terminating signal from `signals` ends the wait (the machine goes on
/// starting) and is returned.
pub fn ensure_up(
    root: &StateRoot,
    notice: Option<&str>,
    signals: Option<&mut ForwardedSignals>,
) -> Result<Option<i32>> {
    let layout = Layout::new(root);
    if layout.is_up()? {
        return wait_ready(&layout, None, signals);
    }
    let _starting = fsutil::lock_file(&layout.start_lock())?;
    if layout.is_up()? {
        return wait_ready(&layout, None, signals);
    }
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    let mut supervisor = spawn_supervisor(root, &layout)?;
    wait_ready(&layout, Some(&mut supervisor), signals)
}

/// Runs this process's own command line in the machine (starting it if
/// need be, with `notice`) and returns its exit code.
pub fn forward(root: &StateRoot, notice: &str) -> Result<u8> {
    let mut argv = vec![hull_executable()?];
    argv.extend(env::args().skip(1));
    let code = run_attached(root, argv, Some(notice))?;
    // Containers started or stopped: their ports on the host follow now.
    if let Ok(failures) = control::answer(&Layout::new(root), Request::SyncPorts) {
        for failure in failures.lines() {
            eprintln!("hull: warning: {failure}");
        }
    }
    Ok(code)
}

/// Runs `argv` in the machine (which must have been started) with this
/// process's stdio, terminal and signals.
pub fn exec(root: &StateRoot, argv: Vec<String>) -> Result<u8> {
    if !Layout::new(root).is_up()? {
        bail!("the hull machine is not running: `hull machine start` first");
    }
    run_attached(root, argv, None)
}

fn run_attached(root: &StateRoot, argv: Vec<String>, notice: Option<&str>) -> Result<u8> {
    let tty = (std::io::stdin().is_terminal() && std::io::stdout().is_terminal())
        .then(|| terminal::size().unwrap_or(terminal::DEFAULT_SIZE));
    let spec = spec(argv, env::vars().collect(), tty)?;
    let mut signals = ForwardedSignals::catch()?;
    let stream = match session_stream(root, notice, &mut signals)? {
        Boot::Ready(stream) => stream,
        Boot::Interrupted(signal) => return Ok(interrupted_exit_code(signal)),
    };
    let end = session::attach(
        stream,
        session::Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        },
        Input::Stdin(None),
        Some(signals),
        Box::new(session::Terminal::default()),
    )
    .context("the session with the hull machine broke off")?;
    Ok(end.exit_code())
}

/// Runs `hull ARGS...` in the running machine with stdin closed and the
/// output on ours (the supervisor's log).
pub fn run_quietly(layout: &Layout, args: Vec<String>) -> Result<u8> {
    let env = ["PATH", "HOME"]
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), env::var(key).ok()?)))
        .collect();
    let mut argv = vec![hull_executable()?];
    argv.extend(args);
    let spec = spec(argv, env, None)?;
    let stream = control::send(layout, Request::Session)?;
    let end = session::attach(
        stream,
        session::Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        },
        Input::Closed,
        None,
        Box::new(session::Terminal::default()) as Box<dyn OutputSink>,
    )?;
    Ok(end.exit_code())
}

/// This hull's path, which is the same in the machine. A hull replaced
/// (upgraded) since this process started is the one run there.
fn hull_executable() -> Result<String> {
    let exe = env::current_exe().context("cannot locate the hull executable")?;
    let exe = exe
        .to_str()
        .with_context(|| format!("the hull executable {} is not UTF-8", exe.display()))?;
    Ok(exe.strip_suffix(" (deleted)").unwrap_or(exe).to_owned())
}

/// `argv` run in the machine, with `env` and this directory: the host's
/// paths are the machine's. A hull there runs its VMs itself.
fn spec(
    argv: Vec<String>,
    env: Vec<(String, String)>,
    tty: Option<hull_protocol::TerminalSize>,
) -> Result<RunSpec> {
    let cwd = env::current_dir().context("cannot read the current directory")?;
    let cwd = cwd
        .to_str()
        .with_context(|| format!("the current directory {} is not UTF-8", cwd.display()))?
        .to_owned();
    let env = env
        .into_iter()
        .filter(|(key, _)| key != super::BACKEND_ENV)
        .map(|(key, value)| format!("{key}={value}"))
        .chain([format!("{}=direct", super::BACKEND_ENV)])
        .collect();
    Ok(RunSpec {
        argv,
        env,
        cwd,
        user: String::new(),
        hostname: HOSTNAME.to_owned(),
        rootfs: None,
        tty,
        network: None,
    })
}

/// A relay session with the machine, starting it if it is down (or went
/// down on its idle timeout just now), unless a signal comes first.
fn session_stream(
    root: &StateRoot,
    notice: Option<&str>,
    signals: &mut ForwardedSignals,
) -> Result<Boot> {
    let layout = Layout::new(root);
    let mut attempt = 1;
    loop {
        let session = match ensure_up(root, notice, Some(&mut *signals)) {
            Ok(Some(signal)) => return Ok(Boot::Interrupted(signal)),
            Ok(None) => control::send(&layout, Request::Session),
            Err(err) => Err(err),
        };
        match session {
            Ok(stream) => return Ok(Boot::Ready(stream)),
            Err(err) if attempt >= SESSION_ATTEMPTS => return Err(err),
            Err(_) => attempt += 1,
        }
    }
}

fn spawn_supervisor(root: &StateRoot, layout: &Layout) -> Result<Child> {
    let log_path = layout.supervisor_log();
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let exe = env::current_exe().context("cannot locate the hull executable")?;
    let mut command = Command::new(exe);
    command
        .arg("--root")
        .arg(root.path())
        .arg("__machine")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log.try_clone().context("cannot share the machine log")?,
        ))
        .stderr(Stdio::from(log));
    child_process::detach_from_terminal(&mut command);
    command
        .spawn()
        .context("cannot start the hull machine's supervisor")
}

/// Waits until the supervisor answers on its control socket, or a
/// terminating signal from `signals` comes; `supervisor` is the one this
/// process started, if it did.
fn wait_ready(
    layout: &Layout,
    mut supervisor: Option<&mut Child>,
    mut signals: Option<&mut ForwardedSignals>,
) -> Result<Option<i32>> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if control::answer(layout, Request::Status).is_ok() {
            return Ok(None);
        }
        if let Some(signal) = signals
            .as_deref_mut()
            .and_then(ForwardedSignals::interruption)
        {
            return Ok(Some(signal));
        }
        let ended = match supervisor.as_deref_mut() {
            Some(child) => child
                .try_wait()
                .context("cannot check on the machine's supervisor")?
                .map(|status| status.to_string()),
            None => (!layout.is_up()?).then(|| "it stopped".to_owned()),
        };
        if let Some(how) = ended {
            bail!(
                "the hull machine did not start ({how}){}",
                log_tails(
                    &[("hull machine", &layout.supervisor_log())],
                    DIAGNOSTIC_LINES
                )
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the hull machine did not start within {START_TIMEOUT:?}; see {}",
                layout.supervisor_log().display()
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}
