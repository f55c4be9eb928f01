//! The agent's one reaper of children. Every session waits for its own
//! child, and as PID 1 the agent must also reap orphans; a single thread
//! does all the reaping so that no waiter can take another's child.
//!
//! A child is registered in the same critical section as its `fork`, so the
//! reaper, which peeks at a zombie before it looks the pid up, can never
//! take a session's child for an orphan.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

/// How long the reaper rests when the agent has no children at all.
const IDLE_INTERVAL: Duration = Duration::from_millis(50);

/// A registered child: its wait status once reaped.
#[derive(Default)]
pub struct Child {
    status: Mutex<Option<WaitStatus>>,
    ended: Condvar,
}

impl Child {
    /// Runs `act` unless the child has been reaped, holding off the reaper
    /// meanwhile, so that `act` may use the child's pid (say, to signal it)
    /// without hitting a recycled one.
    pub fn while_unreaped<T>(&self, act: impl FnOnce() -> T) -> Option<T> {
        let status = lock(&self.status);
        status.is_none().then(act)
    }

    /// Blocks until the child has ended and been reaped.
    pub fn wait(&self) -> WaitStatus {
        let mut status = lock(&self.status);
        loop {
            if let Some(status) = *status {
                return status;
            }
            status = self
                .ended
                .wait(status)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Children that sessions wait for, by pid.
fn registry() -> &'static Mutex<HashMap<Pid, Arc<Child>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<Pid, Arc<Child>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// Forks with `fork` and registers the child before the reaper can see it.
/// The reaper thread is started after the first fork, which launches the
/// container's init and must happen while the agent has only one thread.
pub fn fork_watched(fork: impl FnOnce() -> anyhow::Result<ForkResult>) -> anyhow::Result<Forked> {
    static REAPER: Once = Once::new();
    let mut children = lock(registry());
    let ForkResult::Parent { child: pid } = fork()? else {
        return Ok(Forked::Child);
    };
    let child = Arc::new(Child::default());
    children.insert(pid, child.clone());
    drop(children);
    REAPER.call_once(|| {
        thread::Builder::new()
            .name("reaper".into())
            .spawn(reap_forever)
            .expect("the agent cannot work without its reaper thread");
    });
    Ok(Forked::Parent { pid, child })
}

/// What [`fork_watched`] returns in each process.
pub enum Forked {
    Child,
    Parent { pid: Pid, child: Arc<Child> },
}

fn reap_forever() {
    loop {
        // Peek first: the pid stays a zombie, and so unused, until reaped
        // below under its owner's lock.
        let peeked = match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(peeked) => peeked,
            Err(Errno::EINTR) => continue,
            Err(_) => {
                // ECHILD: no children right now.
                thread::sleep(IDLE_INTERVAL);
                continue;
            }
        };
        let Some(pid) = peeked.pid() else {
            continue;
        };
        let owner = lock(registry()).remove(&pid);
        match owner {
            Some(child) => {
                let mut status = lock(&child.status);
                *status = Some(reap(pid));
                child.ended.notify_all();
            }
            // An orphan adopted by PID 1.
            None => {
                reap(pid);
            }
        }
    }
}

fn reap(pid: Pid) -> WaitStatus {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            Ok(status) => return status,
            // Cannot happen for a zombie we peeked at; report it as killed.
            Err(_) => return WaitStatus::Signaled(pid, nix::sys::signal::Signal::SIGKILL, false),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
