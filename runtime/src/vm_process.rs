//! The VMM child process that holds one container's VM.
//!
//! The runtime re-executes the program it runs in as its `__vmm` helper
//! so that every VM lives in its own process. [`VmProcess`] owns that
//! child: dropping it kills the VMM and removes the VM's runtime directory,
//! so no error path leaves one behind.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hull_vmm::VmConfig;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, MsgFlags};

use crate::child_process;
use crate::cpuset::CpuList;
use crate::helper_command;
use crate::proc_stat;
use crate::root::RunDir;
use crate::signals::Signals;
use crate::vmm_jail::cgroup::{VmmCgroup, VmmLimits};
use crate::vmm_jail::pid_namespace;
use crate::vmm_log::VmmLog;

/// How often to look at the VMM while waiting for it.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long an exited VMM's last output may take to reach its log.
const LOG_SETTLE: Duration = Duration::from_secs(2);

/// How long a boot may go on before it counts as failed, in what the VM
/// does rather than in time: a boot slowed by a loaded host (twenty VMs
/// booting at once under nested emulation take minutes) is not a failed
/// one, a guest that spins or stands still is.
#[derive(Debug, Clone, Copy)]
pub struct BootBudget {
    /// The CPU time the VMM may use before its guest's agent connects.
    pub cpu: Duration,
    /// How long the VMM may use no CPU at all.
    pub stall: Duration,
}

/// How waiting for a guest's agent ended.
pub enum Boot {
    /// The agent connected.
    Ready(UnixStream),
    /// This terminating signal came first.
    Interrupted(i32),
}

/// One look at the agent's non-blocking `listener`: takes the newest
/// connection waiting there as `pending`, and returns it once it has
/// something to read, back in blocking mode.
///
/// The agent has one connection at a time and closes it before it tries
/// again, so the newest is the live one: a guest whose connect timed out
/// (its kernel gives up after a while on a loaded host) left the VMM's
/// connection to `listener` behind, ended or, while its reset is under
/// way, silent. Older ones are dropped, and one that ends before its first
/// byte too.
fn poll_agent(
    listener: &UnixListener,
    pending: &mut Option<UnixStream>,
) -> Result<Option<UnixStream>> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(true)
                    .context("cannot poll the agent connection")?;
                *pending = Some(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e).context("cannot accept the agent connection"),
        }
    }
    let Some(stream) = pending.take() else {
        return Ok(None);
    };
    match recv(stream.as_raw_fd(), &mut [0u8], MsgFlags::MSG_PEEK) {
        Ok(0) | Err(Errno::ECONNRESET) => {
            tracing::debug!("the guest reset its agent connection; awaiting the next")
        }
        Ok(_) => {
            stream
                .set_nonblocking(false)
                .context("cannot configure the agent stream")?;
            return Ok(Some(stream));
        }
        Err(Errno::EAGAIN) => *pending = Some(stream),
        Err(e) => return Err(e).context("cannot read the agent connection"),
    }
    Ok(None)
}

/// Waits up to `timeout` for a connection on `listener` or something to
/// read (or the end) on `pending`, so the agent's greeting is taken as it
/// comes; a signal ends the wait early too.
fn wait_for_agent(listener: &UnixListener, pending: Option<&UnixStream>, timeout: Duration) {
    let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    if let Some(stream) = pending {
        fds.push(PollFd::new(stream.as_fd(), PollFlags::POLLIN));
    }
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    // Interrupted or not, the caller looks at everything again.
    let _ = poll(&mut fds, timeout);
}

/// How often a booting VM's CPU time is read: the budget is counted in
/// seconds, the agent is polled far more often.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// When a VM last used CPU time.
struct Progress {
    used: Duration,
    at: Instant,
    next_look: Instant,
}

impl Progress {
    fn new() -> Progress {
        let now = Instant::now();
        Progress {
            used: Duration::ZERO,
            at: now,
            next_look: now,
        }
    }

    /// Whether the VM's CPU time is due to be read again.
    fn due(&mut self) -> bool {
        let now = Instant::now();
        let due = now >= self.next_look;
        if due {
            self.next_look = now + PROGRESS_INTERVAL;
        }
        due
    }

    /// How long the CPU time used has stood at `used`.
    fn stalled_for(&mut self, used: Duration) -> Duration {
        if used > self.used {
            self.used = used;
            self.at = Instant::now();
        }
        self.at.elapsed()
    }
}

/// One VMM process and its runtime directory.
pub(crate) struct VmProcess {
    child: Child,
    log: VmmLog,
    // Declared after `child` so the VMM is gone before its cgroup and files
    // are removed; held for that.
    _cgroup: Option<VmmCgroup>,
    run_dir: RunDir,
}

impl VmProcess {
    /// Writes `config` into `run_dir` and starts the VMM on it, handing it
    /// `inherited` (descriptors `config` names by number), pinned to the
    /// host CPUs `pinned_to` if given. The VMM's own output goes to
    /// `run_dir/vmm.log`, bounded ([`VmmLog`]); it dies with this process.
    pub fn spawn(
        run_dir: RunDir,
        config: &VmConfig,
        inherited: Vec<OwnedFd>,
        pinned_to: Option<&CpuList>,
    ) -> Result<VmProcess> {
        let config_path = run_dir.path().join("vm.json");
        let json = serde_json::to_vec_pretty(config).context("cannot encode the VM config")?;
        fs::write(&config_path, json)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let (log, log_pipe) = VmmLog::create(&run_dir.path().join("vmm.log"))?;
        let stdout = match config.console {
            hull_vmm::Console::Stdout => Stdio::inherit(),
            _ => Stdio::from(log_pipe.try_clone().context("cannot share the VMM log")?),
        };
        let mut command = helper_command::vmm_command(&config_path)?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(log_pipe);
        // Its own session: a Ctrl-C at the terminal is forwarded to the
        // guest by the session, not delivered to the VMM.
        child_process::tie_to_this_process(&mut command);
        child_process::inherit_fds(&mut command, &inherited);
        if let Some(cpus) = pinned_to {
            cpus.pin_on_exec(&mut command)
                .with_context(|| format!("cannot pin the VMM to CPUs {cpus}"))?;
        }
        // Joined before the helper runs, so the VMM it forks is in it too.
        let cgroup = vmm_cgroup(&run_dir, config);
        if let Some(cgroup) = &cgroup {
            cgroup.join_on_exec(&mut command)?;
        }
        let child = command.spawn().context("cannot start the VMM process")?;
        // The VMM holds them now; the log's pipe ends when the VMM does.
        drop(command);
        drop(inherited);
        Ok(VmProcess {
            child,
            log,
            _cgroup: cgroup,
            run_dir,
        })
    }

    /// The pid of the process that runs the VM: the jailed one the helper
    /// forked once it has started, the helper itself without a jail.
    pub fn pid(&self) -> u32 {
        pid_namespace::read(self.run_dir.path()).unwrap_or_else(|| self.child.id())
    }

    /// Waits for the guest agent to connect on `listener` and speak
    /// ([`poll_agent`]), failing early if the VMM exits first and once the
    /// VM has spent `budget` otherwise; a terminating signal from `signals`
    /// ends the wait.
    pub fn accept_agent(
        &mut self,
        listener: &UnixListener,
        budget: BootBudget,
        signals: Option<&Signals>,
    ) -> Result<Boot> {
        listener
            .set_nonblocking(true)
            .context("cannot poll the agent socket")?;
        let mut progress = Progress::new();
        let mut connection = None;
        loop {
            if let Some(stream) = poll_agent(listener, &mut connection)? {
                return Ok(Boot::Ready(stream));
            }
            if let Some(signal) = signals.and_then(Signals::interruption) {
                return Ok(Boot::Interrupted(signal));
            }
            if let Some(status) = self.child.try_wait().context("cannot check on the VMM")? {
                bail!(
                    "the VM stopped before its agent started ({status}): {}",
                    self.diagnosis()
                );
            }
            // Read when due; unknown while the VMM's record cannot be
            // read: no progress counted, none missed.
            let used = progress.due().then(|| proc_stat::cpu_time(self.pid()));
            if let Some(used) = used.flatten() {
                if used >= budget.cpu {
                    bail!(
                        "the guest agent did not connect after {}s of the VM's CPU time: {}",
                        budget.cpu.as_secs(),
                        self.diagnosis()
                    );
                }
                if progress.stalled_for(used) >= budget.stall {
                    bail!(
                        "the VM has not run for {}s and its guest agent has not connected: {}",
                        budget.stall.as_secs(),
                        self.diagnosis()
                    );
                }
            }
            wait_for_agent(listener, connection.as_ref(), POLL_INTERVAL);
        }
    }

    /// Waits up to `timeout` for the VMM to exit by itself (the guest asked
    /// it to), then kills it with a warning: the container's process has
    /// ended by then, so its exit status stands either way. Removes the
    /// runtime directory.
    pub fn finish(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() >= deadline {
                tracing::warn!(
                    "the VM did not power off within {}s; killed it",
                    timeout.as_secs()
                );
                return; // Drop kills the VMM.
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The most telling line the VMM or guest left behind: a guest kernel
    /// panic first, then the VMM's last words, then the console's.
    fn diagnosis(&mut self) -> String {
        if let Ok(Some(_)) = self.child.try_wait() {
            self.log.settle(LOG_SETTLE);
        }
        let read =
            |name: &str| fs::read_to_string(self.run_dir.path().join(name)).unwrap_or_default();
        let last_line = |text: &str| {
            text.lines()
                .rev()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map(str::to_owned)
        };
        let console = fs::read_to_string(self.run_dir.console_log()).unwrap_or_default();
        if let Some(panic) = console
            .lines()
            .find_map(|line| line.split_once("Kernel panic - "))
        {
            return format!("guest kernel panic: {}", panic.1.trim());
        }
        last_line(&read("vmm.log"))
            .map(|line| format!("VMM: {line}"))
            .or_else(|| last_line(&console).map(|line| format!("guest console: {line}")))
            .unwrap_or_else(|| "no output from the VMM or the guest".into())
    }
}

/// The cgroup of the VMM of `run_dir` (named after it) where cgroup v2 is
/// available; a host that does not let hull make one runs the VMM without,
/// with a warning.
fn vmm_cgroup(run_dir: &RunDir, config: &VmConfig) -> Option<VmmCgroup> {
    let name = run_dir.path().file_name()?.to_str()?;
    let limits = VmmLimits {
        vcpus: config.vcpus,
        memory_mib: config.memory_mib,
    };
    VmmCgroup::create(name, limits).unwrap_or_else(|e| {
        tracing::warn!("the VMM runs without a cgroup of its own: {e:#}");
        None
    })
}

impl Drop for VmProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // The VM's process, not its helper: the helper then ends as
            // the VM's process did, and only once it is gone (and out of
            // the cgroup).
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(self.pid() as i32, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A non-blocking listener for the agent, in a directory of its own
    /// (kept while the test holds it), and its path.
    fn agent_listener() -> (tempfile::TempDir, std::path::PathBuf, UnixListener) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        (dir, path, listener)
    }

    /// Polls until the agent's connection is ready, or fails after a while.
    fn ready(listener: &UnixListener, pending: &mut Option<UnixStream>) -> UnixStream {
        for _ in 0..500 {
            if let Some(stream) = poll_agent(listener, pending).unwrap() {
                return stream;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("no agent connection became ready");
    }

    #[test]
    fn a_connection_reset_before_its_first_byte_is_skipped_for_the_next() {
        let (_dir, path, listener) = agent_listener();
        let mut pending = None;
        assert!(poll_agent(&listener, &mut pending).unwrap().is_none());

        drop(UnixStream::connect(&path).unwrap());
        UnixStream::connect(&path)
            .unwrap()
            .write_all(b"hello")
            .unwrap();

        let mut stream = ready(&listener, &mut pending);
        let mut greeting = [0u8; 5];
        stream.read_exact(&mut greeting).unwrap();
        assert_eq!(&greeting, b"hello");
        // Back in blocking mode for the session.
        let flags = nix::fcntl::fcntl(stream.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    }

    #[test]
    fn a_silent_connection_given_up_for_a_newer_one_is_dropped() {
        let (_dir, path, listener) = agent_listener();
        let mut pending = None;
        let _stale = UnixStream::connect(&path).unwrap();
        assert!(poll_agent(&listener, &mut pending).unwrap().is_none());
        let mut agent = UnixStream::connect(&path).unwrap();
        agent.write_all(b"hi").unwrap();
        let mut stream = ready(&listener, &mut pending);
        let mut greeting = [0u8; 2];
        stream.read_exact(&mut greeting).unwrap();
        assert_eq!(&greeting, b"hi");
    }

    #[test]
    fn waiting_ends_when_the_agent_speaks_not_at_the_timeout() {
        let (_dir, path, listener) = agent_listener();
        let mut agent = UnixStream::connect(&path).unwrap();
        let mut pending = None;
        assert!(poll_agent(&listener, &mut pending).unwrap().is_none());
        agent.write_all(b"hi").unwrap();
        let started = Instant::now();
        wait_for_agent(&listener, pending.as_ref(), Duration::from_secs(60));
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(poll_agent(&listener, &mut pending).unwrap().is_some());
    }

    #[test]
    fn a_silent_connection_stays_pending() {
        let (_dir, path, listener) = agent_listener();
        let mut pending = None;
        let _agent = UnixStream::connect(&path).unwrap();
        for _ in 0..5 {
            assert!(poll_agent(&listener, &mut pending).unwrap().is_none());
        }
        assert!(pending.is_some());
    }
}
