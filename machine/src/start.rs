//! Starting the machine on first use: the command that starts it takes the
//! machine's lock and hands it to the supervisor it spawns, so no command
//! sees the machine down while it starts and two commands start one.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hull_runtime::child_process;
use hull_runtime::signals::Signals;

use crate::control::{self, Request};
use crate::layout::{Layout, Locked};
use crate::testhost::vm::log_tails;
use crate::{hull_executable, SUPERVISOR};

/// How long a starting machine may take until its supervisor answers.
const START_TIMEOUT: Duration = Duration::from_secs(240);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Supervisor log lines shown when the machine fails to start.
const DIAGNOSTIC_LINES: usize = 30;

/// Starts the machine of `root` unless it is up; `notice` is printed when
/// it starts. A terminating signal from `signals` ends the wait (a machine
/// already starting goes on) and is returned.
pub(crate) fn ensure_up(
    root: &Path,
    layout: &Layout,
    notice: Option<&str>,
    signals: Option<&Signals>,
) -> Result<Option<i32>> {
    loop {
        if layout.is_up()? {
            match wait_ready(layout, None, signals)? {
                Waited::Ready => return Ok(None),
                Waited::Interrupted(signal) => return Ok(Some(signal)),
                // It was stopping: start another.
                Waited::Gone => continue,
            }
        }
        let _starting = match layout.hold_start(signals)? {
            Locked::Held(file) => file,
            Locked::Interrupted(signal) => return Ok(Some(signal)),
        };
        if layout.is_up()? {
            continue; // Another command started it meanwhile.
        }
        let claim = match layout.claim(signals)? {
            Locked::Held(file) => file,
            Locked::Interrupted(signal) => return Ok(Some(signal)),
        };
        if let Some(notice) = notice {
            eprintln!("{notice}");
        }
        let mut supervisor = spawn_supervisor(root, layout, claim)?;
        return match wait_ready(layout, Some(&mut supervisor), signals)? {
            Waited::Ready | Waited::Gone => Ok(None),
            Waited::Interrupted(signal) => Ok(Some(signal)),
        };
    }
}

/// Starts the supervisor, handing it `lock`, the machine's lock this
/// command holds: the machine is up from now on for every other command.
fn spawn_supervisor(root: &Path, layout: &Layout, lock: File) -> Result<Child> {
    let log_path = layout.supervisor_log();
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let lock = OwnedFd::from(lock);
    // Absolute: the supervisor leaves this directory.
    let root_dir = root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    let mut command = Command::new(hull_executable()?);
    command
        .arg(SUPERVISOR)
        .arg(root_dir)
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
    signals: Option<&Signals>,
) -> Result<Waited> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if control::answer(layout, Request::Status).is_ok() {
            return Ok(Waited::Ready);
        }
        if let Some(signal) = signals.and_then(Signals::interruption) {
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
