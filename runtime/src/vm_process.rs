//! The VMM child process that holds one container's VM.
//!
//! The runtime re-executes the program it runs in as its `__vmm` helper
//! so that every VM lives in its own process. [`VmProcess`] owns that
//! child: dropping it kills the VMM and removes the VM's runtime directory,
//! so no error path leaves one behind.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hull_vmm::VmConfig;

use crate::child_process;
use crate::cpuset::CpuList;
use crate::helper_command;
use crate::root::RunDir;
use crate::signals::Signals;
use crate::vmm_jail::cgroup::{VmmCgroup, VmmLimits};
use crate::vmm_jail::pid_namespace;
use crate::vmm_log::VmmLog;

/// How often to look at the VMM while waiting for it.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long an exited VMM's last output may take to reach its log.
const LOG_SETTLE: Duration = Duration::from_secs(2);

/// How waiting for a guest's agent ended.
pub enum Boot {
    /// The agent connected.
    Ready(UnixStream),
    /// This terminating signal came first.
    Interrupted(i32),
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

    /// Waits for the guest agent to connect on `listener`, failing early if
    /// the VMM exits first and after `timeout` otherwise; a terminating
    /// signal from `signals` ends the wait.
    pub fn accept_agent(
        &mut self,
        listener: &UnixListener,
        timeout: Duration,
        signals: Option<&Signals>,
    ) -> Result<Boot> {
        listener
            .set_nonblocking(true)
            .context("cannot poll the agent socket")?;
        let deadline = Instant::now() + timeout;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream
                        .set_nonblocking(false)
                        .context("cannot configure the agent stream")?;
                    return Ok(Boot::Ready(stream));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("cannot accept the agent connection"),
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
            if Instant::now() >= deadline {
                bail!(
                    "the guest agent did not connect within {}s: {}",
                    timeout.as_secs(),
                    self.diagnosis()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
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
