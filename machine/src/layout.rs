//! Where the hull machine keeps its files (`<root>/machine/`), and whether
//! it is up.
//!
//! The machine's supervisor holds `lock` exclusively for as long as it lives:
//! the command that starts it takes the lock and hands it over (so no
//! command sees the machine down while it starts). A command that works on
//! the root itself takes the same lock shared while the machine is down, so
//! no machine starts under it. The directory is the owner's alone: its
//! sockets lead to a machine that writes the hull root and the shared
//! directories as root.

use std::fs::{self, DirBuilder, File};
use std::io::ErrorKind;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fs2::FileExt;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use hull_runtime::signals::Signals;

/// How often a wait for a lock tries again.
const LOCK_RETRY: Duration = Duration::from_millis(100);
/// How long a wait for a lock goes on before it says what it waits for.
const LOCK_PATIENCE: Duration = Duration::from_secs(2);
/// The files that outlive `hull machine rm`: others may hold them.
const LOCK_FILES: [&str; 2] = ["lock", "start.lock"];

pub struct Layout {
    dir: PathBuf,
}

/// A lock waited for, or the terminating signal that ended the wait.
pub enum Locked {
    Held(File),
    Interrupted(i32),
}

/// Whether the machine is up, found by its supervisor's lock.
pub enum Presence {
    /// Up or starting: its supervisor holds the lock.
    Up,
    /// Down; no machine starts while the guard is held.
    Down(Flock<File>),
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            dir: root.join("machine"),
        }
    }

    /// Held by the supervisor for its whole life.
    fn lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILES[0])
    }

    /// Held by whoever starts the machine, so two CLIs start one machine.
    fn start_lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILES[1])
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

    /// The IDs of the containers that ran when the machine last went down.
    pub fn ran_at_stop(&self) -> PathBuf {
        self.dir.join("ran-at-stop.json")
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

    /// Creates the directory, private to its owner, if it is missing.
    fn create_dir(&self) -> Result<()> {
        match DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
        {
            Ok(()) => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot create {}", self.dir.display()))
            }
        }
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", self.dir.display()))
    }

    fn open_lock_file(&self, path: &Path) -> Result<File> {
        self.create_dir()?;
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    /// Whether the machine is up, without waiting.
    pub fn presence(&self) -> Result<Presence> {
        match Flock::lock(
            self.open_lock_file(&self.lock())?,
            FlockArg::LockSharedNonblock,
        ) {
            Ok(guard) => Ok(Presence::Down(guard)),
            Err((_, Errno::EWOULDBLOCK)) => Ok(Presence::Up),
            Err((_, errno)) => {
                Err(errno).with_context(|| format!("cannot lock {}", self.lock().display()))
            }
        }
    }

    /// Whether the machine is up; a root without a machine directory has
    /// none (and gets no directory from the question).
    pub fn is_up(&self) -> Result<bool> {
        if !self.dir.exists() {
            return Ok(false);
        }
        Ok(matches!(self.presence()?, Presence::Up))
    }

    /// The right to start the machine, waited for.
    pub fn hold_start(&self, signals: Option<&Signals>) -> Result<Locked> {
        let file = self.open_lock_file(&self.start_lock())?;
        wait_for_lock(
            file,
            &self.start_lock(),
            "another hull command to start the machine",
            signals,
        )
    }

    /// The machine's lock, for a supervisor about to be started, once the
    /// commands working on the root without the machine are done. Its
    /// holder shares it with the supervisor by passing the file on (see
    /// [`Layout::adopt`]).
    pub fn claim(&self, signals: Option<&Signals>) -> Result<Locked> {
        let file = self.open_lock_file(&self.lock())?;
        wait_for_lock(
            file,
            &self.lock(),
            "other hull commands on this root to finish",
            signals,
        )
    }

    /// The machine's lock as claimed by the command that started this
    /// supervisor and passed to it as `fd`.
    pub fn adopt(&self, fd: RawFd) -> Result<File> {
        // SAFETY: `fd` is the lock file the starting command opened and left
        // open across exec for this process (see `start::spawn_supervisor`);
        // nothing else in this process owns it.
        let file = unsafe { File::from_raw_fd(fd) };
        // The same open file already holds the lock, so this only confirms it.
        file.try_lock_exclusive()
            .with_context(|| format!("fd {fd} does not hold {}", self.lock().display()))?;
        Ok(file)
    }

    /// Removes everything in the directory but its locks, which others may
    /// be waiting on. The machine must be down, as `_down` proves.
    pub fn clear(&self, _down: &Flock<File>) -> Result<()> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", self.dir.display()))
            }
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", self.dir.display()))?;
            if LOCK_FILES.iter().any(|name| entry.file_name() == *name) {
                continue;
            }
            let path = entry.path();
            let removed = match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
            removed.with_context(|| format!("cannot remove {}", path.display()))?;
        }
        Ok(())
    }
}

/// Takes an exclusive flock(2) on `file`, trying until it is free: saying
/// after a while what it waits for, and giving up on a terminating signal.
fn wait_for_lock(
    file: File,
    path: &Path,
    waiting_for: &str,
    signals: Option<&Signals>,
) -> Result<Locked> {
    let started = Instant::now();
    let mut said = false;
    loop {
        match file.try_lock_exclusive() {
            Ok(()) => return Ok(Locked::Held(file)),
            Err(err) if err.kind() == ErrorKind::WouldBlock => {}
            Err(err) => return Err(err).with_context(|| format!("cannot lock {}", path.display())),
        }
        if let Some(signal) = signals.and_then(Signals::interruption) {
            return Ok(Locked::Interrupted(signal));
        }
        if !said && started.elapsed() >= LOCK_PATIENCE {
            eprintln!("hull: waiting for {waiting_for}");
            said = true;
        }
        thread::sleep(LOCK_RETRY);
    }
}
