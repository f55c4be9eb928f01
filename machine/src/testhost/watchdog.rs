//! A deadline on a test host's command: past it, QEMU is killed, which
//! closes the relay and ends the session with an error. A test host whose
//! emulated CPU stops (seen once: QEMU's TCG vCPU thread gone, the guest
//! frozen, the session waiting forever) then fails its test in bounded
//! time, with the console's last lines, instead of holding CI until its
//! own limit.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Kills the process `pid` unless called off within its deadline.
pub struct Watchdog {
    call_off: Sender<()>,
    thread: JoinHandle<bool>,
}

impl Watchdog {
    /// Starts watching QEMU's `pid` for `deadline`. The caller keeps QEMU
    /// unreaped until [`Watchdog::call_off`] returns, so the pid is still
    /// QEMU's if the deadline passes.
    pub fn start(pid: u32, deadline: Duration) -> Watchdog {
        let (call_off, called_off) = mpsc::channel::<()>();
        let thread = thread::spawn(move || match called_off.recv_timeout(deadline) {
            Err(RecvTimeoutError::Timeout) => {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                true
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        });
        Watchdog { call_off, thread }
    }

    /// Stops watching; whether the deadline had passed and QEMU was killed.
    pub fn call_off(self) -> bool {
        let _ = self.call_off.send(());
        self.thread.join().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_past_its_deadline_is_killed_one_within_it_is_not() {
        let mut slow = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let watchdog = Watchdog::start(slow.id(), Duration::from_millis(100));
        let status = slow.wait().unwrap();
        assert!(watchdog.call_off());
        assert!(!status.success());

        let mut quick = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let watchdog = Watchdog::start(quick.id(), Duration::from_secs(60));
        assert!(!watchdog.call_off());
        assert!(quick.try_wait().unwrap().is_none());
        quick.kill().unwrap();
        quick.wait().unwrap();
    }
}
