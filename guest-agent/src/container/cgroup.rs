//! The container's cgroup: its init, its process and every exec'd process
//! run in it, so that its CPU time, memory and processes can be reported
//! (`hull stats`, `hull top`).

use std::io;

use anyhow::Context;

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

/// Moves the calling process into the container's cgroup; its children
/// are born there.
pub fn enter() -> io::Result<()> {
    std::fs::write(format!("{CONTAINER}/cgroup.procs"), "0")
}
