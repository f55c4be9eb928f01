//! A service as a compose file declares it, in canonical form.

use std::net::IpAddr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::values::{self, Bytes, HostPorts, Span};

/// `services.NAME`: the containers of one kind, their image, command,
/// environment, storage, networks, dependencies and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The image to run (with `build`: the name of the one built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// How to build the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// When to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// Replaces the image's Cmd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Variables; a null value is taken from the environment of compose.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, Option<String>>,
    /// Files of variables, under `environment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<EnvFile>,
    /// Ports published on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Ports other services reach (documentation, as in Docker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// Volumes, bind mounts and tmpfs mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolume>,
    /// The networks it joins (none given: the project's `default`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, ServiceNetwork>,
    /// `none` for loopback only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Services to start first, and what to wait for.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub depends_on: IndexMap<String, Dependency>,
    /// Legacy links to other services, `SERVICE[:ALIAS]`: each a
    /// dependency too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Legacy links to containers outside the project,
    /// `CONTAINER[:ALIAS]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// The mounts of another service's first container (`SERVICE`, a
    /// dependency too) or of a container (`container:NAME`), `:ro` or
    /// `:rw`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// Its MAC address on its first network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// How its health is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `no`, `always`, `on-failure[:N]`, `unless-stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// The container's name, instead of `<project>-<service>-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The NIS domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `USER[:GROUP]`.
    #[serde(
        default,
        deserialize_with = "values::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub user: Option<String>,
    /// Labels of its containers.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, Option<String>>,
    /// `/etc/hosts` lines, `NAME:IP`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    /// Search domains of its resolver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Options of its resolver (`ndots:2`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// tmpfs mounts, `PATH[:OPTIONS]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// A read-only root file system.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub read_only: bool,
    /// The signal `stop` sends first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// How long `stop` waits before killing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Span>,
    /// Accepted: hull's agent is always PID 1 and reaps orphans.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub init: bool,
    /// A terminal for the process.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub tty: bool,
    /// Keep stdin open.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub stdin_open: bool,
    /// CPUs (vCPUs, rounded up, and a CPU quota for a fraction).
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpus: Option<f64>,
    /// Relative CPU weight.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_shares: Option<u64>,
    /// CPU time per `cpu_period`, in microseconds (-1: none).
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_quota: Option<i64>,
    /// The period of `cpu_quota`, in microseconds.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_period: Option<u64>,
    /// The host CPUs its VMs run on (`0-3,6`).
    #[serde(
        default,
        deserialize_with = "values::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpuset: Option<String>,
    /// Checked, as Docker checks it: the VM has no swap.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub mem_swappiness: Option<i64>,
    /// The OOM killer's bias for its processes, -1000 to 1000.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub oom_score_adj: Option<i32>,
    /// Accepted and discarded with a warning, as Docker does on cgroup v2.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub oom_kill_disable: bool,
    /// The writable layer's options: `size`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub storage_opt: IndexMap<String, Option<String>>,
    /// Memory: the VM's size and the cgroup's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<Bytes>,
    /// Memory kept under pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<Bytes>,
    /// Size of `/dev/shm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<Bytes>,
    /// The most processes (-1: no limit).
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub pids_limit: Option<i64>,
    /// Capabilities beyond Docker's default set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities taken from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Groups its processes are in besides their user's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Security options, as `--security-opt` takes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// The IPC namespace: what every container's VM has (`private`,
    /// `shareable`); others are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// The PID namespace, as `ipc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// The UTS namespace, as `ipc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// The user namespace (`host`: no remapping, as always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// The cgroup namespace, as `ipc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The image's platform (linux/amd64 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Where its output is logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// Every capability (inside its own VM).
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub privileged: bool,
    /// Kernel parameters of its VM.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub sysctls: IndexMap<String, Option<String>>,
    /// Resource limits of its processes.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, Ulimit>,
    /// Replicas, resources and restart policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// How many containers (`deploy.replicas` wins).
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale: Option<u32>,
    /// Started only when one of these profiles is active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Secrets mounted read-only, by default at `/run/secrets/<source>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileObjectRef>,
    /// Configuration files mounted read-only, by default at `/<source>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileObjectRef>,
    /// `x-` extension fields, kept for `config` (the loader fills them in).
    #[serde(skip)]
    pub extensions: serde_yaml::Mapping,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

impl Service {
    /// Makes each service it links to or takes volumes from a dependency
    /// it does not have yet, as Compose does: started first (and restarted
    /// with it, for a link).
    pub fn imply_dependencies(&mut self) {
        let linked = self.links.iter().map(|link| (link, true));
        let mounted = self
            .volumes_from
            .iter()
            .filter(|from| !from.starts_with(CONTAINER_PREFIX))
            .map(|from| (from, false));
        for (reference, restart) in linked.chain(mounted) {
            let service = reference.split(':').next().unwrap_or_default();
            self.depends_on
                .entry(service.to_owned())
                .or_insert(Dependency {
                    condition: Condition::ServiceStarted,
                    restart,
                    required: true,
                });
        }
    }
}

/// How `volumes_from` names a container rather than a service.
pub const CONTAINER_PREFIX: &str = "container:";

/// `logging`: a log driver and its options, as `--log-driver` and
/// `--log-opt` take them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logging {
    /// `json-file` (the default), `local` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `max-size`, `max-file`, `compress`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, Option<String>>,
}

impl Logging {
    /// The options as `--log-opt` values: `max-size=10m`.
    pub fn log_opts(&self) -> Vec<String> {
        self.options
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_deref().unwrap_or_default()))
            .collect()
    }
}

/// `build`: how the front end builds the service's image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Build {
    /// The build context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The Dockerfile, in the context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build arguments.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, Option<String>>,
    /// The stage to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The Dockerfile's text, instead of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// The network of `RUN` steps (`none` cuts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Take nothing from the build cache.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_cache: bool,
    /// Pull base images even if they are here.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pull: bool,
    /// Top-level secrets the build's `RUN --mount=type=secret` may use,
    /// by id `target` (default: the secret's name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileObjectRef>,
}

/// `pull_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pull if not in the store (the default).
    Missing,
    /// Pull on every `up`.
    Always,
    /// Never pull.
    Never,
    /// Build it (hull builds nothing yet).
    Build,
    /// `missing`, under an older name.
    IfNotPresent,
}

/// An `env_file` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvFile {
    /// The file, relative to the project directory.
    pub path: String,
    /// Whether a missing file is an error.
    #[serde(default = "yes", deserialize_with = "values::boolean")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// A published port, long syntax (its fields in the order Compose prints
/// them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// A name for the port (documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only `ingress` and `host` exist; both mean the same here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The host address to publish on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// The container's port.
    #[serde(deserialize_with = "required_number")]
    pub target: u16,
    /// The host's port, or a range of them (none: one the kernel picks);
    /// written as text, as Compose writes it.
    #[serde(
        default,
        deserialize_with = "values::number",
        serialize_with = "values::as_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub published: Option<HostPorts>,
    /// `tcp` or `udp`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// The application protocol (documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

fn required_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    use serde::de::Error;
    values::number(deserializer)?.ok_or_else(|| D::Error::custom("a number is needed"))
}

/// A mount, long syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolume {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// A volume's name (none: anonymous) or a host path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where it is mounted in the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub read_only: bool,
    /// Bind options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Volume options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// tmpfs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
}

/// What a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A named or anonymous volume.
    Volume,
    /// A host path.
    Bind,
    /// A tmpfs in the guest's memory.
    Tmpfs,
}

/// `bind:` options of a mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BindOptions {
    /// Make a missing host path as a directory (the short syntax's way).
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub create_host_path: bool,
}

/// `volume:` options of a mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeOptions {
    /// Do not fill an empty volume from the image.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub nocopy: bool,
    /// A directory or file in the volume mounted instead of all of it.
    #[serde(
        default,
        deserialize_with = "values::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub subpath: Option<String>,
}

/// `tmpfs:` options of a mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TmpfsOptions {
    /// Its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Bytes>,
    /// Its mode, octal.
    #[serde(
        default,
        deserialize_with = "values::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<String>,
}

/// A service's place on one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceNetwork {
    /// More names it has there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Its address there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<std::net::Ipv4Addr>,
}

/// A dependency on another service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// What to wait for.
    pub condition: Condition,
    /// Restart this service when that one is recreated.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub restart: bool,
    /// A dependency that is not there is an error (else a warning).
    #[serde(default = "yes", deserialize_with = "values::boolean")]
    pub required: bool,
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Its containers run.
    ServiceStarted,
    /// Its containers' healthchecks pass.
    ServiceHealthy,
    /// Its containers exited with 0.
    ServiceCompletedSuccessfully,
}

/// `healthcheck`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `[CMD, ...]`, `[CMD-SHELL, command]` or `[NONE]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// How long a check may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Failures in a row that make it unhealthy.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<u32>,
    /// Failures in this time after the start do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Span>,
    /// Between checks during the start period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Span>,
    /// No healthcheck, not even the image's.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "is_false"
    )]
    pub disable: bool,
}

/// A resource limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ulimit {
    /// The soft limit (-1: unlimited).
    #[serde(deserialize_with = "required_number")]
    pub soft: i64,
    /// The hard limit (-1: unlimited).
    #[serde(deserialize_with = "required_number")]
    pub hard: i64,
}

/// `deploy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// `replicated` or `global`: on one host, both are `replicas`
    /// containers (one by default), as Compose runs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// How many containers.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub replicas: Option<u32>,
    /// Limits and reservations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// When containers are restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// At most this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceAmounts>,
    /// Kept for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceAmounts>,
}

/// CPUs, memory and processes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceAmounts {
    /// CPUs.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpus: Option<f64>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Bytes>,
    /// Processes.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub pids: Option<i64>,
}

/// `deploy.restart_policy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// At most this many restarts.
    #[serde(
        default,
        deserialize_with = "values::number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<u32>,
}

/// A service's use of a secret or config, long syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileObjectRef {
    /// The top-level secret or config.
    pub source: String,
    /// Where it is mounted (a secret's relative target is under
    /// `/run/secrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its owner (as in Compose without a swarm: ignored; a bind mount
    /// keeps the host file's).
    #[serde(
        default,
        deserialize_with = "values::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub uid: Option<String>,
    /// Its group (ignored, as `uid`).
    #[serde(
        default,
        deserialize_with = "values::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub gid: Option<String>,
    /// Its mode (ignored, as `uid`).
    #[serde(
        default,
        deserialize_with = "values::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<String>,
}
