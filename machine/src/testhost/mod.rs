//! The KVM test host: a QEMU VM (TCG with nested SVM, so it has a real
//! /dev/kvm) that sees this host's whole root read-only under a tmpfs
//! overlay, for the end-to-end tests where this host's own KVM cannot run
//! hull's guest. Made persistent, it is the hull machine (`crate::Machine`).
//!
//! Each `hull __testhost-exec` boots a fresh test host whose `/init` starts
//! the guest agent in relay mode on a virtio-serial port; [`exec`] then runs
//! one process through it with the ordinary agent session and the VM powers
//! off.

pub mod image;
mod privileges;
pub mod vm;
mod watchdog;

use std::env;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hull_protocol::{RunSpec, TerminalSize};
use hull_runtime::session::{self, Controls, Input, Request, Writers};
use hull_runtime::signals::{interrupted_exit_code, Signals};
use hull_runtime::{assets, Boot};

use self::image::Image;
use self::vm::TestHostVm;
use self::watchdog::{Verdict, Watchdog, STALL_LIMIT};

/// How long the test host may take from QEMU's start to the agent's
/// greeting; TCG boots take 5-10 s on an idle machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the test host may take to power off after the session.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a command may run in the test host (`HULL_TESTHOST_TIMEOUT`,
/// seconds), longer than any end-to-end script under a loaded machine.
const DEFAULT_COMMAND_TIMEOUT_SECS: u32 = 1800;
/// Console lines shown when the test host fails.
const DIAGNOSTIC_LINES: usize = 20;
const HOSTNAME: &str = "hull-testhost";
/// How a test host that froze is reported; the end-to-end tests run a
/// script again, once, when its test host failed with these words.
pub const FROZEN: &str = "the test host froze";

/// Runs `command` as root in a fresh test host with this process's stdio,
/// environment and working directory and returns its exit code (`hull
/// __testhost-exec -- CMD...`).
///
/// Call it from the main thread: QEMU is tied to the lifetime of the thread
/// that starts it.
pub fn exec(command: Vec<String>) -> Result<u8> {
    let spec = relay_process(command, environment(), HOSTNAME, None)?;
    let image = Image::prepare().context("cannot prepare the KVM test host")?;
    let agent = assets::agent_binary()?;

    let started = Instant::now();
    let signals = Signals::catch()?;
    let mut vm = TestHostVm::start(&image, &agent)?;
    let boot = vm
        .connect_relay(BOOT_TIMEOUT, &signals)
        .map_err(|err| anyhow!("KVM test host: {err:#}{}", vm.diagnostics(DIAGNOSTIC_LINES)))?;
    let stream = match boot {
        Boot::Ready(stream) => stream,
        Boot::Interrupted(signal) => return Ok(interrupted_exit_code(signal)),
    };
    tracing::debug!(elapsed = ?started.elapsed(), "test host relay is up");

    let deadline = Duration::from_secs(
        vm::env_number("HULL_TESTHOST_TIMEOUT", DEFAULT_COMMAND_TIMEOUT_SECS)?.into(),
    );
    let stall_limit = Duration::from_secs(
        vm::env_number("HULL_TESTHOST_STALL_LIMIT", STALL_LIMIT.as_secs() as u32)?.into(),
    );
    let watchdog = Watchdog::start(vm.pid(), deadline, vm.heartbeat(), stall_limit);
    let mut output = Writers::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));
    let end = session::attach(
        stream,
        Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        },
        Input::Reader {
            reader: Box::new(std::io::stdin()),
            detach_keys: None,
        },
        Controls {
            signals: Some(signals),
            ..Controls::default()
        },
        &mut output,
    );
    let killed = match watchdog.call_off() {
        Verdict::InTime => None,
        Verdict::PastDeadline => Some(format!(
            "the command ran past {deadline:?} (HULL_TESTHOST_TIMEOUT)"
        )),
        Verdict::Stalled => Some(format!(
            "{FROZEN} (no heartbeat for {stall_limit:?}: QEMU's emulation wedged, not the command)"
        )),
    };
    if let Some(why) = killed {
        return Err(anyhow!(
            "KVM test host: {why}; the test host was killed{}",
            vm.diagnostics(DIAGNOSTIC_LINES)
        ));
    }

    match end {
        Ok(end) => {
            vm.shut_down(POWEROFF_TIMEOUT);
            tracing::debug!(elapsed = ?started.elapsed(), "test host run finished");
            if let Some(reason) = end.failure() {
                eprintln!("hull: {reason}");
            }
            Ok(end.exit_code())
        }
        Err(err) => Err(anyhow!(
            "KVM test host: {err:#}{}",
            vm.diagnostics(DIAGNOSTIC_LINES)
        )),
    }
}

/// The process a relay session runs: `argv` as root with `env` (`KEY=VALUE`
/// words), under `hostname`, in this directory, which the test host and the
/// hull machine see under the same path.
pub fn relay_process(
    argv: Vec<String>,
    env: Vec<String>,
    hostname: &str,
    tty: Option<TerminalSize>,
) -> Result<RunSpec> {
    let cwd = env::current_dir().context("cannot read the current directory")?;
    let cwd = cwd
        .to_str()
        .with_context(|| format!("the current directory {} is not UTF-8", cwd.display()))?
        .to_owned();
    Ok(RunSpec {
        argv,
        env,
        cwd,
        user: String::new(),
        hostname: hostname.to_owned(),
        domainname: String::new(),
        rootfs: None,
        tty,
        network: None,
        limits: None,
        hold: false,
        privileged: false,
    })
}

/// This process's environment as `KEY=VALUE` words (variables that are not
/// UTF-8 are left out).
pub fn environment() -> Vec<String> {
    env::vars_os()
        .filter_map(|(key, value)| Some(format!("{}={}", key.to_str()?, value.to_str()?)))
        .collect()
}
