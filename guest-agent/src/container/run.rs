//! The container's process (`hull run`): [`ContainerLauncher`] assembles
//! the container's root file system, cgroup (with its limits) and network,
//! starts the process under a tiny init (see [`super::init`]) as PID 1 of
//! new namespaces, which mounts the rest (see [`super::sandbox`]), and once
//! it runs serves `hull exec` sessions (see [`super::exec`]), whose
//! processes get the container's resource limits and capabilities too.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::Context;
use hull_protocol::{Answer, Query, RunSpec};
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{fork, ForkResult};

use super::init::{launch_under_init, Namespaces, Work};
use super::rootfs::{mount_rootfs, ROOT_DIR, UPPER_DIR};
use super::sandbox::Sandbox;
use super::{cgroup, exec, network, report};
use crate::exec::Command;
use crate::privileges::Privileges;
use crate::process::{Launch, Launcher};
use crate::stdio::ChildStdio;
use crate::workdir;

/// Launches the container's process under a tiny init in new namespaces.
pub struct ContainerLauncher;

impl Launcher for ContainerLauncher {
    fn launch(&self, spec: &RunSpec, stdio: ChildStdio) -> anyhow::Result<Launch> {
        let rootfs = spec
            .rootfs
            .as_ref()
            .context("the run request describes no root file system")?;
        let limits = spec.limits.clone().unwrap_or_default();
        let privileges = Privileges::from_limits(&limits).map_err(anyhow::Error::msg)?;
        mount_rootfs(rootfs).context("assembling the container's root file system")?;
        cgroup::create().context("creating the container's cgroup")?;
        cgroup::limit(&limits.cgroup()).context("limiting the container's cgroup")?;
        if let Some(network) = &spec.network {
            network::configure(network).context("setting up the container's network")?;
        }
        // Held for its files, it runs nothing: its command and user are
        // not checked.
        let work = match spec.hold {
            true => Work::Hold {
                cwd: workdir::clean(Path::new(&spec.cwd)),
            },
            false => match Command::from_spec(spec, Path::new(ROOT_DIR), privileges.clone()) {
                Ok(mut command) => {
                    // As `docker run -w`; `hull exec` processes (see `exec`) do not.
                    command.create_missing_cwd();
                    Work::Command(Box::new(command))
                }
                Err(failure) => return Ok(Launch::Failed(failure)),
            },
        };
        let namespaces = Namespaces::New(Sandbox {
            hostname: spec.hostname.clone(),
            domainname: spec.domainname.clone(),
            etc_files: spec
                .network
                .as_ref()
                .map(|network| network.etc_files.clone())
                .unwrap_or_default(),
            mounts: rootfs.mounts.clone(),
            read_only: rootfs.read_only,
            shm_size_bytes: limits.shm_size_bytes,
            sysctls: limits.sysctls,
        });
        let launch = launch_under_init(work, stdio, namespaces, fork_into_new_pid_namespace)?;
        if let Launch::Running(process) = &launch {
            exec::serve(process.raw_pid(), privileges);
        }
        Ok(launch)
    }

    fn answer(&self, query: Query) -> anyhow::Result<Answer> {
        report::answer(query)
    }

    fn writable_layer(&self) -> Option<std::path::PathBuf> {
        Some(UPPER_DIR.into())
    }

    /// No: the end of the container's session powers the machine off, so
    /// its process cannot outlive it.
    fn allows_detached(&self) -> bool {
        false
    }
}

/// Forks the container's init as PID 1 of a new pid namespace. The init
/// unshares the other namespaces itself, so that the agent stays in the
/// machine's. unshare + fork rather than a raw clone(2) with CLONE_NEWPID:
/// fork keeps glibc's view of the child (its thread id) right.
fn fork_into_new_pid_namespace() -> anyhow::Result<ForkResult> {
    let own_namespace =
        File::open("/proc/self/ns/pid").context("opening the agent's pid namespace")?;
    unshare(CloneFlags::CLONE_NEWPID).context("creating the container's pid namespace")?;
    // SAFETY: the agent is single-threaded while it launches (see
    // `Launcher::launch`), so the child's copy holds no lock.
    let forked = unsafe { fork() };
    if !matches!(forked, Ok(ForkResult::Child)) {
        // The kernel refuses to create threads (EINVAL) while the namespace
        // for new children differs from the caller's own, and the session
        // needs threads: new children of the agent go back to its own.
        setns(own_namespace.as_fd(), CloneFlags::CLONE_NEWPID)
            .context("returning to the agent's pid namespace")?;
    }
    forked.context("forking the container's init")
}
