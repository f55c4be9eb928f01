//! The record of a container, kept from `create` until `rm`.
//!
//! Each lives in `<root>/containers/<id>/`:
//!
//! ```text
//! config.json    what to boot and run (written at creation; rename,
//!                network changes and update rewrite it)
//! state.json     status, monitor pid, times, exit code (replaced atomically)
//! state.lock     flock held by every writer of state.json
//! json.log       the process's stdout and stderr, Docker's json-file format
//! scratch.img    the writable layer, kept until the container is removed
//! monitor.log    the monitor process's own errors
//! ```
//!
//! A container's VM is held by its monitor: a `__monitor` helper process
//! for a container started in the background, or the process that runs it
//! attached (`hull run` in the foreground). The monitor records the state as
//! it changes; one that died without saying so (kill -9) is noticed by
//! whoever reads the state next.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use hull_protocol::{Limits, TerminalSize};
use serde::{Deserialize, Serialize};

use crate::container_log::{LogDriver, LogLimits};
use crate::cpuset::CpuList;
use crate::detach_keys::DetachKeys;
use crate::error::Error;
use crate::fsutil::{lock_file, try_lock_file, write_atomically};
use crate::health::{Health, HealthConfig};
use crate::network::{ContainerNetwork, ContainerRecords, PortMapping};
use crate::proc_stat;
use crate::restart_policy::RestartPolicy;
use crate::root::{StateRoot, SHORT_ID_LEN};
use crate::timestamp::now;

/// Exit code recorded for a container whose VM was killed.
pub(crate) const KILLED_EXIT_CODE: i32 = 137;

/// The error recorded for a container whose monitor died unannounced.
const MONITOR_DIED: &str = "the container's VM process died";
/// The lock file of a container's writable layer, in its directory.
const LAYER_LOCK: &str = "layer.lock";
/// How many times removal tries to delete a container's directory.
const REMOVE_ATTEMPTS: usize = 3;

/// Everything needed to boot a container's VM and start its process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootSpec {
    /// The guest kernel (an uncompressed vmlinux).
    pub kernel: PathBuf,
    /// Virtual CPUs.
    pub cpus: u8,
    /// The CPU time the container may use, in billionths of a CPU
    /// (`--cpus 1.5`), when less than its vCPUs.
    #[serde(default)]
    pub nano_cpus: Option<u64>,
    /// The host CPUs its VM runs on (`--cpuset-cpus`), else any.
    #[serde(default)]
    pub cpuset_cpus: Option<CpuList>,
    /// Guest memory.
    pub memory_mib: u64,
    /// The root file system's lower layers.
    pub rootfs: RootfsSource,
    /// The process: its command line, ...
    pub argv: Vec<String>,
    /// ... of which this many words are the entrypoint (the rest the Cmd),
    /// ...
    #[serde(default)]
    pub entrypoint_len: usize,
    /// ... environment (`KEY=VALUE`), ...
    pub env: Vec<String>,
    /// ... working directory ...
    pub cwd: String,
    /// ... and `USER[:GROUP]` (empty: root).
    pub user: String,
    /// The guest's host name.
    pub hostname: String,
    /// The guest's NIS domain name (`--domainname`; empty: none).
    #[serde(default)]
    pub domainname: String,
    /// The process's terminal (`-t`), its size at creation.
    #[serde(default)]
    pub tty: Option<TerminalSize>,
    /// How it is networked.
    #[serde(default)]
    pub network: ContainerNetwork,
    /// What is mounted over its root file system, in order.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Its root file system is read-only (`--read-only`).
    #[serde(default)]
    pub read_only: bool,
    /// The size of its writable layer (`--storage-opt size=`), else
    /// 10 GiB.
    #[serde(default)]
    pub scratch_bytes: Option<u64>,
    /// Limits and privileges of its processes.
    #[serde(default)]
    pub limits: Limits,
}

/// A mount over a container's root file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Where, inside the container: an absolute path.
    pub target: String,
    /// What.
    pub source: MountSource,
    /// Read-only inside the container.
    #[serde(default)]
    pub read_only: bool,
}

/// What a [`Mount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountSource {
    /// A host file or directory (an absolute path).
    Bind {
        /// The host path.
        path: PathBuf,
        /// Made (as a directory) when it is missing, as `-v` does; else a
        /// missing path is an error, as `--mount type=bind` has it.
        #[serde(default)]
        create: bool,
    },
    /// A volume, made on first use.
    Volume {
        /// Its name.
        name: String,
        /// Filled from the image's content at the target while it is
        /// empty (not with `volume-nocopy`, nor a subpath).
        #[serde(default = "yes")]
        copy: bool,
        /// A directory or file in the volume mounted instead of all of it
        /// (`volume-subpath`): relative, without `..`, and there already.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subpath: Option<String>,
    },
    /// A tmpfs in the guest's memory.
    Tmpfs {
        /// Its size limit (default: half the guest's memory).
        size_bytes: Option<u64>,
        /// Its root's mode (default 1777).
        mode: Option<u32>,
    },
}

fn yes() -> bool {
    true
}

/// Where the root file system comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootfsSource {
    /// A host directory, shared read-only.
    Directory(PathBuf),
    /// An image in the store, by ID.
    Image(String),
    /// Layers of the store without an image of their own, by diff_id,
    /// bottom first: a build step's parent (`hull build`).
    Layers(Vec<String>),
}

/// What a container is, as created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// 64 hex digits.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The image as the user named it, or the `--rootfs` directory.
    pub image: String,
    /// RFC 3339.
    pub created: String,
    /// `run --rm`: removed by its monitor once it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// Where its output is logged.
    #[serde(default)]
    pub log_driver: LogDriver,
    /// How much log it keeps.
    #[serde(default)]
    pub log_limits: LogLimits,
    /// When its monitor boots it again.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `run -di`: the process's stdin stays open for `hull attach`.
    #[serde(default)]
    pub interactive: bool,
    /// What detaches `hull attach` (`run --detach-keys`); Docker's default
    /// when `None`.
    #[serde(default)]
    pub detach_keys: Option<DetachKeys>,
    /// Its labels (`--label KEY=VALUE`), over its image's.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The ports its image exposes (`80/tcp`).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// The signal `stop` sends first (default SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<i32>,
    /// How long `stop` waits for the process by default, in seconds
    /// (default 10).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// Its healthcheck: the image's with the `--health-*` flags over it.
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
    /// What its VM boots and runs.
    pub boot: BootSpec,
}

/// Where a container is in its life, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    Created,
    /// Its process runs.
    Running,
    /// Its process ended; its monitor boots it again soon (`--restart`).
    Restarting,
    /// Its process ended (or never started; then `error` says why).
    Exited,
}

impl Status {
    /// `created`, `running`, `restarting`, `exited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// What a container is doing, as its monitor records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Where it is in its life.
    pub status: Status,
    /// The monitor process holding the VM.
    pub pid: Option<u32>,
    /// When that process started, in clock ticks after boot: with the
    /// pid, it tells the monitor from a process that reused its pid.
    #[serde(default)]
    pub monitor_start_time: Option<u64>,
    /// The monitor is a caller's own process running the container
    /// attached (a foreground `hull run`), not a monitor of its own: it is
    /// not killed to end the VM.
    #[serde(default)]
    pub attached: bool,
    /// The VMM process of the running VM.
    #[serde(default)]
    pub vmm_pid: Option<u32>,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// How its process last ended.
    pub exit_code: Option<i32>,
    /// Why the container could not run, or what ended it from outside.
    pub error: Option<String>,
    /// Restarts by its restart policy since it was last started by hand.
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped or killed by the user: no restart policy applies.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Its VM is paused (`pause`): the VMM's process is stopped.
    #[serde(default)]
    pub paused: bool,
    /// The kernel killed one of its processes for want of memory during
    /// its last run.
    #[serde(default)]
    pub oom_killed: bool,
    /// Its health, for a container with a healthcheck once it started.
    #[serde(default)]
    pub health: Option<Health>,
    /// The size of the VM its process runs in, as it booted (its record
    /// may have changed since: `update`).
    #[serde(default)]
    pub vm_size: Option<VmSize>,
}

/// What a VM has for good once it booted: its vCPUs and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSize {
    /// Virtual CPUs.
    pub cpus: u8,
    /// Guest memory.
    pub memory_mib: u64,
}

impl VmSize {
    /// The size of a VM booted from `spec`.
    pub fn of(spec: &BootSpec) -> VmSize {
        VmSize {
            cpus: spec.cpus,
            memory_mib: spec.memory_mib,
        }
    }
}

impl State {
    /// The state of a container just made.
    pub(crate) fn created() -> State {
        State {
            status: Status::Created,
            pid: None,
            monitor_start_time: None,
            attached: false,
            vmm_pid: None,
            paused: false,
            started_at: None,
            finished_at: None,
            exit_code: None,
            error: None,
            restart_count: 0,
            manually_stopped: false,
            oom_killed: false,
            health: None,
            vm_size: None,
        }
    }

    /// A fresh state of a container about to boot, held by this process
    /// as its monitor (`attached`: as a caller running it attached).
    pub(crate) fn claimed(attached: bool) -> State {
        let pid = std::process::id();
        State {
            pid: Some(pid),
            monitor_start_time: proc_stat::start_time(pid),
            attached,
            ..State::created()
        }
    }

    /// This state, running now in the VM of the VMM `vmm_pid`, of
    /// `vm_size`, held by this process.
    pub(crate) fn running(&self, vmm_pid: u32, vm_size: VmSize) -> State {
        let pid = std::process::id();
        State {
            status: Status::Running,
            pid: Some(pid),
            monitor_start_time: proc_stat::start_time(pid),
            vmm_pid: Some(vmm_pid),
            vm_size: Some(vm_size),
            paused: false,
            started_at: Some(now()),
            oom_killed: false,
            ..self.clone()
        }
    }

    /// This state, ended with `exit_code` now and about to restart.
    pub(crate) fn restarting(&self, exit_code: i32) -> State {
        State {
            status: Status::Restarting,
            vm_size: None,
            finished_at: Some(now()),
            exit_code: Some(exit_code),
            restart_count: self.restart_count + 1,
            ..self.clone()
        }
    }

    /// The pid of the monitor while it holds the container (booting it,
    /// running it, or waiting to restart it).
    pub fn monitor_pid(&self) -> Option<u32> {
        self.pid.filter(|_| self.status != Status::Exited)
    }

    /// Whether this run ended with its monitor's death (`kill -9` of the
    /// monitor or of a foreground `hull run`), which then did none of its
    /// cleanup.
    pub(crate) fn monitor_died(&self) -> bool {
        self.status == Status::Exited && self.error.as_deref() == Some(MONITOR_DIED)
    }

    /// This state, ended with `exit_code` now.
    pub(crate) fn exited(&self, exit_code: i32, error: Option<String>) -> State {
        State {
            status: Status::Exited,
            pid: None,
            monitor_start_time: None,
            attached: false,
            vmm_pid: None,
            vm_size: None,
            paused: false,
            finished_at: Some(now()),
            exit_code: Some(exit_code),
            error,
            ..self.clone()
        }
    }
}

/// One container's directory.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    dir: PathBuf,
    pub config: ContainerConfig,
}

impl Container {
    /// Records a new container in state Created. Fails if the name is taken.
    pub fn create(root: &StateRoot, config: ContainerConfig) -> Result<Container> {
        let parent = containers_dir(root);
        fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let _lock = lock_file(&parent.join(".lock"))?;
        if list(root)?.iter().any(|c| c.config.name == config.name) {
            return Err(Error::NameInUse {
                message: format!(
                    "the container name {:?} is already in use: remove that container or \
                     choose another --name",
                    config.name
                ),
                name: config.name,
            }
            .into());
        }
        let dir = parent.join(&config.id);
        fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let container = Container { dir, config };
        let recorded = container
            .write_config()
            .and_then(|()| container.set_state(&State::created()));
        if let Err(err) = recorded {
            // Nothing half-made stays: `list` would read it as corrupt.
            let _ = fs::remove_dir_all(&container.dir);
            return Err(err);
        }
        Ok(container)
    }

    /// Gives the container the name `name`, which must be free.
    pub fn rename(mut self, root: &StateRoot, name: &str) -> Result<()> {
        let _lock = lock_file(&containers_dir(root).join(".lock"))?;
        if list(root)?.iter().any(|c| c.config.name == name) {
            return Err(Error::NameInUse {
                name: name.to_owned(),
                message: format!("the container name {name:?} is already in use"),
            }
            .into());
        }
        self.config = self.reload()?.config;
        self.config.name = name.to_owned();
        self.write_config()
    }

    /// Puts the container on `network` from its next boot on.
    pub fn set_network(&mut self, root: &StateRoot, network: ContainerNetwork) -> Result<()> {
        let _lock = lock_file(&containers_dir(root).join(".lock"))?;
        self.config = self.reload()?.config;
        self.config.boot.network = network;
        self.write_config()
    }

    /// Replaces the config with what `change` makes of the one recorded
    /// now, with no other writer of it in between (every writer of a
    /// container's config holds the containers' lock and starts from the
    /// record: `update`, `rename`, `network connect`).
    pub fn change_config(
        &mut self,
        root: &StateRoot,
        change: impl FnOnce(&ContainerConfig) -> crate::Result<ContainerConfig>,
    ) -> crate::Result<()> {
        let _lock = lock_file(&containers_dir(root).join(".lock"))?;
        let current = Container::open(self.dir.clone())?;
        self.config = change(&current.config)?;
        Ok(self.write_config()?)
    }

    /// The container as recorded now: its config may have changed since
    /// this was read (`update`).
    pub fn reload(&self) -> Result<Container> {
        Container::open(self.dir.clone())
    }

    fn write_config(&self) -> Result<()> {
        write_atomically(
            &self.dir.join("config.json"),
            &serde_json::to_vec_pretty(&self.config)?,
        )
    }

    fn open(dir: PathBuf) -> Result<Container> {
        let path = dir.join("config.json");
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let config = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is corrupt", path.display()))?;
        Ok(Container { dir, config })
    }

    /// Whether the container is still recorded (not removed meanwhile).
    pub fn exists(&self) -> bool {
        self.dir.join("state.json").is_file()
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn short_id(&self) -> &str {
        &self.config.id[..SHORT_ID_LEN]
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("json.log")
    }

    pub fn scratch_path(&self) -> PathBuf {
        self.dir.join("scratch.img")
    }

    pub fn monitor_log_path(&self) -> PathBuf {
        self.dir.join("monitor.log")
    }

    /// The recorded state, corrected if its monitor died unannounced.
    pub fn state(&self) -> Result<State> {
        let state = self.read_state()?;
        if !self.monitor_vanished(&state) {
            return Ok(state);
        }
        // The monitor may have recorded its end and exited between the read
        // and the check: decide again under the lock every writer holds.
        let _lock = self.lock_state()?;
        let state = self.read_state()?;
        if !self.monitor_vanished(&state) {
            return Ok(state);
        }
        let dead = state.exited(KILLED_EXIT_CODE, Some(MONITOR_DIED.into()));
        self.write_state(&dead)?;
        Ok(dead)
    }

    /// The state as recorded, uncorrected: for the hull machine's
    /// supervisor on the host, where the machine's monitor pids mean
    /// nothing.
    pub fn recorded_state(&self) -> Result<State> {
        self.read_state()
    }

    pub fn set_state(&self, state: &State) -> Result<()> {
        let _lock = self.lock_state()?;
        self.write_state(state)
    }

    /// Replaces the state with what `change` makes of it, with no other
    /// writer in between; returns the new state.
    pub fn update_state(&self, change: impl FnOnce(&State) -> State) -> Result<State> {
        let _lock = self.lock_state()?;
        let state = change(&self.read_state()?);
        self.write_state(&state)?;
        Ok(state)
    }

    fn read_state(&self) -> Result<State> {
        let path = self.dir.join("state.json");
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display()))
    }

    fn write_state(&self, state: &State) -> Result<()> {
        write_atomically(
            &self.dir.join("state.json"),
            &serde_json::to_vec_pretty(state)?,
        )
    }

    fn lock_state(&self) -> Result<nix::fcntl::Flock<fs::File>> {
        lock_file(&self.dir.join("state.lock"))
    }

    /// Held while a VM has the container's writable layer (its scratch
    /// disk): by its monitor for each run, and by a VM that serves a
    /// stopped container's files (`files_vm`); waits for it.
    pub(crate) fn lock_layer(&self) -> Result<nix::fcntl::Flock<fs::File>> {
        lock_file(&self.dir.join(LAYER_LOCK))
    }

    /// As [`Container::lock_layer`], but `None` at once if it is held.
    pub(crate) fn try_lock_layer(&self) -> Result<Option<nix::fcntl::Flock<fs::File>>> {
        try_lock_file(&self.dir.join(LAYER_LOCK))
    }

    /// Whether `state` has a monitor but its process is gone.
    fn monitor_vanished(&self, state: &State) -> bool {
        state.monitor_pid().is_some() && !self.is_monitor(state)
    }

    /// Whether the monitor `state` records still runs: the process with its
    /// pid started when the monitor did (it is not a later process that
    /// reused the pid). A state an older hull wrote has no start time: its
    /// monitor is known by its command line.
    pub fn is_monitor(&self, state: &State) -> bool {
        match (state.pid, state.monitor_start_time) {
            (Some(pid), Some(started)) => proc_stat::start_time(pid) == Some(started),
            (Some(pid), None) => fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.windows(2)
                    .any(|pair| pair[0] == b"__monitor" && pair[1] == self.id().as_bytes())
            }),
            (None, _) => false,
        }
    }

    /// Deletes the container's directories (its network is the caller's
    /// business), if they are still there. Its monitor must be gone.
    pub fn remove_files(&self, root: &StateRoot) -> Result<()> {
        let _ = fs::remove_dir_all(root.run_dir_path(self.id()));
        // Another command opening its layer lock meanwhile makes the file
        // again (it then finds the container gone): remove that too.
        let mut attempts = 1;
        loop {
            match fs::remove_dir_all(&self.dir) {
                Err(err)
                    if err.kind() == std::io::ErrorKind::DirectoryNotEmpty
                        && attempts < REMOVE_ATTEMPTS =>
                {
                    attempts += 1
                }
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(err)
                        .with_context(|| format!("cannot remove {}", self.dir.display()))
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Whether container `id` exists (is recorded, or being recorded).
pub(crate) fn exists(root: &StateRoot, id: &str) -> bool {
    containers_dir(root).join(id).exists()
}

fn containers_dir(root: &StateRoot) -> PathBuf {
    root.path().join("containers")
}

/// Every container, oldest first.
pub(crate) fn list(root: &StateRoot) -> Result<Vec<Container>> {
    let dir = containers_dir(root);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut containers = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        // Skip the lock and any container still being created, or removed
        // while it is read.
        if path.is_dir() && path.join("state.json").is_file() {
            match Container::open(path.clone()) {
                Ok(container) => containers.push(container),
                // `rm` deletes its files in no set order.
                Err(_)
                    if !path.join("state.json").is_file()
                        || !path.join("config.json").is_file() => {}
                Err(err) => return Err(err),
            }
        }
    }
    containers.sort_by(|a, b| a.config.created.cmp(&b.config.created));
    Ok(containers)
}

/// The container named `name_or_id`: a name, a full ID or a unique prefix.
pub(crate) fn find(root: &StateRoot, name_or_id: &str) -> Result<Container> {
    let mut by_prefix = Vec::new();
    for container in list(root)? {
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if container.config.name == name || container.id() == name_or_id {
            return Ok(container);
        }
        if !name_or_id.is_empty() && container.id().starts_with(name_or_id) {
            by_prefix.push(container);
        }
    }
    match by_prefix.len() {
        1 => Ok(by_prefix.remove(0)),
        0 => Err(Error::NoSuchContainer(name_or_id.to_owned()).into()),
        _ => Err(Error::AmbiguousId {
            kind: "container",
            prefix: name_or_id.to_owned(),
        }
        .into()),
    }
}

/// The containers of a state root, as the network sees them.
pub(crate) struct Records {
    root: StateRoot,
}

impl Records {
    pub fn new(root: &StateRoot) -> Records {
        Records { root: root.clone() }
    }
}

impl ContainerRecords for Records {
    fn recorded(&self, id: &str) -> bool {
        exists(&self.root, id)
    }

    fn running(&self, id: &str) -> Option<bool> {
        let container = find(&self.root, id).ok()?;
        Some(container.state().is_ok_and(|s| s.status == Status::Running))
    }

    fn on_network(&self, network: &str) -> Result<Vec<String>> {
        Ok(list(&self.root)?
            .into_iter()
            .filter(|c| c.config.boot.network.on(network).is_some())
            .map(|c| c.config.name)
            .collect())
    }

    fn published_ports(&self) -> Result<Vec<PortMapping>> {
        Ok(list(&self.root)?
            .into_iter()
            .flat_map(|c| c.config.boot.network.ports)
            .collect())
    }
}

/// Checks a container name as Docker does: a letter or digit, then
/// letters, digits, '_', '.' and '-'.
pub fn parse_container_name(name: &str) -> Result<String, String> {
    // Docker names containers `/web` inside, and takes that form too.
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !chars.as_str().is_empty()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    match valid {
        true => Ok(name.to_owned()),
        false => Err(format!(
            "invalid container name ({name}): only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )),
    }
}

/// A Docker-style name for a container the user did not name.
pub(crate) fn generated_name(id: &str) -> String {
    const ADJECTIVES: [&str; 16] = [
        "amber", "brave", "calm", "deft", "eager", "fond", "grand", "hardy", "keen", "lucid",
        "merry", "noble", "proud", "quiet", "swift", "vivid",
    ];
    const NOUNS: [&str; 16] = [
        "otter", "falcon", "maple", "comet", "harbor", "lynx", "quartz", "willow", "badger",
        "cedar", "heron", "nova", "pebble", "raven", "tundra", "zephyr",
    ];
    let byte = |i: usize| usize::from_str_radix(&id[i..i + 2], 16).unwrap_or(0);
    format!(
        "{}_{}_{}",
        ADJECTIVES[byte(0) % 16],
        NOUNS[byte(2) % 16],
        &id[4..8]
    )
}

/// A container's config as `create` would record it, for tests.
#[cfg(test)]
pub(crate) fn test_config(id: &str, name: &str) -> ContainerConfig {
    ContainerConfig {
        id: id.into(),
        name: name.into(),
        image: "busybox".into(),
        created: now(),
        auto_remove: false,
        log_driver: LogDriver::default(),
        log_limits: LogLimits::default(),
        restart: RestartPolicy::No,
        interactive: false,
        detach_keys: None,
        labels: BTreeMap::new(),
        exposed_ports: Vec::new(),
        stop_signal: None,
        stop_timeout: None,
        healthcheck: None,
        boot: BootSpec {
            kernel: "/vmlinux".into(),
            cpus: 1,
            nano_cpus: None,
            cpuset_cpus: None,
            memory_mib: 256,
            rootfs: RootfsSource::Directory("/rootfs".into()),
            argv: vec!["true".into()],
            entrypoint_len: 0,
            env: Vec::new(),
            cwd: "/".into(),
            user: String::new(),
            hostname: "h".into(),
            domainname: String::new(),
            tty: None,
            network: ContainerNetwork::default(),
            mounts: Vec::new(),
            read_only: false,
            scratch_bytes: None,
            limits: Limits::default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_dockers_rule() {
        for good in ["web", "db1", "a.b_c-d", "9lives"] {
            assert_eq!(parse_container_name(good).as_deref(), Ok(good));
        }
        assert_eq!(parse_container_name("/web").as_deref(), Ok("web"));
        for bad in [
            "",
            "a",
            "-web",
            "bad name!",
            "y/z",
            "_x",
            "naïve",
            "//web",
            "/",
        ] {
            let err = parse_container_name(bad).unwrap_err();
            assert!(
                err.contains("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                "{err}"
            );
        }
    }

    #[test]
    fn containers_are_found_by_name_id_or_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().to_owned());
        let a = format!("ab{}", "1".repeat(62));
        let b = format!("ac{}", "2".repeat(62));
        Container::create(&root, test_config(&a, "web")).unwrap();
        Container::create(&root, test_config(&b, "db")).unwrap();
        assert!(dir
            .path()
            .join("containers")
            .join(&a)
            .join("config.json")
            .is_file());
        assert_eq!(find(&root, "web").unwrap().id(), a);
        assert_eq!(find(&root, &b).unwrap().config.name, "db");
        assert_eq!(find(&root, "ac").unwrap().id(), b);
        assert!(find(&root, "a")
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
        assert!(find(&root, "nope")
            .unwrap_err()
            .to_string()
            .contains("no such container"));
        let taken = Container::create(&root, test_config(&"3".repeat(64), "web")).unwrap_err();
        assert!(taken.to_string().contains("already in use"), "{taken}");
    }

    #[test]
    fn a_running_state_without_its_monitor_reads_as_killed() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().to_owned());
        let container = Container::create(&root, test_config(&"4".repeat(64), "gone")).unwrap();
        assert_eq!(container.state().unwrap().status, Status::Created);
        // This process runs and holds it...
        let size = VmSize {
            cpus: 1,
            memory_mib: 256,
        };
        let running = State::claimed(false).running(1, size);
        container.set_state(&running).unwrap();
        assert_eq!(container.state().unwrap().status, Status::Running);
        // ... but a process under our pid that started at another time is
        // no monitor of it: the monitor died and its pid was reused.
        let running = State {
            monitor_start_time: running.monitor_start_time.map(|t| t + 1),
            ..running
        };
        for held in [running.clone(), running.restarting(3)] {
            container.set_state(&held).unwrap();
            let state = container.state().unwrap();
            assert_eq!(
                (state.status, state.exit_code),
                (Status::Exited, Some(KILLED_EXIT_CODE))
            );
            assert!(state.monitor_died());
        }
        container.remove_files(&root).unwrap();
        assert!(list(&root).unwrap().is_empty());
    }

    #[test]
    fn generated_names_are_stable_per_id() {
        let id = "0f1e2d3c".repeat(8);
        assert_eq!(generated_name(&id), generated_name(&id));
        assert!(generated_name(&id).ends_with("_2d3c"));
    }
}
