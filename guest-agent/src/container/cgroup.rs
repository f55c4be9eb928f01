//! The container's cgroup: its init, its process and every exec'd process
//! run in it, so that its CPU time, memory and processes can be reported
//! (`hull stats`, `hull top`) and limited (`--memory`, `--cpus`, ...).

use std::io;
use std::time::{Duration, Instant};

use anyhow::Context;
use hull_protocol::CgroupLimits;

/// The cgroup v2 hierarchy the agent mounts.
const HIERARCHY: &str = "/sys/fs/cgroup";
/// The container's cgroup.
pub const CONTAINER: &str = "/sys/fs/cgroup/container";

/// Creates the container's cgroup with the cpu, memory and pids
/// controllers.
pub fn create() -> anyhow::Result<()> {
    std::fs::write(
        format!("{HIERARCHY}/cgroup.subtree_control"),
        "+cpu +memory +pids",
    )
    .context("enabling the cpu, memory and pids controllers")?;
    match std::fs::create_dir(CONTAINER) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
            Err(err).with_context(|| format!("creating {CONTAINER}"))
        }
        _ => Ok(()),
    }
}

/// The period of cpu.max, in microseconds (Docker's, for `--cpus`).
const CPU_PERIOD_USEC: u64 = 100_000;

/// Writes `limits` into the container's cgroup: before any of its
/// processes runs in it, or while they run (`hull update`).
pub fn limit(limits: &CgroupLimits) -> anyhow::Result<()> {
    for (file, value) in limit_files(limits) {
        let path = format!("{CONTAINER}/{file}");
        std::fs::write(&path, &value).with_context(|| format!("setting {file} to {value:?}"))?;
    }
    Ok(())
}

/// The files of the container's cgroup that `limits` sets, with what is
/// written to each, as runc writes them for cgroup v2. Zero is no limit for
/// memory, CPU quota and pids, as Docker takes 0 for these flags.
fn limit_files(limits: &CgroupLimits) -> Vec<(&'static str, String)> {
    let or_max = |value: u64| {
        if value == 0 {
            "max".to_owned()
        } else {
            value.to_string()
        }
    };
    let mut files = Vec::new();
    if let Some(max) = limits.memory_max_bytes {
        files.push(("memory.max", or_max(max)));
    }
    if let Some(low) = limits.memory_low_bytes {
        files.push(("memory.low", low.to_string()));
    }
    if let Some(quota) = limits.cpu_quota_usec {
        files.push(("cpu.max", format!("{} {CPU_PERIOD_USEC}", or_max(quota))));
    }
    if let Some(weight) = limits.cpu_weight {
        files.push(("cpu.weight", weight.to_string()));
    }
    if let Some(pids) = limits.pids_max {
        files.push(("pids.max", or_max(pids)));
    }
    files
}

/// How long freezing the container's processes may take.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
const FREEZE_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Freezes (`true`) or thaws every process of the container's cgroup;
/// returns once the kernel reports it done.
pub fn set_frozen(frozen: bool) -> anyhow::Result<()> {
    let wanted = if frozen { "1" } else { "0" };
    std::fs::write(format!("{CONTAINER}/cgroup.freeze"), wanted)
        .with_context(|| format!("writing {wanted} to {CONTAINER}/cgroup.freeze"))?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let events = format!("{CONTAINER}/cgroup.events");
    loop {
        let text = std::fs::read_to_string(&events).with_context(|| format!("reading {events}"))?;
        if text
            .lines()
            .any(|line| line.strip_prefix("frozen ") == Some(wanted))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the container's processes were not {} within {FREEZE_TIMEOUT:?}",
                if frozen { "frozen" } else { "thawed" }
            );
        }
        std::thread::sleep(FREEZE_POLL_INTERVAL);
    }
}

/// Moves the calling process into the container's cgroup; its children
/// are born there.
pub fn enter() -> io::Result<()> {
    std::fs::write(format!("{CONTAINER}/cgroup.procs"), "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limits_write_nothing() {
        assert!(limit_files(&CgroupLimits::default()).is_empty());
    }

    #[test]
    fn limits_become_cgroup_v2_files() {
        let limits = CgroupLimits {
            memory_max_bytes: Some(256 << 20),
            memory_low_bytes: Some(64 << 20),
            cpu_quota_usec: Some(150_000),
            cpu_weight: Some(100),
            pids_max: Some(100),
        };
        assert_eq!(
            limit_files(&limits),
            [
                ("memory.max", "268435456".to_owned()),
                ("memory.low", "67108864".to_owned()),
                ("cpu.max", "150000 100000".to_owned()),
                ("cpu.weight", "100".to_owned()),
                ("pids.max", "100".to_owned()),
            ]
        );
    }

    #[test]
    fn zero_is_unlimited_as_with_docker() {
        let limits = CgroupLimits {
            memory_max_bytes: Some(0),
            cpu_quota_usec: Some(0),
            pids_max: Some(0),
            ..CgroupLimits::default()
        };
        assert_eq!(
            limit_files(&limits),
            [
                ("memory.max", "max".to_owned()),
                ("cpu.max", "max 100000".to_owned()),
                ("pids.max", "max".to_owned()),
            ]
        );
    }
}
