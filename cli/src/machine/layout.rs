//! Where the hull machine keeps its files (`<root>/machine/`), and whether
//! it is up.
//!
//! The machine's supervisor holds `lock` exclusively for as long as it lives.
//! A command that works on the root itself takes the same lock shared while
//! the machine is down, so no machine starts under it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::state::StateRoot;

pub struct Layout {
    dir: PathBuf,
}

/// Whether the machine is up, found by its supervisor's lock.
pub enum Presence {
    /// Up or starting: its supervisor holds the lock.
    Up,
    /// Down; no machine starts while the guard is held.
    Down(Flock<File>),
}

impl Layout {
    pub fn new(root: &StateRoot) -> Layout {
        Layout {
            dir: root.path().join("machine"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Held by the supervisor for its whole life.
    fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// Held by whoever starts the machine, so two CLIs start one machine.
    pub fn start_lock(&self) -> PathBuf {
        self.dir.join("start.lock")
    }

    /// The supervisor's control socket (see `control`).
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// QEMU's monitor (QMP), for port forwards.
    pub fn qmp_socket(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }

    /// The secret the machine's relay asks of every connection.
    pub fn token(&self) -> PathBuf {
        self.dir.join("token")
    }

    pub fn settings(&self) -> PathBuf {
        self.dir.join("settings.json")
    }

    /// The supervisor's own log (its stdout and stderr).
    pub fn supervisor_log(&self) -> PathBuf {
        self.dir.join("machine.log")
    }

    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    pub fn qemu_log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }

    fn open_lock(&self) -> Result<File> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.lock();
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    /// Whether the machine is up, without waiting.
    pub fn presence(&self) -> Result<Presence> {
        match Flock::lock(self.open_lock()?, FlockArg::LockSharedNonblock) {
            Ok(guard) => Ok(Presence::Down(guard)),
            Err((_, Errno::EWOULDBLOCK)) => Ok(Presence::Up),
            Err((_, errno)) => {
                Err(errno).with_context(|| format!("cannot lock {}", self.lock().display()))
            }
        }
    }

    pub fn is_up(&self) -> Result<bool> {
        Ok(matches!(self.presence()?, Presence::Up))
    }

    /// The supervisor's claim on the machine, waiting for commands that run
    /// on the root without it to finish.
    pub fn hold_up(&self) -> Result<Flock<File>> {
        Flock::lock(self.open_lock()?, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("cannot lock {}", self.lock().display()))
    }
}
