//! The hull machine: where this host's KVM cannot run hull's guest (no
//! /dev/kvm, or PVM), hull's commands run in a persistent KVM host (QEMU
//! TCG with nested SVM), as Docker Desktop or podman machine do. Its root
//! is the host's own root (9p, read-only) with the hull root and the
//! settings' shares writable over their paths (`shares`), so host paths,
//! the hull root and its images, volumes and containers are the same
//! inside.
//!
//! One supervisor process per hull root holds the machine (`supervisor`,
//! started as the `__machine` helper through [`dispatch`]); [`Machine`]
//! starts it on first use, opens relay sessions with it (in which a front
//! end runs its own command line, see `relay_spec`), and stops it. The
//! same QEMU host, booted fresh for one command, is the KVM test host of
//! the end-to-end tests ([`testhost`]).

mod backend;
mod control;
mod layout;
mod ports;
mod relay;
mod settings;
mod shares;
mod start;
mod supervisor;
pub mod testhost;

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hull_runtime::signals::Signals;
use hull_runtime::Boot;

pub use backend::{Backend, BACKEND_ENV};
pub use control::Status;
pub use layout::Presence;
pub use relay::{hull_executable, relay_spec};
pub use settings::{list, Changes, Settings};
pub use shares::WritableShares;

use control::Request;
use layout::Layout;

/// The TCP port the machine's relay listens on inside it: outside the
/// kernel's range for picked ports, so `-p 80` never lands on it.
const GUEST_RELAY_PORT: u16 = 65535;
/// The helper that holds the machine.
const SUPERVISOR: &str = "__machine";
/// How long `stop` waits for the machine to go.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often a session is tried against a machine that stops meanwhile.
const SESSION_ATTEMPTS: u32 = 3;

/// Runs the machine's supervisor if this process was started as it:
/// `Some` with how it ended, `None` for any other command line. Call it
/// first thing in `main`, as [`hull_runtime::helper::dispatch`].
pub fn dispatch() -> Option<Result<()>> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first()? != SUPERVISOR {
        return None;
    }
    Some(match &args[1..] {
        [root, fd] => fd
            .to_str()
            .and_then(|fd| fd.parse::<RawFd>().ok())
            .context("the lock's file descriptor is not a number")
            .and_then(|fd| {
                let root = Path::new(root);
                let lock = Layout::new(root).adopt(fd)?;
                supervisor::supervise(root, lock)
            }),
        _ => Err(anyhow::anyhow!("usage: {SUPERVISOR} ROOT LOCK_FD")),
    })
}

/// Where a machine is in its life.
pub enum MachineState {
    /// Down, with the settings it starts with.
    Stopped(Settings),
    /// Starting or stopping: its supervisor does not answer yet (or any
    /// more).
    Changing,
    /// Up.
    Running(Status),
}

/// The hull machine of one hull root.
pub struct Machine {
    root: PathBuf,
    layout: Layout,
}

impl Machine {
    /// The machine of the hull root `root`.
    pub fn new(root: &Path) -> Machine {
        Machine {
            root: root.to_owned(),
            layout: Layout::new(root),
        }
    }

    /// Whether it is up (or starting).
    pub fn is_up(&self) -> Result<bool> {
        self.layout.is_up()
    }

    /// Whether it is up; while the returned guard of a machine that is down
    /// is held, none starts.
    pub fn presence(&self) -> Result<Presence> {
        self.layout.presence()
    }

    /// Starts it unless it is up; `notice` goes to stderr when it starts.
    /// A terminating signal from `signals` ends the wait (a machine already
    /// starting goes on) and is returned.
    pub fn ensure_up(
        &self,
        notice: Option<&str>,
        signals: Option<&Signals>,
    ) -> Result<Option<i32>> {
        let interrupted = start::ensure_up(&self.root, &self.layout, notice, signals)?;
        if interrupted.is_none() {
            self.warn_if_stale();
        }
        Ok(interrupted)
    }

    /// Says on stderr if the running machine shares other host directories
    /// writable than its settings (and this hull) would: one started by an
    /// older hull shares the host's whole root. Only a restart applies them.
    fn warn_if_stale(&self) {
        let Ok(MachineState::Running(status)) = self.state() else {
            return;
        };
        let Ok(wanted) = self.shares_at_start() else {
            return;
        };
        let running = match &status.shares {
            Some(shares) if *shares == wanted => return,
            Some(shares) => format!(
                "writes {}, its settings {}",
                settings::list(shares.paths()),
                settings::list(wanted.paths())
            ),
            None => "was started by an older hull and writes the host's whole root".to_owned(),
        };
        eprintln!(
            "hull: warning: the hull machine {running}: `hull machine stop` (the next command \
             starts it as its settings say)"
        );
    }

    /// The host directories the machine writes: those it runs with, or
    /// those it would start with now. None for a machine started by an
    /// older hull, which writes the host's whole root.
    pub fn writable_shares(&self) -> Result<Option<WritableShares>> {
        match self.state()? {
            MachineState::Running(status) => Ok(status.shares),
            MachineState::Stopped(_) | MachineState::Changing => self.shares_at_start().map(Some),
        }
    }

    /// The host directories the machine would write if it started now.
    fn shares_at_start(&self) -> Result<WritableShares> {
        WritableShares::for_machine(&self.root, &Settings::load(&self.layout)?)
    }

    /// A relay session with the running machine.
    pub fn session(&self) -> Result<UnixStream> {
        control::send(&self.layout, Request::Session)
            .context("is it running? `hull machine start` first")
    }

    /// A relay session with the machine, starting it (with `notice`) if it
    /// is down or went down on its idle timeout just now, unless a signal
    /// comes first.
    pub fn session_starting(&self, notice: &str, signals: &Signals) -> Result<Boot> {
        let mut attempt = 1;
        loop {
            if let Some(signal) = self.ensure_up(Some(notice), Some(signals))? {
                return Ok(Boot::Interrupted(signal));
            }
            // A machine that began to stop just now refuses: wait for the next.
            match control::send(&self.layout, Request::Session) {
                Ok(stream) => return Ok(Boot::Ready(stream)),
                Err(err) if attempt >= SESSION_ATTEMPTS => return Err(err),
                Err(_) => attempt += 1,
            }
        }
    }

    /// Brings the host's port forwards in line with the running
    /// containers; returns a line for each forward that failed.
    pub fn sync_ports(&self) -> Result<Vec<String>> {
        let failures = control::answer(&self.layout, Request::SyncPorts)?;
        Ok(failures.lines().map(str::to_owned).collect())
    }

    /// Where it is in its life.
    pub fn state(&self) -> Result<MachineState> {
        if !self.layout.is_up()? {
            return Ok(MachineState::Stopped(Settings::load(&self.layout)?));
        }
        let Ok(answer) = control::answer(&self.layout, Request::Status) else {
            return Ok(MachineState::Changing);
        };
        let status =
            serde_json::from_str(answer.trim()).context("the hull machine's status is garbled")?;
        Ok(MachineState::Running(status))
    }

    /// Stops it if it runs (its containers first) and waits until it is
    /// gone, QEMU with it; whether it ran.
    pub fn stop(&self) -> Result<bool> {
        let layout = &self.layout;
        if !layout.is_up()? {
            return Ok(false);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        // A machine still starting has no control socket yet.
        while control::send(layout, Request::Stop).is_err() && layout.is_up()? {
            if Instant::now() >= deadline {
                bail!(
                    "the hull machine does not answer; see {}",
                    layout.supervisor_log().display()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
        while layout.is_up()? {
            if Instant::now() >= deadline {
                bail!(
                    "the hull machine did not stop within {STOP_TIMEOUT:?}; see {}",
                    layout.supervisor_log().display()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
        Ok(true)
    }

    /// Stops it and forgets its settings and logs (containers, images and
    /// networks stay in the hull root).
    pub fn remove(&self) -> Result<()> {
        self.stop()?;
        match self.layout.presence()? {
            Presence::Down(down) => self.layout.clear(&down),
            Presence::Up => {
                bail!("the hull machine started again meanwhile: `hull machine rm` again")
            }
        }
    }

    /// Changes its size, idle timeout or writable host directories for its
    /// next start; returns the settings now. Refused while it runs.
    pub fn set(&self, changes: Changes) -> Result<Settings> {
        if changes.is_empty() {
            bail!(
                "hull machine set: nothing to change: give --cpus, --memory, --idle-timeout, \
                 --share or --unshare"
            );
        }
        if self.layout.is_up()? {
            bail!("the hull machine is running: `hull machine stop` first (settings apply when it starts)");
        }
        let settings = Settings::load(&self.layout)?.changed(changes)?;
        settings.save(&self.layout)?;
        Ok(settings)
    }
}
