//! The host side of the hull machine: starting it on first use, and running
//! a hull command line inside it through a relay session, with this
//! process's stdio, terminal, signals and exit code.

use std::env;
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hull_protocol::RunSpec;

use super::control::{self, Request};
use super::layout::{Layout, Locked};
use super::ForwardedStdio;
use crate::child_process;
use crate::session::{self, Input};
use crate::signals::{interrupted_exit_code, ForwardedSignals};
use crate::state::StateRoot;
use crate::terminal;
use crate::testhost::{self, vm::log_tails};
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
/// A terminating signal from `signals` ends the wait (a machine already
/// starting goes on) and is returned.
pub fn ensure_up(
    root: &StateRoot,
    notice: Option<&str>,
    mut signals: Option<&mut ForwardedSignals>,
) -> Result<Option<i32>> {
    let layout = Layout::new(root);
    loop {
        if layout.is_up()? {
            match wait_ready(&layout, None, signals.as_deref_mut())? {
                Waited::Ready => return Ok(None),
                Waited::Interrupted(signal) => return Ok(Some(signal)),
                // It was stopping: start another.
                Waited::Gone => continue,
            }
        }
        let _starting = match layout.hold_start(signals.as_deref_mut())? {
            Locked::Held(file) => file,
            Locked::Interrupted(signal) => return Ok(Some(signal)),
        };
        if layout.is_up()? {
            continue; // Another command started it meanwhile.
        }
        let claim = match layout.claim(signals.as_deref_mut())? {
            Locked::Held(file) => file,
            Locked::Interrupted(signal) => return Ok(Some(signal)),
        };
        if let Some(notice) = notice {
            eprintln!("{notice}");
        }
        let mut supervisor = spawn_supervisor(root, &layout, claim)?;
        return match wait_ready(&layout, Some(&mut supervisor), signals)? {
            Waited::Ready | Waited::Gone => Ok(None),
            Waited::Interrupted(signal) => Ok(Some(signal)),
        };
    }
}

/// Runs this process's own command line in the machine (starting it if
/// need be, with `notice`) with `stdio` and our environment plus `env`, and
/// returns its exit code.
pub fn forward(
    root: &StateRoot,
    notice: &str,
    stdio: ForwardedStdio,
    env: Vec<String>,
) -> Result<u8> {
    let mut argv = vec![hull_executable()?];
    argv.extend(env::args().skip(1));
    let code = run_attached(root, argv, stdio, env, Some(notice))?;
    // Containers started or stopped: their ports on the host follow now.
    if let Ok(failures) = control::answer(&Layout::new(root), Request::SyncPorts) {
        for failure in failures.lines() {
            eprintln!("hull: warning: {failure}");
        }
    }
    Ok(code)
}

/// Runs `argv` in the running machine with this process's stdin, terminal
/// and signals.
pub fn exec(root: &StateRoot, argv: Vec<String>) -> Result<u8> {
    let stdio = ForwardedStdio {
        stdin: true,
        tty: true,
    };
    run_attached(root, argv, stdio, Vec::new(), None)
}

/// Runs `argv` in the machine; with `notice`, starting it first if need be
/// (and saying so), else only if it is up.
fn run_attached(
    root: &StateRoot,
    argv: Vec<String>,
    stdio: ForwardedStdio,
    env: Vec<String>,
    notice: Option<&str>,
) -> Result<u8> {
    let on_terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let tty =
        (stdio.tty && on_terminal).then(|| terminal::size().unwrap_or(terminal::DEFAULT_SIZE));
    let mut environment = testhost::environment();
    environment.extend(env);
    let spec = spec(argv, environment, tty)?;
    let mut signals = ForwardedSignals::catch()?;
    let stream = match notice {
        Some(notice) => match session_stream(root, notice, &mut signals)? {
            Boot::Ready(stream) => stream,
            Boot::Interrupted(signal) => return Ok(interrupted_exit_code(signal)),
        },
        None => control::send(&Layout::new(root), Request::Session)
            .context("is it running? `hull machine start` first")?,
    };
    let input = match stdio.stdin {
        true => Input::Stdin(None),
        false => Input::Closed,
    };
    let end = session::attach(
        stream,
        session::Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        },
        input,
        Some(signals),
        Box::new(session::Terminal::default()),
    )
    .context("the session with the hull machine broke off")?;
    Ok(end.exit_code())
}

/// Runs `hull ARGS...` through `stream`, a relay session with the machine,
/// with stdin closed and the output on ours (the supervisor's log).
pub fn run_quietly(stream: UnixStream, args: Vec<String>) -> Result<u8> {
    let env = ["PATH", "HOME"]
        .into_iter()
        .filter_map(|key| Some(format!("{key}={}", env::var(key).ok()?)))
        .collect();
    let mut argv = vec![hull_executable()?];
    argv.extend(args);
    let end = session::attach(
        stream,
        session::Request::Run {
            spec: Box::new(spec(argv, env, None)?),
            report_oom: false,
        },
        Input::Closed,
        None,
        Box::new(session::Terminal::default()),
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

/// `argv` run in the machine with `env`, where a hull runs its VMs itself.
fn spec(
    argv: Vec<String>,
    env: Vec<String>,
    tty: Option<hull_protocol::TerminalSize>,
) -> Result<RunSpec> {
    let backend = format!("{}=", super::BACKEND_ENV);
    let env = env
        .into_iter()
        .filter(|word| !word.starts_with(&backend))
        .chain([format!("{backend}direct")])
        .collect();
    testhost::relay_process(argv, env, HOSTNAME, tty)
}

/// A relay session with the machine, starting it if it is down (or went
/// down on its idle timeout just now), unless a signal comes first.
fn session_stream(root: &StateRoot, notice: &str, signals: &mut ForwardedSignals) -> Result<Boot> {
    let layout = Layout::new(root);
    let mut attempt = 1;
    loop {
        if let Some(signal) = ensure_up(root, Some(notice), Some(&mut *signals))? {
            return Ok(Boot::Interrupted(signal));
        }
        // A machine that began to stop just now refuses: wait for the next.
        match control::send(&layout, Request::Session) {
            Ok(stream) => return Ok(Boot::Ready(stream)),
            Err(err) if attempt >= SESSION_ATTEMPTS => return Err(err),
            Err(_) => attempt += 1,
        }
    }
}

/// Starts the supervisor, handing it `lock`, the machine's lock this
/// command holds: the machine is up from now on for every other command.
fn spawn_supervisor(root: &StateRoot, layout: &Layout, lock: File) -> Result<Child> {
    let log_path = layout.supervisor_log();
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let lock = OwnedFd::from(lock);
    // Absolute: the supervisor leaves this directory.
    let root_dir = root
        .path()
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.path().display()))?;
    let mut command = Command::new(hull_executable()?);
    command
        .arg("--root")
        .arg(root_dir)
        .arg("__machine")
        .arg("--lock-fd")
        .arg(lock.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log.try_clone().context("cannot share the machine log")?,
        ))
        .stderr(Stdio::from(log));
    child_process::detach_from_terminal(&mut command);
    child_process::inherit_fds(&mut command, std::slice::from_ref(&lock));
    // Our copy of `lock` closes on return; the lock stays with the child's.
    command
        .spawn()
        .context("cannot start the hull machine's supervisor")
}

/// How a wait for the machine ended.
enum Waited {
    /// Its supervisor answers.
    Ready,
    /// A terminating signal came first.
    Interrupted(i32),
    /// It went down (a machine that was stopping).
    Gone,
}

/// Waits until the supervisor answers on its control socket, or a
/// terminating signal from `signals` comes; `supervisor` is the one this
/// process started, if it did (its end is an error).
fn wait_ready(
    layout: &Layout,
    mut supervisor: Option<&mut Child>,
    mut signals: Option<&mut ForwardedSignals>,
) -> Result<Waited> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if control::answer(layout, Request::Status).is_ok() {
            return Ok(Waited::Ready);
        }
        if let Some(signal) = signals
            .as_deref_mut()
            .and_then(ForwardedSignals::interruption)
        {
            return Ok(Waited::Interrupted(signal));
        }
        match supervisor.as_deref_mut() {
            Some(child) => {
                if let Some(status) = child
                    .try_wait()
                    .context("cannot check on the machine's supervisor")?
                {
                    bail!(
                        "the hull machine did not start ({status}){}",
                        log_tails(
                            &[("hull machine", &layout.supervisor_log())],
                            DIAGNOSTIC_LINES
                        )
                    );
                }
            }
            None if !layout.is_up()? => return Ok(Waited::Gone),
            None => {}
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
