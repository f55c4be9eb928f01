//! Watches a test host's command: past its deadline, or once the test host
//! has stopped beating, QEMU is killed, which closes the relay and ends the
//! session with an error.
//!
//! QEMU's TCG with nested SVM now and then freezes the whole test host (its
//! emulated CPU stops: nothing on the console, the guest's own watchdogs
//! silent, the session waiting on the relay for good; seen about once in
//! ten CI runs). `/init` writes a heartbeat to a serial port of its own every
//! few seconds; when that file stops growing for [`STALL_LIMIT`], the test
//! host is frozen rather than busy, and the failure says so within minutes
//! instead of at the command's deadline.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a live test host may go without a heartbeat
/// (`HULL_TESTHOST_STALL_LIMIT`, seconds, overrides it): `/init` beats every
/// 5 s, and a guest that triple-faults can hold it for ~100 s.
pub const STALL_LIMIT: Duration = Duration::from_secs(240);
/// How often the heartbeat file is looked at (more often for a shorter
/// stall limit).
const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Why the watchdog killed QEMU, if it did.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Called off in time: QEMU was left alone.
    InTime,
    /// The command ran past its deadline.
    PastDeadline,
    /// The heartbeat stopped for [`STALL_LIMIT`].
    Stalled,
}

/// Kills the process `pid` unless called off within its deadline and while
/// its heartbeat goes on.
pub struct Watchdog {
    call_off: Sender<()>,
    thread: JoinHandle<Verdict>,
}

impl Watchdog {
    /// Starts watching QEMU's `pid` for `deadline`, and the `heartbeat`
    /// file it writes the guest's beats to for a pause of `stall_limit`.
    /// The caller keeps QEMU unreaped until [`Watchdog::call_off`] returns,
    /// so the pid is still QEMU's when it is killed.
    pub fn start(
        pid: u32,
        deadline: Duration,
        heartbeat: PathBuf,
        stall_limit: Duration,
    ) -> Watchdog {
        let (call_off, called_off) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let verdict = watch(&called_off, deadline, &heartbeat, stall_limit);
            if verdict != Verdict::InTime {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            verdict
        });
        Watchdog { call_off, thread }
    }

    /// Stops watching; whether QEMU was killed, and why.
    pub fn call_off(self) -> Verdict {
        let _ = self.call_off.send(());
        self.thread.join().unwrap_or(Verdict::InTime)
    }
}

fn watch(
    called_off: &mpsc::Receiver<()>,
    deadline: Duration,
    heartbeat: &Path,
    stall_limit: Duration,
) -> Verdict {
    let started = Instant::now();
    let beats = || fs::metadata(heartbeat).map(|meta| meta.len()).unwrap_or(0);
    let mut last_beats = beats();
    let mut last_beat = Instant::now();
    let interval = CHECK_INTERVAL.min(stall_limit / 4);
    loop {
        let Some(left) = deadline.checked_sub(started.elapsed()) else {
            return Verdict::PastDeadline;
        };
        match called_off.recv_timeout(left.min(interval)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Verdict::InTime,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now_beats = beats();
        if now_beats != last_beats {
            last_beats = now_beats;
            last_beat = Instant::now();
        } else if last_beat.elapsed() >= stall_limit {
            return Verdict::Stalled;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    fn sleeper() -> Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    #[test]
    fn a_process_past_its_deadline_is_killed_one_within_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let beating = dir.path().join("beats");
        let mut slow = sleeper();
        let watchdog = Watchdog::start(
            slow.id(),
            Duration::from_millis(100),
            beating.clone(),
            Duration::from_secs(60),
        );
        let status = slow.wait().unwrap();
        assert_eq!(watchdog.call_off(), Verdict::PastDeadline);
        assert!(!status.success());

        let mut quick = sleeper();
        let watchdog = Watchdog::start(
            quick.id(),
            Duration::from_secs(60),
            beating,
            Duration::from_secs(60),
        );
        assert_eq!(watchdog.call_off(), Verdict::InTime);
        assert!(quick.try_wait().unwrap().is_none());
        quick.kill().unwrap();
        quick.wait().unwrap();
    }

    #[test]
    fn a_test_host_whose_heartbeat_stops_is_killed_one_beating_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let heartbeat = dir.path().join("beats");
        let mut frozen = sleeper();
        let watchdog = Watchdog::start(
            frozen.id(),
            Duration::from_secs(60),
            heartbeat.clone(),
            Duration::from_secs(1),
        );
        let status = frozen.wait().unwrap();
        assert_eq!(watchdog.call_off(), Verdict::Stalled);
        assert!(!status.success());

        let mut alive = sleeper();
        let watchdog = Watchdog::start(
            alive.id(),
            Duration::from_secs(60),
            heartbeat.clone(),
            Duration::from_secs(1),
        );
        for beat in 1..=12 {
            fs::write(&heartbeat, ".".repeat(beat)).unwrap();
            thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(watchdog.call_off(), Verdict::InTime);
        assert!(alive.try_wait().unwrap().is_none());
        alive.kill().unwrap();
        alive.wait().unwrap();
    }
}
