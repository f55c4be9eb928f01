//! hull's runtime: containers, each in its own KVM microVM, and the
//! networks they join, kept under a state root without a daemon.
//!
//! [`Runtime`] is the whole action surface: plain option structs in, report
//! structs out, a typed [`Error`]. It prints nothing and never exits the
//! process; front ends (hull's CLI, compose, the image builder, a
//! containerd shim) format what it reports. Sessions with a container's
//! process take readers, writers and channels ([`Stdio`]), not a terminal.
//!
//! A container's VM is held by a monitor: a helper process for a container
//! started in the background, or the caller's own process for one run
//! attached. The helpers are the calling program run again; a program that
//! uses the runtime calls [`helper::dispatch`] first thing in `main`.
//!
//! ```no_run
//! use hull_runtime::{CreateOptions, RootfsChoice, Runtime};
//!
//! # fn main() -> hull_runtime::Result<()> {
//! # if let Some(helper) = hull_runtime::helper::dispatch() { helper?; return Ok(()); }
//! let runtime = Runtime::new("/var/lib/hull");
//! let rootfs = RootfsChoice::Directory("/srv/busybox".into());
//! let mut options = CreateOptions::new(rootfs);
//! options.command = vec!["sleep".into(), "600".into()];
//! let created = runtime.create(options)?;
//! runtime.start(&created.id)?;
//! runtime.stop(&created.id, Default::default())?;
//! runtime.remove(&created.id, Default::default())?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod attach_server;
mod boot;
mod capabilities;
mod changes;
mod container;
mod container_log;
mod cpuset;
mod detach_keys;
mod error;
mod events;
mod files_vm;
mod health;
mod health_checker;
mod helper_command;
mod links;
mod monitor;
mod mounts;
mod network;
mod ops;
mod proc_stat;
mod process_config;
mod removal;
mod restart_policy;
mod root;
mod scratch;
mod timestamp;
mod vm_process;
mod vmm_jail;
mod vmm_log;
mod volume;

pub mod assets;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod helper;
pub mod host;
pub mod limits;
pub mod security;
pub mod session;
pub mod signals;
pub mod units;

// Building blocks hull's own crates share (the hull machine's QEMU and
// relay, the VMM's jail); not part of the runtime's API.
#[doc(hidden)]
pub mod bounding_set;
#[doc(hidden)]
pub mod child_process;
#[doc(hidden)]
pub mod fsutil;
#[doc(hidden)]
pub mod initramfs;

use std::path::{Path, PathBuf};

pub use boot::ConsoleTarget;
pub use capabilities::{capability_set, ALL_CAPABILITIES, DEFAULT_CAPABILITIES};
pub use changes::{Change, ChangeKind};
pub use container::{
    parse_container_name, BootSpec, ContainerConfig, Mount, MountSource, RootfsSource, State,
    Status, VmSize,
};
pub use container_log::{LogDriver, LogEntry, LogLimits};
pub use cpuset::CpuList;
pub use detach_keys::DetachKeys;
pub use error::{Error, Hint, Result};
pub use events::{Actor, Event, EventType, EventsOptions};
pub use health::{Health, HealthConfig, HealthResult, HealthStatus};
pub use hull_protocol::{ContainerStats, ExitStatus, Limits, ProcessInfo, Rlimit, TerminalSize};
pub use links::Link;
pub use mounts::{check_mounts, parse_volumes_from, same_target};
pub use network::{
    parse_dns_option, parse_dns_search, parse_domain_name, parse_host_name, parse_hostname,
    parse_network_name, ContainerNetwork, Endpoint, HostAddress, HostEntry, MacAddress, Network,
    NetworkOptions, NewNetwork, PortMapping, PortRequest, Protocol, Subnet, DEFAULT_NETWORK,
    NO_NETWORK,
};
pub use ops::{
    CommitOptions, ContainerInfo, CopyOptions, CopySource, CopyTarget, CreateOptions,
    CreateVolumeOptions, Created, ExecOptions, Logs, LogsOptions, NetworkInfo, NetworkMember,
    Outcome, PrunedContainers, PrunedVolumes, RemoveOptions, RootfsChoice, StatsSample, Stdio,
    StepOptions, StopOptions, UpdateOptions, VolumeInfo,
};
pub use process_config::{check_workdir, parse_user};
pub use restart_policy::RestartPolicy;
pub use root::{DEFAULT_ROOT, SHORT_ID_LEN};
pub use vm_process::Boot;
pub use volume::{bound_directory, is_anonymous as is_anonymous_volume, parse_volume_name, Volume};

use root::StateRoot;

/// hull's runtime over one state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: StateRoot,
}

impl Runtime {
    /// The runtime over the state root `root`, created private (0710) if
    /// missing, or made private if its owner runs this.
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        let root = StateRoot::new(root.into());
        // Best effort: a root this user cannot create or change fails later,
        // with the operation that needed it.
        let _ = root.make_private();
        Runtime { root }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}
