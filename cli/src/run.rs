//! `hull run` and `hull create`: a container made from an image (pulled
//! first if need be) and the flags, then started in the background (`-d`)
//! or run attached to this terminal.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args};
use hull_image::{Image, ImageRef, ProgressStyle, Store, Stream};
use hull_runtime::limits::{
    check_swappiness, cpu_weight, parse_storage_opt, parse_sysctl, parse_ulimit, CpuFlags,
    CpuShare, MemorySwap,
};
use hull_runtime::signals::{signal_number, Signals};
use hull_runtime::units::{parse_duration, parse_memory_mib, parse_size_bytes};
use hull_runtime::{
    assets, capability_set, parse_container_name, parse_dns_option, parse_dns_search,
    parse_domain_name, parse_host_name, parse_hostname, parse_network_name, parse_user,
    parse_volumes_from, ConsoleTarget, CpuList, CreateOptions, Created, DetachKeys, HealthConfig,
    HostEntry, Limits, Link, LogDriver, MacAddress, Mount, NetworkOptions, RestartPolicy, Rlimit,
    RootfsChoice, Runtime,
};

use crate::cidfile::CidFile;
use crate::container_cmd;
use crate::foreign_flags::{ForeignFlags, KERNEL_MEMORY_WARNING};
use crate::image_cmd;
use crate::machine;
use crate::mount_flags::{parse_mount, parse_tmpfs, parse_volume};
use crate::security_flags::SecurityFlags;
use crate::terminal::{StdioFlags, Terminal};

/// `hull create`'s flags, which `hull run` takes too. As in Docker, `-h`
/// is `--hostname` here, so help is `--help` only.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,

    /// Run a directory as the container's root file system instead of an
    /// image (shared read-only; the container writes to a private overlay).
    /// Everything after the options is then the command.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,

    /// Overwrite the image's entrypoint ("" for none).
    #[arg(long, value_name = "COMMAND")]
    entrypoint: Option<String>,

    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<String>,

    /// Read environment variables from a file: KEY=VALUE lines (KEY alone
    /// copies it from here; # comments); before -e.
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,

    /// Set a label on the container: KEY=VALUE (or KEY).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<String>,

    /// Read labels from a file: KEY=VALUE (or KEY) lines, # comments;
    /// before --label.
    #[arg(long = "label-file", value_name = "FILE")]
    label_files: Vec<PathBuf>,

    /// Write the container's ID to this file, which must not exist yet.
    #[arg(long, value_name = "FILE")]
    cidfile: Option<PathBuf>,

    /// Accepted for Docker compatibility: every container's PID 1 is
    /// hull's agent, which reaps orphans and passes signals on.
    #[arg(long)]
    init: bool,

    /// The signal `hull stop` sends first (default: the image's, else TERM).
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal)]
    stop_signal: Option<i32>,

    /// Seconds `hull stop` waits before tearing the VM down (default 10).
    #[arg(long, value_name = "SECONDS")]
    stop_timeout: Option<u64>,

    /// Working directory inside the container (default: the image's, or /).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,

    /// User to run as: USER[:GROUP], names or numeric ids (default: the
    /// image's, or root).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,

    /// Container host name (default: the short container ID).
    #[arg(short = 'h', long, value_parser = parse_hostname)]
    hostname: Option<String>,

    /// The container's NIS domain name.
    #[arg(long, value_name = "NAME", value_parser = parse_domain_name)]
    domainname: Option<String>,

    /// Pull the image before running: when it is missing, always, or never.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pull: PullPolicy,

    /// The image's platform: linux/amd64, the only one hull runs (checked
    /// by its parser; nothing else to choose).
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = image_cmd::parse_platform)]
    _platform: Option<String>,

    /// Pull without printing progress.
    #[arg(short, long)]
    quiet: bool,

    /// CPUs: the VM gets this many vCPUs, rounded up (1.5: 2), and a
    /// fraction is a CPU quota (default: 1, or one per --cpuset-cpus CPU).
    #[arg(long, value_parser = parse_cpus)]
    cpus: Option<f64>,

    /// The CPU quota's period in microseconds (1000 to 1000000; default
    /// 100000): with --cpu-quota, the CPUs the container may use.
    #[arg(long = "cpu-period", value_name = "MICROSECONDS")]
    cpu_period: Option<u64>,

    /// CPU time per --cpu-period, in microseconds (at least 1000; -1: no
    /// quota): 150000 per 100000 is 1.5 CPUs, as --cpus 1.5.
    #[arg(
        long = "cpu-quota",
        value_name = "MICROSECONDS",
        allow_negative_numbers = true
    )]
    cpu_quota: Option<i64>,

    /// The host CPUs the container's VM may run on: 0-3, 0,2 (its vCPUs
    /// default to one per CPU).
    #[arg(long = "cpuset-cpus", value_name = "CPUS", value_parser = CpuList::parse)]
    cpuset_cpus: Option<CpuList>,

    /// Guest memory, e.g. 256m or 1g.
    #[arg(short = 'm', long = "memory", default_value = "512m", value_parser = parse_memory_mib)]
    memory_mib: u64,

    /// Memory plus swap (-1: unlimited): checked as Docker does, at least
    /// --memory; the VM has no swap, so --memory is the limit.
    #[arg(
        long = "memory-swap",
        value_name = "SIZE",
        allow_negative_numbers = true,
        value_parser = MemorySwap::parse
    )]
    memory_swap: Option<MemorySwap>,

    /// Swap use of the container's memory, 0 to 100 (-1: the kernel's):
    /// checked as Docker does; the VM has no swap.
    #[arg(long = "memory-swappiness", value_name = "N", allow_negative_numbers = true, value_parser = parse_swappiness)]
    memory_swappiness: Option<i64>,

    /// The container's writable layer: size=SIZE, the most it may hold
    /// (default 10g); writes past it fail with ENOSPC.
    #[arg(long = "storage-opt", value_name = "size=SIZE", value_parser = parse_storage_opt)]
    storage_opt: Vec<u64>,

    /// Guest kernel (an uncompressed vmlinux) instead of the one hull built.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,

    #[command(flatten)]
    stdio: StdioFlags,

    #[command(flatten)]
    network: NetworkFlags,

    #[command(flatten)]
    storage: StorageFlags,

    #[command(flatten)]
    limits: LimitFlags,

    #[command(flatten)]
    health: HealthFlags,

    #[command(flatten)]
    security: SecurityFlags,

    #[command(flatten)]
    foreign: ForeignFlags,

    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,

    /// Name the container (default: a generated name).
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,

    /// Boot a -d container again when its process ends: no,
    /// on-failure[:N] (after a non-zero exit, at most N times), always, or
    /// unless-stopped; never after hull stop or hull kill.
    #[arg(long, value_name = "POLICY", default_value = "no")]
    restart: RestartPolicy,

    /// Where the container's output is logged: json-file (the default;
    /// local is taken as json-file), or none (`hull logs` has nothing).
    #[arg(long = "log-driver", value_name = "DRIVER", value_parser = parse_log_driver)]
    log_driver: Option<LogDriver>,

    /// Log limits: max-size=SIZE (default 10m) at which the log rotates,
    /// max-file=N (default 3) files kept; compress=true is accepted (the
    /// rotated files stay uncompressed).
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opts: Vec<String>,

    /// The keys that detach `hull attach` from this container, e.g.
    /// ctrl-x,q (default: ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<DetachKeys>,

    /// The image, then the command to run instead of its default, with its
    /// arguments (with --rootfs: only the command).
    #[arg(
        trailing_var_arg = true,
        required = true,
        value_name = "IMAGE [COMMAND]"
    )]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,

    /// Run the container in the background and print its ID.
    #[arg(short = 'd', long)]
    detach: bool,

    /// Attach only to this stream of the process: stdin, stdout or stderr
    /// (repeat it; default: stdout and stderr, and stdin with -i).
    #[arg(short = 'a', long = "attach", value_name = "STREAM", value_parser = parse_attach_stream, conflicts_with = "detach")]
    attach: Vec<AttachStream>,

    /// Pass the signals hull gets (Ctrl-C, SIGTERM, ...) on to the process.
    /// With false they end hull (with -it, Ctrl-C is a key the process
    /// reads), and the container runs on.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value_t = true, default_missing_value = "true", action = ArgAction::Set)]
    sig_proxy: bool,

    /// Show the guest's serial console on this terminal.
    #[arg(long)]
    console: bool,
}

/// A stream of the process's that `hull run -a` attaches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttachStream {
    Stdin,
    Stdout,
    Stderr,
}

/// `-a`: a stream's name, in any case.
fn parse_attach_stream(value: &str) -> Result<AttachStream, String> {
    match value.to_ascii_lowercase().as_str() {
        "stdin" => Ok(AttachStream::Stdin),
        "stdout" => Ok(AttachStream::Stdout),
        "stderr" => Ok(AttachStream::Stderr),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".to_owned()),
    }
}

impl RunArgs {
    /// Whether the session carries `stream`: stdin with -i (whatever -a
    /// says, as Docker's CLI has it), stdout and stderr unless -a names
    /// others.
    fn attaches(&self, stream: AttachStream) -> bool {
        match stream {
            AttachStream::Stdin => self.create.stdio.interactive,
            _ => self.attach.is_empty() || self.attach.contains(&stream),
        }
    }
}

/// The `hull run` flags that shape the container's network.
#[derive(Args, Debug)]
struct NetworkFlags {
    /// Connect the container to a network: bridge (the default), none
    /// (loopback only), or one made with `hull network create`. Repeat it
    /// for several: the first has the default route and the published
    /// ports.
    #[arg(long, alias = "net", value_name = "NETWORK", value_parser = parse_network_name)]
    network: Vec<String>,

    /// Another name the container has on its network, for the network's
    /// name server to answer.
    #[arg(long = "network-alias", alias = "net-alias", value_name = "NAME", value_parser = parse_host_name)]
    network_alias: Vec<String>,

    /// Publish a container port on the host:
    /// [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp] (no HOST_PORT: one
    /// the kernel picks).
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,

    /// Publish every port the image exposes on ports the kernel picks.
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,

    /// Expose a port or range besides the image's: PORT[-PORT][/PROTOCOL]
    /// (-P publishes it).
    #[arg(long = "expose", value_name = "PORTS", value_parser = parse_expose)]
    expose: Vec<String>,

    /// The container's address on its network (default: the next free).
    #[arg(long, value_name = "IPV4")]
    ip: Option<Ipv4Addr>,

    /// The container's MAC address (default: derived from its address).
    #[arg(long = "mac-address", value_name = "MAC")]
    mac_address: Option<MacAddress>,

    /// A name server for the container (default: the host's).
    #[arg(long, value_name = "IP")]
    dns: Vec<IpAddr>,

    /// A search domain for the container (default: the host's; . for
    /// none).
    #[arg(long = "dns-search", value_name = "DOMAIN", value_parser = parse_dns_search)]
    dns_search: Vec<String>,

    /// A resolver option for the container, e.g. ndots:2 (default: the
    /// host's).
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPTION", value_parser = parse_dns_option)]
    dns_options: Vec<String>,

    /// An extra /etc/hosts line for the container: NAME:IP, or
    /// NAME:host-gateway for this host as the container reaches it.
    #[arg(long = "add-host", value_name = "NAME:IP", value_parser = HostEntry::parse)]
    add_host: Vec<HostEntry>,

    /// A legacy link: the container NAME, on a network this one joins, is
    /// ALIAS (and NAME) in its /etc/hosts.
    #[arg(long = "link", value_name = "NAME[:ALIAS]", value_parser = Link::parse)]
    links: Vec<Link>,
}

impl NetworkFlags {
    fn options(&self) -> NetworkOptions {
        NetworkOptions {
            networks: self.network.clone(),
            network_alias: self.network_alias.clone(),
            publish: self.publish.clone(),
            publish_all: self.publish_all,
            ip: self.ip,
            mac_address: self.mac_address,
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_options.clone(),
            add_host: self.add_host.clone(),
        }
    }
}

/// The `hull run` flags that give the container file systems beyond its
/// root: bind mounts, volumes, tmpfs.
#[derive(Args, Debug)]
struct StorageFlags {
    /// Mount a host directory or file, or a volume:
    /// [SOURCE:]TARGET[:ro|rw|nocopy]. SOURCE an absolute host path (a
    /// bind mount, made if missing) or a volume name (made if missing);
    /// none: a new anonymous volume.
    #[arg(short = 'v', long = "volume", value_name = "[SOURCE:]TARGET[:OPTIONS]", value_parser = parse_volume)]
    volumes: Vec<Mount>,

    /// Mount as Docker's --mount: type=bind|volume|tmpfs,source=,target=
    /// [,readonly][,volume-nocopy][,tmpfs-size=][,tmpfs-mode=]; a bind
    /// source must exist.
    #[arg(long = "mount", value_name = "KEY=VALUE,...", value_parser = parse_mount)]
    mounts: Vec<Mount>,

    /// Mount a tmpfs: PATH[:size=64m,mode=1777,ro,...].
    #[arg(long = "tmpfs", value_name = "PATH[:OPTIONS]", value_parser = parse_tmpfs)]
    tmpfs: Vec<Mount>,

    /// Mount the volumes and binds of another container:
    /// CONTAINER[:ro|rw].
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro|rw]", value_parser = parse_volumes_from)]
    volumes_from: Vec<(String, bool)>,

    /// Mount the container's root file system read-only (volumes, binds
    /// and tmpfs mounts keep their own mode).
    #[arg(long = "read-only")]
    read_only: bool,
}

impl StorageFlags {
    fn mounts(&self) -> Vec<Mount> {
        let all = [&self.volumes, &self.mounts, &self.tmpfs];
        all.into_iter().flatten().cloned().collect()
    }
}

/// The `hull run` flags that limit the container's processes inside its
/// VM, and give them privileges.
#[derive(Args, Debug)]
struct LimitFlags {
    /// A memory amount the container's processes keep under pressure
    /// (cgroup memory.low).
    #[arg(long = "memory-reservation", value_name = "SIZE", value_parser = parse_size_bytes)]
    memory_reservation: Option<u64>,

    /// A relative CPU weight (default 1024).
    #[arg(short = 'c', long = "cpu-shares", value_name = "SHARES", value_parser = parse_cpu_shares)]
    cpu_shares: Option<u64>,

    /// The most processes the container may have (-1: no limit).
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pids_limit: Option<i64>,

    /// A resource limit: NAME=SOFT[:HARD], e.g. nofile=1024:4096 (-1:
    /// unlimited).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]", value_parser = parse_ulimit)]
    ulimits: Vec<Rlimit>,

    /// Size of /dev/shm (default 64m).
    #[arg(long = "shm-size", value_name = "SIZE", value_parser = parse_size_bytes)]
    shm_size: Option<u64>,

    /// Give the processes a capability beyond Docker's default set (ALL:
    /// every one).
    #[arg(long = "cap-add", value_name = "CAPABILITY")]
    cap_add: Vec<String>,

    /// Take a capability from the processes (ALL: every one).
    #[arg(long = "cap-drop", value_name = "CAPABILITY")]
    cap_drop: Vec<String>,

    /// Every capability, inside the container's own VM (the host stays out
    /// of reach: its kernel is not the container's).
    #[arg(long)]
    privileged: bool,

    /// Set a kernel parameter of the container's VM: KEY=VALUE (any, not
    /// only Docker's namespaced ones: the kernel is the container's own).
    #[arg(long = "sysctl", value_name = "KEY=VALUE", value_parser = parse_sysctl)]
    sysctls: Vec<(String, String)>,

    /// The OOM killer's bias for the container's processes, -1000 (never
    /// killed) to 1000 (killed first).
    #[arg(long = "oom-score-adj", value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-1000..=1000))]
    oom_score_adj: Option<i32>,

    /// Accepted and discarded with Docker's warning: cgroup v2, the
    /// guest's, has no switch to turn the OOM killer off.
    #[arg(long = "oom-kill-disable")]
    oom_kill_disable: bool,

    /// Refused: a container's VM has no host devices.
    #[arg(long = "device", value_name = "DEVICE", hide = true)]
    devices: Vec<String>,

    /// Refused: a container's VM has no host GPUs.
    #[arg(long = "gpus", value_name = "GPUS", hide = true)]
    gpus: Option<String>,
}

impl LimitFlags {
    fn limits(&self) -> Result<Limits> {
        if let Some(device) = self.devices.first() {
            bail!(
                "--device {device}: host devices cannot be passed into a container's VM; \
                 share files with -v instead"
            );
        }
        if let Some(gpus) = &self.gpus {
            bail!("--gpus {gpus}: host GPUs cannot be passed into a container's VM");
        }
        Ok(Limits {
            memory_max_bytes: None,
            memory_low_bytes: self.memory_reservation,
            cpu_quota_usec: None,
            cpu_weight: self.cpu_shares,
            pids_max: self
                .pids_limit
                .filter(|limit| *limit > 0)
                .map(|limit| limit as u64),
            rlimits: self.ulimits.clone(),
            shm_size_bytes: self.shm_size,
            capabilities: capability_set(self.privileged, &self.cap_add, &self.cap_drop)?,
            sysctls: self.sysctls.clone(),
            oom_score_adj: self.oom_score_adj,
            ..Limits::default()
        })
    }
}

/// The `hull run` flags that change the image's healthcheck.
#[derive(Args, Debug)]
struct HealthFlags {
    /// A command the container runs (with /bin/sh -c) to tell it is
    /// healthy: exit 0 healthy, else unhealthy.
    #[arg(long = "health-cmd", value_name = "COMMAND")]
    cmd: Option<String>,
    /// Between checks (default 30s).
    #[arg(long = "health-interval", value_name = "DURATION", value_parser = parse_duration)]
    interval: Option<Duration>,
    /// How long a check may take (default 30s).
    #[arg(long = "health-timeout", value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// How long after the start failed checks do not count (default 0s).
    #[arg(long = "health-start-period", value_name = "DURATION", value_parser = parse_duration)]
    start_period: Option<Duration>,
    /// Between checks in the start period (default 5s).
    #[arg(long = "health-start-interval", value_name = "DURATION", value_parser = parse_duration)]
    start_interval: Option<Duration>,
    /// Failed checks in a row that make it unhealthy (default 3).
    #[arg(long = "health-retries", value_name = "N")]
    retries: Option<u32>,
    /// Turn off the image's healthcheck.
    #[arg(long = "no-healthcheck", conflicts_with = "cmd")]
    none: bool,
}

impl HealthFlags {
    /// The changes to the image's healthcheck, if any.
    fn healthcheck(&self) -> Option<HealthConfig> {
        let test = match (&self.cmd, self.none) {
            (_, true) => vec!["NONE".to_owned()],
            (Some(cmd), false) => vec!["CMD-SHELL".to_owned(), cmd.clone()],
            (None, false) => Vec::new(),
        };
        let config = HealthConfig {
            test,
            interval: self.interval,
            timeout: self.timeout,
            start_period: self.start_period,
            start_interval: self.start_interval,
            retries: self.retries,
        };
        (config != HealthConfig::default()).then_some(config)
    }
}

/// `--cpu-shares`, as the cgroup weight it becomes.
pub fn parse_cpu_shares(value: &str) -> Result<u64, String> {
    let shares = value
        .parse::<u64>()
        .map_err(|_| format!("{value:?} is not a number of shares (default 1024)"))?;
    cpu_weight(shares)
}

/// When `run` (and `compose up`) pull an image.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

impl RunArgs {
    /// [`CreateArgs::prepare_for_machine`], after refusing here what `run`
    /// alone gets wrong.
    pub fn prepare_for_machine(&self, root: &Path) -> Result<Vec<String>> {
        self.check_run_flags()?;
        self.create.prepare_for_machine(root)
    }

    /// A restart policy needs a detached container; the guest's console
    /// needs hull to hold the container, which a signal then ends.
    fn check_run_flags(&self) -> Result<()> {
        if self.create.restart != RestartPolicy::No && !self.detach {
            bail!("--restart applies to containers run with -d");
        }
        if self.console && !self.sig_proxy {
            bail!(
                "--console holds the container in hull, which --sig-proxy=false would leave \
                 to a signal: drop one of them"
            );
        }
        Ok(())
    }

    /// The -i/-t flags; a detached run has neither here.
    pub fn attached_stdio(&self) -> Option<&StdioFlags> {
        (!self.detach).then_some(&self.create.stdio)
    }
}

impl CreateArgs {
    /// Does here what must happen before the command line goes to the hull
    /// machine: checks what it would find wrong only after it started (bad
    /// flags, read-write binds of host paths the machine cannot write, host
    /// ports taken on this host, from where its forwards come; a missing
    /// kernel or rootfs), and finds or pulls the image here, as
    /// `hull pull` does (the machine cannot create an image's device nodes
    /// through its 9p share). Returns the environment the `hull run` there
    /// needs.
    pub fn prepare_for_machine(&self, root: &Path) -> Result<Vec<String>> {
        self.check()?;
        machine::check_binds(root, &self.storage.mounts())?;
        if let Some(cidfile) = &self.cidfile {
            CidFile::check_free(cidfile)?;
            machine::check_outputs(root, std::slice::from_ref(cidfile))?;
        }
        self.network.options().check_here()?;
        assets::guest_kernel(self.kernel.as_deref())?;
        match &self.rootfs {
            Some(dir) => {
                RootfsChoice::directory(dir)?;
                Ok(Vec::new())
            }
            None => {
                let name = self.args.first().context("no image given")?;
                let store = Store::open(root)?;
                let image = image_for_run(&store, root, name, self.pull, self.quiet)?;
                Ok(vec![format!("{RESOLVED_IMAGE_ENV}={}", image.id)])
            }
        }
    }

    /// The container these flags describe, its image pulled first if need
    /// be; `attaches`: it is to run attached to this terminal.
    fn options(&self, runtime: &Runtime, attaches: bool) -> Result<CreateOptions> {
        let tty = self.stdio.terminal(attaches)?;
        self.check()?;
        let cpus = self.cpu_share()?;
        if self.foreign.kernel_memory.is_some() {
            eprintln!("{KERNEL_MEMORY_WARNING}");
        }
        if self.limits.oom_kill_disable {
            eprintln!(
                "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
            );
        }
        let log_limits = self.log_driver().limits(&self.log_opts)?;
        let mut env = read_key_value_files("--env-file", &self.env_files)?;
        env.extend(self.env.iter().cloned());
        let (rootfs, command) = match &self.rootfs {
            Some(dir) => (RootfsChoice::directory(dir)?, &self.args[..]),
            None => {
                let (name, command) = self.args.split_first().context("no image given")?;
                let id = match std::env::var(RESOLVED_IMAGE_ENV) {
                    Ok(id) => id,
                    Err(_) => {
                        let store = Store::open(runtime.root())?;
                        image_for_run(&store, runtime.root(), name, self.pull, self.quiet)?
                            .id
                            .to_string()
                    }
                };
                let rootfs = RootfsChoice::Image {
                    name: name.clone(),
                    id,
                };
                (rootfs, command)
            }
        };
        Ok(CreateOptions {
            name: self.name.clone(),
            command: command.to_vec(),
            entrypoint: self.entrypoint.clone(),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            domainname: self.domainname.clone(),
            cpus: cpus.vcpus,
            nano_cpus: Some(cpus.nano_cpus),
            cpuset_cpus: self.cpuset_cpus.clone(),
            scratch_bytes: self.storage_opt.last().copied(),
            labels: read_key_value_files("--label-file", &self.label_files)?
                .iter()
                .chain(&self.labels)
                .map(|label| label_pair(label))
                .collect(),
            stop_signal: self.stop_signal,
            stop_timeout: self.stop_timeout,
            memory_mib: self.memory_mib,
            kernel: self.kernel.clone(),
            tty,
            interactive: self.stdio.interactive,
            network: self.network.options(),
            links: self.network.links.clone(),
            auto_remove: self.rm,
            restart: self.restart,
            log_driver: self.log_driver(),
            log_limits,
            expose: self.network.expose.clone(),
            detach_keys: self.detach_keys.clone(),
            mounts: self.storage.mounts(),
            volumes_from: self.storage.volumes_from.clone(),
            read_only: self.storage.read_only,
            limits: self.limits()?,
            healthcheck: self.health.healthcheck(),
            ..CreateOptions::new(rootfs)
        })
    }

    /// The vCPUs and CPU time that --cpus, --cpu-quota/--cpu-period and
    /// --cpuset-cpus give the container.
    fn cpu_share(&self) -> Result<CpuShare> {
        let flags = CpuFlags {
            cpus: self.cpus,
            quota: self.cpu_quota,
            period: self.cpu_period,
            cpuset: self.cpuset_cpus.clone(),
        };
        flags.share().map_err(anyhow::Error::msg)
    }

    /// Refuses what these flags get wrong on their own, before the image
    /// is found or pulled (as Docker's daemon checks a container's config
    /// before it looks for the image): `--rm` with a restart policy, log
    /// options, unreadable `--env-file`s and `--label-file`s, limits,
    /// mount targets, the working directory.
    fn check(&self) -> Result<()> {
        self.restart.check_auto_remove(self.rm)?;
        self.log_driver().limits(&self.log_opts)?;
        read_key_value_files("--env-file", &self.env_files)?;
        read_key_value_files("--label-file", &self.label_files)?;
        self.limits()?;
        self.cpu_share()?;
        hull_runtime::check_mounts(&self.storage.mounts())?;
        if let Some(workdir) = &self.workdir {
            hull_runtime::check_workdir(workdir)?;
        }
        Ok(())
    }

    /// Where the container's output is logged.
    fn log_driver(&self) -> LogDriver {
        self.log_driver.unwrap_or_default()
    }

    /// The limits and privileges of the container's processes.
    fn limits(&self) -> Result<Limits> {
        if let Some(swap) = self.memory_swap {
            swap.check(self.memory_mib).map_err(anyhow::Error::msg)?;
        }
        let security = self.security.options()?;
        Ok(Limits {
            additional_groups: self.security.group_add.clone(),
            no_new_privileges: security.no_new_privileges,
            ..self.limits.limits()?
        })
    }
}

/// `--memory-swappiness`: checked as Docker does.
fn parse_swappiness(value: &str) -> Result<i64, String> {
    let swappiness = value
        .parse::<i64>()
        .map_err(|_| format!("{value:?} is not a swappiness from 0 to 100 (or -1)"))?;
    check_swappiness(swappiness).map(|()| swappiness)
}

/// `--log-driver`.
fn parse_log_driver(value: &str) -> Result<LogDriver, String> {
    LogDriver::parse(value).map_err(|err| err.to_string())
}

/// `--expose`: a spec naming ports.
fn parse_expose(value: &str) -> Result<String, String> {
    hull_image::check_port_spec(value).map(|()| value.to_owned())
}

/// `--cpus`: more than none, at most 32.
pub fn parse_cpus(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(cpus) if (0.01..=32.0).contains(&cpus) => Ok(cpus),
        _ => Err(format!("{value:?} is not a number of CPUs from 0.01 to 32")),
    }
}

/// A signal by name or number, as `--stop-signal` and `kill -s` take it.
pub fn parse_signal(value: &str) -> Result<i32, String> {
    signal_number(value).ok_or_else(|| format!("{value} is not a signal (TERM, SIGUSR1, 15, ...)"))
}

/// A `-e`/`--build-arg` value, `KEY=VALUE` or `KEY`: Docker refuses one
/// without a name.
pub fn parse_env(value: &str) -> Result<String, String> {
    match value
        .split_once('=')
        .map_or(value, |(key, _)| key)
        .is_empty()
    {
        true => Err(format!(
            "invalid environment variable: {value:?} has no name"
        )),
        false => Ok(value.to_owned()),
    }
}

/// A `--label`: `KEY=VALUE` or `KEY`, with a key, as Docker's
/// `ValidateLabel` takes it.
pub fn parse_label(value: &str) -> Result<String, String> {
    let key = value.split_once('=').map_or(value, |(key, _)| key);
    match key.is_empty() {
        true => Err(format!(
            "{value:?}: a label needs a name: give KEY=VALUE or KEY"
        )),
        false => Ok(value.to_owned()),
    }
}

/// `KEY=VALUE`, or `KEY` with an empty value, as `--label` takes it.
pub fn label_pair(label: &str) -> (String, String) {
    match label.split_once('=') {
        Some((key, value)) => (key.to_owned(), value.to_owned()),
        None => (label.to_owned(), String::new()),
    }
}

/// The `KEY=VALUE` (or `KEY`) entries of `--env-file`s or
/// `--label-file`s (`flag`), as Docker reads them: blank lines and `#`
/// comments skipped, leading blanks trimmed.
pub fn read_key_value_files(flag: &str, files: &[PathBuf]) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{flag} {}: cannot read it", file.display()))?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.split_once('=').map_or(line, |(key, _)| key);
            if key.is_empty() || key.contains(char::is_whitespace) {
                bail!(
                    "{flag} {}:{}: {key:?} is not a name",
                    file.display(),
                    number + 1
                );
            }
            env.push(line.to_owned());
        }
    }
    Ok(env)
}

/// A `--name`: Docker's rule, or empty for a generated one.
fn parse_name(value: &str) -> Result<String, String> {
    match value.is_empty() {
        true => Ok(String::new()),
        false => parse_container_name(value),
    }
}

/// Set for the `hull run` in the hull machine by the one outside: the ID of
/// the image it found or pulled.
const RESOLVED_IMAGE_ENV: &str = "HULL_RESOLVED_IMAGE";

/// `hull create`: prints the new container's ID.
pub fn create(args: CreateArgs, runtime: &Runtime) -> Result<u8> {
    let id = Prepared::new(&args, runtime, false)?.create(runtime)?.id;
    println!("{id}");
    Ok(0)
}

/// A container about to be made: its `--cidfile` claimed, its image found
/// or pulled.
struct Prepared {
    cidfile: Option<CidFile>,
    options: CreateOptions,
}

impl Prepared {
    /// What `args` describe; `attaches`: it is to run attached here.
    fn new(args: &CreateArgs, runtime: &Runtime, attaches: bool) -> Result<Prepared> {
        Ok(Prepared {
            cidfile: args.cidfile.as_deref().map(CidFile::claim).transpose()?,
            options: args.options(runtime, attaches)?,
        })
    }

    /// Makes the container and writes its ID to the `--cidfile` (which is
    /// left out when creation fails); returns its ID and name.
    fn create(self, runtime: &Runtime) -> Result<Created> {
        let created = runtime.create(self.options)?;
        if let Some(cidfile) = self.cidfile {
            cidfile.write(&created.id)?;
        }
        Ok(created)
    }
}

pub fn run(args: RunArgs, runtime: &Runtime) -> Result<u8> {
    args.check_run_flags()?;
    let create = &args.create;
    if args.detach {
        let id = Prepared::new(create, runtime, false)?.create(runtime)?.id;
        runtime.start(&id)?;
        println!("{id}");
        return Ok(0);
    }
    let prepared = Prepared::new(create, runtime, true)?;
    // Caught once the image is here (a Ctrl-C still ends a pull) and before
    // the VM boots (a Ctrl-C then ends the boot cleanly); left alone
    // without --sig-proxy, so that they end this process and no other.
    let signals = args.sig_proxy.then(Signals::catch).transpose()?;
    let Created { id, name } = prepared.create(runtime)?;
    let terminal = Terminal::new(create.stdio.tty, args.attaches(AttachStream::Stdin));
    let console = match args.console {
        true => ConsoleTarget::Stdout,
        false => ConsoleTarget::Log,
    };
    let mut stdio = terminal.stdio(signals)?;
    if !args.attaches(AttachStream::Stdout) {
        stdio.stdout = Box::new(std::io::sink());
    }
    if !args.attaches(AttachStream::Stderr) {
        stdio.stderr = Box::new(std::io::sink());
    }
    // A session that may leave the container running is joined to a
    // monitor of its own from the start: an interactive terminal's, which
    // may detach (Docker's Ctrl-P Ctrl-Q), and one that a signal ends.
    let whole_session = [
        AttachStream::Stdin,
        AttachStream::Stdout,
        AttachStream::Stderr,
    ]
    .into_iter()
    .all(|stream| args.attaches(stream));
    if !args.console && ((create.stdio.tty && whole_session) || !args.sig_proxy) {
        let outcome = runtime.start_attached(&id, stdio)?;
        drop(terminal);
        return Ok(container_cmd::left(&outcome, &name));
    }
    let outcome = runtime.run_attached(&id, stdio, console)?;
    Ok(outcome.exit_code())
}

/// The image `name` from the store, pulled first as `policy` says
/// (without progress if `quiet`).
pub fn image_for_run(
    store: &Store,
    root: &Path,
    name: &str,
    policy: PullPolicy,
    quiet: bool,
) -> Result<Image> {
    let found = match policy {
        PullPolicy::Always => None,
        PullPolicy::Missing | PullPolicy::Never => store.find(name)?,
    };
    if let Some(image) = found {
        return Ok(image);
    }
    if policy == PullPolicy::Never {
        bail!("no such image: {name} (and --pull never); pull it with `hull pull {name}`");
    }
    let reference = ImageRef::parse(name)?;
    if policy == PullPolicy::Missing && !quiet {
        eprintln!("Unable to find image '{name}' locally");
    }
    let mut options = image_cmd::registry_options(root, &[])?;
    options.progress = match quiet {
        true => ProgressStyle::Quiet,
        false => ProgressStyle::on(Stream::Stderr),
    };
    image_cmd::pull_image(store, &reference, &options)?;
    store.resolve(&reference.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn run_args(words: &[&str]) -> RunArgs {
        let argv = std::iter::once("run").chain(words.iter().copied());
        Cli::try_parse_from(argv).unwrap().run
    }

    #[test]
    fn flags_wrong_on_their_own_are_refused_before_the_image_is_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("missing.env");
        let env_file = env_file.to_str().unwrap();
        for (words, needle) in [
            (&["--rm", "--restart", "always", "-d"][..], "--rm"),
            (
                &["--restart", "always"][..],
                "--restart applies to containers run with -d",
            ),
            (&["--env-file", env_file][..], "--env-file"),
            (&["-v", "vol:relative"][..], "must be an absolute path"),
            (&["--tmpfs", "relative"][..], "must be an absolute path"),
            (
                &["-v", "aa:/x", "-v", "bb:/x/"][..],
                "duplicate mount point",
            ),
            (&["-w", "relative"][..], "is not an absolute path"),
            (&["--console", "--sig-proxy=false"][..], "drop one of them"),
        ] {
            let root = dir.path().join("root");
            let args = run_args(&[words, &["alpine"]].concat());
            let err = args.prepare_for_machine(&root).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{words:?}: {err:#}");
            assert!(!root.exists(), "{words:?}: the store was opened");
        }
    }

    #[test]
    fn sig_proxy_is_a_bool_flag_as_docker_has_it() {
        assert!(run_args(&["alpine"]).sig_proxy);
        assert!(run_args(&["--sig-proxy", "alpine"]).sig_proxy);
        let off = run_args(&["--sig-proxy=false", "alpine"]);
        assert!(!off.sig_proxy);
        assert_eq!(off.create.args, ["alpine"]);
        // Not its value: the image, as after Docker's bool flag.
        let image = run_args(&["--sig-proxy", "false", "true"]);
        assert!(image.sig_proxy);
        assert_eq!(image.create.args, ["false", "true"]);
    }

    #[test]
    fn dash_h_is_the_host_name_as_in_docker() {
        let args = run_args(&["-h", "web", "alpine"]);
        assert_eq!(args.create.hostname.as_deref(), Some("web"));
        let help = Cli::try_parse_from(["run", "--help"]).err().unwrap();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn a_label_needs_a_name() {
        assert!(parse_label("").is_err());
        assert!(parse_label("=x").is_err());
        assert_eq!(parse_label("a=").unwrap(), "a=");
        assert_eq!(parse_label("a").unwrap(), "a");
        assert!(parse_env("=x").unwrap_err().contains("no name"));
        assert!(parse_env("").is_err());
        assert_eq!(parse_env("A").unwrap(), "A");
        assert_eq!(parse_env("A==b").unwrap(), "A==b");
    }
}
