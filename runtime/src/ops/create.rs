//! `create`: a container recorded from its image (or a directory) and the
//! caller's options, in state Created, with its network address leased.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use hull_image::Store;
use hull_protocol::TerminalSize;

use crate::assets;
use crate::boot;
use crate::capabilities::DEFAULT_CAPABILITIES;
use crate::container::{
    self, parse_container_name, BootSpec, Container, ContainerConfig, Mount, Records, RootfsSource,
};
use crate::container_log::{LogDriver, LogLimits};
use crate::cpuset::CpuList;
use crate::detach_keys::DetachKeys;
use crate::error::{Error, Result};
use crate::events;
use crate::health::HealthConfig;
use crate::limits::check_writable_layer_size;
use crate::links::{self, Link};
use crate::mounts;
use crate::network::{self, parse_domain_name, parse_hostname, ContainerNetwork, NetworkOptions};
use crate::process_config::{process_config, with_default_term, ImageDefaults, ProcessFlags};
use crate::restart_policy::RestartPolicy;
use crate::root::{new_id, SHORT_ID_LEN};
use crate::timestamp::now;
use crate::volume::VolumeStore;
use crate::Runtime;
use hull_protocol::Limits;

/// What a container's root file system is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsChoice {
    /// An image in the store (pull it first: the runtime does not).
    Image {
        /// The image as the user named it, which the container shows.
        name: String,
        /// The store's ID (or any name the store resolves).
        id: String,
    },
    /// A host directory, shared read-only; the container writes to its own
    /// layer above it.
    Directory(PathBuf),
}

impl RootfsChoice {
    /// The directory `dir`, made absolute; an error if it is none.
    pub fn directory(dir: &Path) -> Result<RootfsChoice> {
        rootfs_dir(dir).map(RootfsChoice::Directory)
    }
}

/// What `create` makes: Docker's `create` flags.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Its name (default: a generated one).
    pub name: Option<String>,
    /// Its root file system.
    pub rootfs: RootfsChoice,
    /// The command, replacing the image's Cmd (empty: the image's).
    pub command: Vec<String>,
    /// Replaces the image's Entrypoint and drops its Cmd; `""` for none.
    pub entrypoint: Option<String>,
    /// `KEY=VALUE`, or `KEY` to copy the variable from this process.
    pub env: Vec<String>,
    /// The working directory (default: the image's, or `/`).
    pub workdir: Option<String>,
    /// `USER[:GROUP]`, names or numeric ids (default: the image's, or root).
    pub user: Option<String>,
    /// The host name (default: the short container ID).
    pub hostname: Option<String>,
    /// The NIS domain name (`--domainname`; default: none).
    pub domainname: Option<String>,
    /// Virtual CPUs.
    pub cpus: u8,
    /// The CPU time it may use, in billionths of a CPU, when less than its
    /// vCPUs (`--cpus 1.5` on 2 vCPUs).
    pub nano_cpus: Option<u64>,
    /// The host CPUs its VM may run on (`--cpuset-cpus`), else any.
    pub cpuset_cpus: Option<CpuList>,
    /// Guest memory.
    pub memory_mib: u64,
    /// Another guest kernel (default: `HULL_KERNEL`, else hull's build).
    pub kernel: Option<PathBuf>,
    /// A terminal for the process, of this size.
    pub tty: Option<TerminalSize>,
    /// Keep the process's stdin open for attach clients.
    pub interactive: bool,
    /// Its network.
    pub network: NetworkOptions,
    /// Legacy links (`--link`): containers it knows by an alias in its
    /// `/etc/hosts`.
    pub links: Vec<Link>,
    /// Remove it once its process has ended.
    pub auto_remove: bool,
    /// When its monitor boots it again (containers started in the
    /// background only).
    pub restart: RestartPolicy,
    /// Where its output is logged.
    pub log_driver: LogDriver,
    /// How much log it keeps.
    pub log_limits: LogLimits,
    /// Ports it exposes besides its image's (`--expose`): `80`,
    /// `8000-8010/tcp`, `53/udp`, as [`hull_image::exposed_ports`] reads
    /// them.
    pub expose: Vec<String>,
    /// What detaches an attach session from it.
    pub detach_keys: Option<DetachKeys>,
    /// Its labels, over those of its image.
    pub labels: BTreeMap<String, String>,
    /// The signal `stop` sends first (default SIGTERM).
    pub stop_signal: Option<i32>,
    /// How long `stop` waits by default, in seconds (default 10).
    pub stop_timeout: Option<u64>,
    /// What to mount over its root file system, in order: host paths,
    /// volumes (an empty name: a new anonymous one), tmpfs.
    pub mounts: Vec<Mount>,
    /// Containers whose mounts it takes over (`--volumes-from NAME[:ro]`):
    /// the name, and whether read-only.
    pub volumes_from: Vec<(String, bool)>,
    /// Its root file system read-only (`--read-only`).
    pub read_only: bool,
    /// The most its writable layer may hold (`--storage-opt size=`),
    /// at least 16 MiB (default: 10 GiB).
    pub scratch_bytes: Option<u64>,
    /// Limits and privileges of its processes (Docker's default
    /// capabilities unless `limits.capabilities` says otherwise: see
    /// [`crate::DEFAULT_CAPABILITIES`]).
    pub limits: Limits,
    /// Changes to the image's healthcheck (`--health-*`; a test of
    /// `["NONE"]` turns it off), or `None` for the image's.
    pub healthcheck: Option<HealthConfig>,
}

impl CreateOptions {
    /// A container of `rootfs` with Docker's defaults (and 1 CPU, 512 MiB).
    pub fn new(rootfs: RootfsChoice) -> CreateOptions {
        CreateOptions {
            name: None,
            rootfs,
            command: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            domainname: None,
            cpus: 1,
            nano_cpus: None,
            cpuset_cpus: None,
            memory_mib: 512,
            kernel: None,
            tty: None,
            interactive: false,
            network: NetworkOptions::default(),
            links: Vec::new(),
            auto_remove: false,
            restart: RestartPolicy::No,
            log_driver: LogDriver::default(),
            log_limits: LogLimits::default(),
            expose: Vec::new(),
            detach_keys: None,
            labels: BTreeMap::new(),
            stop_signal: None,
            stop_timeout: None,
            mounts: Vec::new(),
            volumes_from: Vec::new(),
            read_only: false,
            scratch_bytes: None,
            healthcheck: None,
            limits: Limits {
                capabilities: Some(DEFAULT_CAPABILITIES.map(String::from).to_vec()),
                ..Limits::default()
            },
        }
    }
}

/// A container made by [`Runtime::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// Its ID, 64 hex digits.
    pub id: String,
    /// Its name.
    pub name: String,
}

impl Runtime {
    /// Records a container as `options` describe it, with its address
    /// leased and its published host ports checked and fixed; it does not
    /// run yet.
    pub fn create(&self, options: CreateOptions) -> Result<Created> {
        let root = &self.root;
        options.restart.check_auto_remove(options.auto_remove)?;
        if let Some(healthcheck) = &options.healthcheck {
            healthcheck.check().map_err(Error::invalid)?;
        }
        if let Some(cpus) = &options.cpuset_cpus {
            cpus.check_available().map_err(Error::invalid)?;
        }
        if let Some(bytes) = options.scratch_bytes {
            check_writable_layer_size(bytes).map_err(Error::invalid)?;
        }
        let domainname = match options.domainname.as_deref() {
            Some(name) => parse_domain_name(name).map_err(Error::invalid)?,
            None => String::new(),
        };
        let (rootfs, image_name, image) = match &options.rootfs {
            RootfsChoice::Directory(dir) => {
                let dir = rootfs_dir(dir)?;
                let name = dir.display().to_string();
                (RootfsSource::Directory(dir), name, ImageDefaults::default())
            }
            RootfsChoice::Image { name, id } => {
                let store = Store::open(root.path())?;
                let image = store
                    .find(id)?
                    .ok_or_else(|| Error::NoSuchImage(name.clone()))?;
                let defaults = image
                    .config
                    .config()
                    .as_ref()
                    .map(ImageDefaults::from)
                    .unwrap_or_default();
                let defaults = ImageDefaults {
                    healthcheck: image.docker.healthcheck.clone(),
                    ..defaults
                };
                (
                    RootfsSource::Image(image.id.to_string()),
                    name.clone(),
                    defaults,
                )
            }
        };
        if let Some(hostname) = &options.hostname {
            parse_hostname(hostname).map_err(Error::invalid)?;
        }
        let id = new_id();
        let hostname = options
            .hostname
            .clone()
            .unwrap_or_else(|| id[..SHORT_ID_LEN].to_owned());
        let process = process_config(
            &image,
            &ProcessFlags {
                entrypoint: options.entrypoint.as_deref(),
                command: &options.command,
                env: &options.env,
                workdir: options.workdir.as_deref(),
                user: options.user.as_deref(),
                hostname: &hostname,
            },
        )
        .map_err(|err| Error::invalid(format!("{err:#}")))?;
        let mut env = process.env;
        if options.tty.is_some() {
            with_default_term(&mut env);
        }
        let kernel = assets::guest_kernel(options.kernel.as_deref())?;
        assets::agent_binary()?;

        // An empty name is none, as with Docker.
        let name = match options.name.as_deref().filter(|name| !name.is_empty()) {
            Some(name) => parse_container_name(name).map_err(Error::invalid)?,
            None => container::generated_name(&id),
        };
        let exposed = hull_image::exposed_port_set(options.expose.iter().map(String::as_str))
            .map_err(|reason| Error::invalid(format!("--expose: {reason}")))?;
        let mut exposed_ports = image.exposed_ports.clone();
        let mut seen: HashSet<&String> = image.exposed_ports.iter().collect();
        exposed_ports.extend(exposed.iter().filter(|port| seen.insert(port)).cloned());
        let mut network_options = options.network.clone();
        network_options.add_host.extend(links::host_entries(
            root,
            &options.links,
            &options.network,
        )?);
        let settled = mounts::settle(root, &options.mounts, &options.volumes_from, &image.volumes)?;
        let shares = boot::shares_needed(root, &settled.mounts);
        if let Err(reason) = boot::check_device_room(shares, options.network.interfaces()) {
            forget_volumes(self, &settled.made_volumes);
            return Err(Error::invalid(reason));
        }
        let records = Records::new(root);
        let network = network::create(root, &records, &id, &name, &network_options, &exposed_ports);
        let network = match network {
            Ok(network) => network,
            Err(err) => {
                forget_volumes(self, &settled.made_volumes);
                return Err(err.into());
            }
        };
        let config = ContainerConfig {
            id: id.clone(),
            name: name.clone(),
            image: image_name,
            created: now(),
            auto_remove: options.auto_remove,
            log_driver: options.log_driver,
            log_limits: options.log_limits,
            restart: options.restart,
            interactive: options.interactive,
            detach_keys: options.detach_keys,
            labels: image.labels.into_iter().chain(options.labels).collect(),
            exposed_ports,
            stop_signal: options.stop_signal.or(image.stop_signal),
            stop_timeout: options.stop_timeout,
            healthcheck: HealthConfig::merged(
                image.healthcheck.as_ref(),
                options.healthcheck.as_ref(),
            ),
            boot: BootSpec {
                kernel,
                cpus: options.cpus,
                nano_cpus: options.nano_cpus,
                cpuset_cpus: options.cpuset_cpus,
                memory_mib: options.memory_mib,
                rootfs,
                argv: process.argv,
                entrypoint_len: process.entrypoint_len,
                env,
                cwd: process.cwd,
                user: process.user,
                hostname,
                domainname,
                tty: options.tty,
                network: network.clone(),
                mounts: settled.mounts,
                read_only: options.read_only,
                scratch_bytes: options.scratch_bytes,
                limits: options.limits,
            },
        };
        match Container::create(root, config) {
            Ok(container) => events::container_event(root.path(), &container.config, "create", &[]),
            Err(err) => {
                release(self, &id, &network);
                forget_volumes(self, &settled.made_volumes);
                return Err(err.into());
            }
        }
        Ok(Created { id, name })
    }
}

/// Gives back the address of a container that could not be recorded.
fn release(runtime: &Runtime, id: &str, network: &ContainerNetwork) {
    if let Err(err) = network::release(&runtime.root, id, network) {
        tracing::warn!("{err:#}");
    }
}

/// Removes the anonymous volumes made for a container that was not made.
fn forget_volumes(runtime: &Runtime, names: &[String]) {
    let store = VolumeStore::open(&runtime.root);
    for name in names {
        if let Err(err) = store.remove(name) {
            tracing::warn!("{err:#}");
        }
    }
}

/// The `--rootfs` directory, made absolute.
fn rootfs_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir)
        .ok()
        .filter(|path| path.is_dir())
        .ok_or_else(|| Error::invalid(format!("--rootfs {}: no such directory", dir.display())))
}
