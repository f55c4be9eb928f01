//! `update`: a container's resource limits and restart policy changed, as
//! Docker's `update` changes them: in its record, for its next boot and its
//! monitor's next decision to restart it, and while it runs, in its VM's
//! cgroup too. What a VM cannot change once booted is refused while it
//! runs: more memory than it booted with, more vCPUs.

use anyhow::{anyhow, Context};
use hull_protocol::{read_message, CgroupLimits, ExitStatus, Message};

use crate::container::{self, Container, ContainerConfig, Status, VmSize};
use crate::error::{Error, Result};
use crate::limits::{cpu_quota_usec, MemorySwap, NANOS_PER_CPU};
use crate::ops::agent;
use crate::restart_policy::RestartPolicy;
use crate::root::StateRoot;
use crate::session;
use crate::Runtime;

/// The most vCPUs a container's VM may have (`--cpus 32`).
const MAX_CPUS: u64 = 32;

/// What `update` changes; `None` leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateOptions {
    /// When its monitor boots it again (`--restart`).
    pub restart: Option<RestartPolicy>,
    /// Guest memory, which is the cgroup's memory.max too (`-m`).
    pub memory_mib: Option<u64>,
    /// cgroup memory.low, in bytes (`--memory-reservation`; 0: none).
    pub memory_reservation_bytes: Option<u64>,
    /// Memory plus swap, checked against the memory (`--memory-swap`).
    pub memory_swap: Option<MemorySwap>,
    /// The CPU time it may use, in billionths of a CPU (`--cpus 1.5`); its
    /// VM gets that many vCPUs, rounded up.
    pub nano_cpus: Option<u64>,
    /// cgroup cpu.weight (`--cpu-shares`, as
    /// [`cpu_weight`](crate::limits::cpu_weight) makes it).
    pub cpu_weight: Option<u64>,
    /// cgroup pids.max (`--pids-limit`; 0: no limit).
    pub pids_limit: Option<u64>,
}

impl UpdateOptions {
    /// Whether it changes nothing, which `update` refuses.
    pub fn is_empty(&self) -> bool {
        *self == UpdateOptions::default()
    }

    /// `config` with these changes, or why they do not fit it.
    fn applied_to(&self, config: &ContainerConfig) -> Result<ContainerConfig> {
        let refused = |reason: String| {
            Error::invalid(format!("cannot update container {}: {reason}", config.name))
        };
        let mut config = config.clone();
        if let Some(policy) = self.restart {
            policy
                .check_auto_remove(config.auto_remove)
                .map_err(|err| refused(err.to_string()))?;
            config.restart = policy;
        }
        let boot = &mut config.boot;
        if let Some(memory_mib) = self.memory_mib {
            boot.memory_mib = memory_mib;
            // The memory is the cgroup's limit from now on, whatever held
            // it below the VM's before (a compose file's mem_limit).
            boot.limits.memory_max_bytes = None;
        }
        if let Some(swap) = self.memory_swap {
            swap.check(boot.memory_mib).map_err(refused)?;
        }
        if let Some(nanos) = self.nano_cpus {
            boot.cpus = vcpus(nanos).ok_or_else(|| {
                refused(format!(
                    "--cpus {}: expected a number of CPUs from 0.01 to {MAX_CPUS}",
                    nanos as f64 / NANOS_PER_CPU as f64
                ))
            })?;
            boot.nano_cpus = Some(nanos);
            boot.limits.cpu_quota_usec = None;
        }
        if let Some(bytes) = self.memory_reservation_bytes {
            boot.limits.memory_low_bytes = (bytes > 0).then_some(bytes);
        }
        if let Some(weight) = self.cpu_weight {
            boot.limits.cpu_weight = Some(weight);
        }
        if let Some(pids) = self.pids_limit {
            boot.limits.pids_max = (pids > 0).then_some(pids);
        }
        Ok(config)
    }

    /// What to write into the cgroup of a running VM of `size` whose
    /// container is now `config` (as [`UpdateOptions::applied_to`] made
    /// it), or why it cannot change while it runs.
    fn live_limits(&self, config: &ContainerConfig, size: VmSize) -> Result<CgroupLimits> {
        let fixed = |what: String| {
            Error::invalid(format!(
                "cannot update running container {}: {what}, fixed while it runs; stop it, \
                 update it, then start it",
                config.name
            ))
        };
        let memory_max_bytes = match self.memory_mib {
            Some(mib) if mib > size.memory_mib => {
                return Err(fixed(format!(
                    "--memory {mib}m is above its VM's {}m",
                    size.memory_mib
                )))
            }
            Some(mib) => Some(mib << 20),
            None => None,
        };
        let cpu_quota_usec = match self.nano_cpus {
            Some(_) if config.boot.cpus > size.cpus => {
                return Err(fixed(format!(
                    "--cpus {} needs {} vCPUs, its VM has {}",
                    config.boot.nano_cpus.unwrap_or_default() as f64 / NANOS_PER_CPU as f64,
                    config.boot.cpus,
                    size.cpus
                )))
            }
            // All of its vCPUs: no quota (0 lifts one).
            Some(nanos) => Some(cpu_quota_usec(nanos, size.cpus).unwrap_or(0)),
            None => None,
        };
        Ok(CgroupLimits {
            memory_max_bytes,
            memory_low_bytes: self.memory_reservation_bytes,
            cpu_quota_usec,
            cpu_weight: self.cpu_weight,
            pids_max: self.pids_limit,
        })
    }
}

/// The vCPUs `nanos` billionths of a CPU need, if a VM may have them.
fn vcpus(nanos: u64) -> Option<u8> {
    let cpus = nanos.div_ceil(NANOS_PER_CPU);
    match (1..=MAX_CPUS).contains(&cpus) {
        true => u8::try_from(cpus).ok(),
        false => None,
    }
}

impl Runtime {
    /// Changes the container `name`'s limits and restart policy as
    /// `options` say: in its record, for its next boot and for its
    /// monitor's decision once its process ends; while it runs, in its
    /// VM's cgroup too, where more memory or vCPUs than its VM booted with
    /// are refused; while it boots, not at all (its monitor has read its
    /// record already). Nothing changes if the host refuses anything; an
    /// agent failing partway leaves the record as it was.
    pub fn update(&self, name: &str, options: &UpdateOptions) -> Result<()> {
        if options.is_empty() {
            return Err(Error::invalid(
                "nothing to update: give --memory, --cpus, --restart or another limit",
            ));
        }
        let mut container = container::find(&self.root, name)?;
        let updated = options.applied_to(&container.config)?;
        let state = container.state()?;
        if state.status == Status::Created && state.monitor_pid().is_some() {
            return Err(Error::invalid(format!(
                "container {} is starting: update it once it runs",
                container.config.name
            )));
        }
        if state.status == Status::Running {
            // Its VM is frozen: its agent would never answer.
            if state.paused {
                return Err(Error::invalid(format!(
                    "container {} is paused: unpause it first (hull unpause {name})",
                    container.config.name
                )));
            }
            // A VM started by an older hull has its record's size.
            let size = state
                .vm_size
                .unwrap_or_else(|| VmSize::of(&container.config.boot));
            let limits = options.live_limits(&updated, size)?;
            set_limits(&self.root, &container, limits)?;
        }
        container.change_config(&self.root, |current| options.applied_to(current))
    }
}

/// Writes `limits` into the cgroup of the running `container`'s VM.
fn set_limits(root: &StateRoot, container: &Container, limits: CgroupLimits) -> Result<()> {
    let (mut reader, writer) = session::greet(agent::connect(root, container)?)?;
    writer.send(&Message::SetLimits(limits))?;
    match read_message(&mut reader).context("cannot read from the guest agent")? {
        Some(Message::Exited(ExitStatus::Code(0))) => Ok(()),
        Some(Message::Failed { reason, .. }) => Err(anyhow!(
            "cannot change the limits of container {} in its VM: {reason}",
            container.config.name
        )
        .into()),
        Some(other) => Err(anyhow!("unexpected message from the guest agent: {other:?}").into()),
        None => Err(anyhow!("the guest agent hung up before changing the limits").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::test_config;

    fn web() -> ContainerConfig {
        test_config(&"5".repeat(64), "web")
    }

    /// The VM `web` boots: 1 vCPU, 256m.
    const BOOTED: VmSize = VmSize {
        cpus: 1,
        memory_mib: 256,
    };

    #[test]
    fn changes_go_into_the_record() {
        let options = UpdateOptions {
            restart: Some(RestartPolicy::UnlessStopped),
            memory_mib: Some(512),
            memory_reservation_bytes: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            cpu_weight: Some(50),
            pids_limit: Some(100),
            ..UpdateOptions::default()
        };
        let mut config = web();
        config.boot.limits.memory_max_bytes = Some(32 << 20);
        let updated = options.applied_to(&config).unwrap();
        assert_eq!(updated.restart, RestartPolicy::UnlessStopped);
        let boot = &updated.boot;
        assert_eq!((boot.memory_mib, boot.limits.memory_max_bytes), (512, None));
        assert_eq!((boot.cpus, boot.nano_cpus), (2, Some(1_500_000_000)));
        assert_eq!(boot.limits.memory_low_bytes, Some(64 << 20));
        assert_eq!(boot.limits.cpu_weight, Some(50));
        assert_eq!(boot.limits.pids_max, Some(100));
        // What was not named stays.
        assert_eq!(boot.argv, config.boot.argv);
        assert_eq!(updated.name, "web");
    }

    #[test]
    fn zero_and_minus_one_lift_limits() {
        let mut config = web();
        config.boot.limits.pids_max = Some(10);
        config.boot.limits.memory_low_bytes = Some(1 << 20);
        let options = UpdateOptions {
            pids_limit: Some(0),
            memory_reservation_bytes: Some(0),
            ..UpdateOptions::default()
        };
        let updated = options.applied_to(&config).unwrap();
        assert_eq!(updated.boot.limits.pids_max, None);
        assert_eq!(updated.boot.limits.memory_low_bytes, None);
        let live = options.live_limits(&updated, BOOTED).unwrap();
        assert_eq!((live.pids_max, live.memory_low_bytes), (Some(0), Some(0)));
    }

    #[test]
    fn bad_changes_are_refused_with_the_container_named() {
        let mut removed_on_exit = web();
        removed_on_exit.auto_remove = true;
        let restart = UpdateOptions {
            restart: Some(RestartPolicy::Always),
            ..UpdateOptions::default()
        };
        let err = restart
            .applied_to(&removed_on_exit)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot update container web: --restart and --rm conflict"));
        let no_restart = UpdateOptions {
            restart: Some(RestartPolicy::No),
            ..UpdateOptions::default()
        };
        assert!(no_restart.applied_to(&removed_on_exit).is_ok());
        // Memory plus swap below the memory: the new one, else the
        // recorded one (256m).
        let swap = |memory_mib, swap| UpdateOptions {
            memory_mib,
            memory_swap: Some(MemorySwap::Bytes(swap)),
            ..UpdateOptions::default()
        };
        assert!(swap(None, 128 << 20).applied_to(&web()).is_err());
        assert!(swap(None, 256 << 20).applied_to(&web()).is_ok());
        assert!(swap(Some(1024), 512 << 20).applied_to(&web()).is_err());
        for nanos in [0, 33 * NANOS_PER_CPU] {
            let cpus = UpdateOptions {
                nano_cpus: Some(nanos),
                ..UpdateOptions::default()
            };
            assert!(cpus.applied_to(&web()).is_err(), "{nanos}");
        }
        assert!(UpdateOptions::default().is_empty());
        assert!(!restart.is_empty());
    }

    #[test]
    fn a_running_vm_changes_within_its_size() {
        let options = UpdateOptions {
            memory_mib: Some(128),
            nano_cpus: Some(500_000_000),
            cpu_weight: Some(200),
            pids_limit: Some(42),
            ..UpdateOptions::default()
        };
        let updated = options.applied_to(&web()).unwrap();
        let live = options.live_limits(&updated, BOOTED).unwrap();
        assert_eq!(
            live,
            CgroupLimits {
                memory_max_bytes: Some(128 << 20),
                memory_low_bytes: None,
                cpu_quota_usec: Some(50_000),
                cpu_weight: Some(200),
                pids_max: Some(42),
            }
        );
        // All of its vCPUs: no quota left.
        let whole = UpdateOptions {
            nano_cpus: Some(NANOS_PER_CPU),
            ..UpdateOptions::default()
        };
        let updated = whole.applied_to(&web()).unwrap();
        assert_eq!(
            whole.live_limits(&updated, BOOTED).unwrap().cpu_quota_usec,
            Some(0)
        );
    }

    #[test]
    fn a_running_vm_keeps_its_memory_and_vcpus() {
        let more = |memory_mib, nano_cpus| UpdateOptions {
            memory_mib,
            nano_cpus,
            ..UpdateOptions::default()
        };
        let memory = more(Some(512), None);
        let updated = memory.applied_to(&web()).unwrap();
        let err = memory
            .live_limits(&updated, BOOTED)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cannot update running container web: --memory 512m is above its VM's 256m, fixed \
             while it runs; stop it, update it, then start it"
        );
        let cpus = more(None, Some(2 * NANOS_PER_CPU));
        let updated = cpus.applied_to(&web()).unwrap();
        let err = cpus.live_limits(&updated, BOOTED).unwrap_err().to_string();
        assert!(
            err.contains("--cpus 2 needs 2 vCPUs, its VM has 1"),
            "{err}"
        );
        // The VM's own size, not the record's, bounds it.
        let bigger = VmSize {
            cpus: 2,
            memory_mib: 1024,
        };
        let both = more(Some(512), Some(2 * NANOS_PER_CPU));
        let updated = both.applied_to(&web()).unwrap();
        assert!(both.live_limits(&updated, bigger).is_ok());
    }
}
