//! A service's containers as `hull_runtime` makes them: the name
//! (`<project>-<service>-<n>`), the [`CreateOptions`] its keys become, the
//! labels Compose puts on it, the networks beyond the first it joins, and
//! the config hash that tells `up` whether to recreate it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use hull_runtime::limits::{check_swappiness, cpu_weight, parse_storage_opt, CpuFlags};
use hull_runtime::security::parse_security_opts;
use hull_runtime::{
    capability_set, parse_domain_name, parse_volumes_from, signals, CpuList, CreateOptions,
    HealthConfig, HostEntry, Limits, Link, LogDriver, Mount, MountSource, NetworkOptions,
    RestartPolicy, Rlimit, RootfsChoice, TerminalSize,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::short_volume;
use crate::error::{Error, Result};
use crate::labels;
use crate::model::values::Span;
use crate::model::{
    FileObjectDef, FileObjectRef, Healthcheck, MountKind, Service, ServiceVolume, CONTAINER_PREFIX,
};
use crate::project::Project;

/// The image a service's containers run: its name as the file gives it,
/// and its ID in hull's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceImage {
    /// As the file names it.
    pub name: String,
    /// The store's ID.
    pub id: String,
}

/// Which container of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replica {
    /// Its `n`th container (from 1).
    Number(u32),
    /// A `run` container, named with this suffix.
    OneOff(String),
}

/// One container to make.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// What `create` is given.
    pub options: CreateOptions,
    /// Networks joined after the first, before it starts.
    pub more_networks: Vec<NetworkJoin>,
    /// Links to other services' first containers, made where those exist
    /// (`up --no-deps` may leave them out), as Compose links what it finds.
    pub service_links: Vec<Link>,
}

/// A network a container joins besides its first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkJoin {
    /// The network's hull name.
    pub network: String,
    /// Its address there, if fixed.
    pub ip: Option<Ipv4Addr>,
    /// Its names there.
    pub aliases: Vec<String>,
}

/// The name of container `replica` of `service_name`.
pub fn container_name(project: &Project, service_name: &str, replica: &Replica) -> String {
    let service = project.file.services.get(service_name);
    match replica {
        Replica::Number(n) => match service.and_then(|s| s.container_name.clone()) {
            Some(name) => name,
            None => format!("{}-{service_name}-{n}", project.name),
        },
        Replica::OneOff(suffix) => format!("{}-{service_name}-run-{suffix}", project.name),
    }
}

/// A digest of what a service's containers are made from: its keys
/// (replica counts aside), its resolved environment, its image's ID and
/// the names its networks and volumes have. A container whose label
/// differs is out of date.
pub fn config_hash(project: &Project, service_name: &str, image: &ServiceImage) -> Result<String> {
    let mut service = project.service(service_name)?.clone();
    service.scale = None;
    if let Some(deploy) = &mut service.deploy {
        deploy.replicas = None;
    }
    let networks: Vec<String> = project
        .service_networks(&service)
        .iter()
        .map(|key| project.network_name(key))
        .collect();
    let volumes: Vec<String> = service
        .volumes
        .iter()
        .filter_map(|v| v.source.as_deref().filter(|_| v.kind == MountKind::Volume))
        .map(|key| project.volume_name(key))
        .collect();
    let input = serde_json::json!({
        "service": service,
        "environment": project.environments.get(service_name),
        "image": image.id,
        "networks": networks,
        "volumes": volumes,
    });
    Ok(hex::encode(Sha256::digest(input.to_string().as_bytes())))
}

/// How the container `replica` of `service_name` is made, running `image`.
pub fn plan_container(
    project: &Project,
    service_name: &str,
    image: &ServiceImage,
    replica: &Replica,
) -> Result<ContainerPlan> {
    let service = project.service(service_name)?;
    let at = |key: &str, reason: String| {
        Error::config(format!("services.{service_name}.{key}: {reason}"))
    };
    let rootfs = RootfsChoice::Image {
        name: image.name.clone(),
        id: image.id.clone(),
    };
    let mut options = CreateOptions::new(rootfs);
    options.name = Some(container_name(project, service_name, replica));
    let command = service.command.clone().unwrap_or_default();
    match &service.entrypoint {
        // The runtime takes one entrypoint word; the others lead the command.
        Some(entrypoint) => {
            let (first, rest) = entrypoint
                .split_first()
                .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
            options.entrypoint = Some(first.to_owned());
            options.command = rest.iter().cloned().chain(command).collect();
        }
        None => options.command = command,
    }
    options.env = project
        .environments
        .get(service_name)
        .cloned()
        .unwrap_or_default();
    options.workdir = service.working_dir.clone();
    options.user = service.user.clone();
    options.hostname = service.hostname.clone();
    options.interactive = service.stdin_open;
    options.tty = service.tty.then_some(TerminalSize { rows: 24, cols: 80 });
    options.read_only = service.read_only;
    options.volumes_from = service
        .volumes_from
        .iter()
        .map(|from| volumes_from(project, from).map_err(|reason| at("volumes_from", reason)))
        .collect::<Result<_>>()?;
    let limits = service.deploy.as_ref().and_then(|d| d.resources.as_ref());
    let limit = limits.and_then(|r| r.limits.as_ref());
    let reservation = limits.and_then(|r| r.reservations.as_ref());
    options.domainname = match &service.domainname {
        Some(name) => Some(parse_domain_name(name).map_err(|reason| at("domainname", reason))?),
        None => None,
    };
    let cpu_flags = CpuFlags {
        cpus: service.cpus.or(limit.and_then(|l| l.cpus)),
        quota: service.cpu_quota,
        period: service.cpu_period,
        cpuset: match &service.cpuset {
            Some(list) => Some(CpuList::parse(list).map_err(|reason| at("cpuset", reason))?),
            None => None,
        },
    };
    let cpus = cpu_flags.share().map_err(|reason| at("cpus", reason))?;
    options.cpus = cpus.vcpus;
    options.nano_cpus = Some(cpus.nano_cpus);
    options.cpuset_cpus = cpu_flags.cpuset;
    if let Some(swappiness) = service.mem_swappiness {
        check_swappiness(swappiness).map_err(|reason| at("mem_swappiness", reason))?;
    }
    for (key, value) in &service.storage_opt {
        let option = format!("{key}={}", value.as_deref().unwrap_or_default());
        options.scratch_bytes =
            Some(parse_storage_opt(&option).map_err(|reason| at("storage_opt", reason))?);
    }
    let memory = service.mem_limit.or(limit.and_then(|l| l.memory));
    if let Some(memory) = memory {
        // The VM needs room for its kernel and agent; the cgroup holds the
        // container to the limit.
        options.memory_mib = (memory.0 >> 20).max(MIN_VM_MIB);
    }
    options.network = network_options(project, service, service_name, replica)?;
    options.restart = restart_policy(service);
    options.labels = container_labels(project, service_name, image, replica)?;
    options.stop_signal = match &service.stop_signal {
        Some(signal) => Some(
            signals::signal_number(signal)
                .ok_or_else(|| at("stop_signal", format!("{signal:?} is not a signal")))?,
        ),
        None => None,
    };
    options.stop_timeout = service
        .stop_grace_period
        .map(|span| span.0.as_secs_f64().ceil() as u64);
    options.mounts = mounts(project, service, service_name)?;
    options.healthcheck = service.healthcheck.as_ref().map(health_config);
    options.limits = Limits {
        memory_max_bytes: memory.map(|m| m.0),
        memory_low_bytes: service
            .mem_reservation
            .or(reservation.and_then(|r| r.memory))
            .map(|m| m.0),
        cpu_quota_usec: None,
        cpu_weight: match service.cpu_shares {
            Some(shares) => Some(cpu_weight(shares).map_err(|reason| at("cpu_shares", reason))?),
            None => None,
        },
        pids_max: service
            .pids_limit
            .or(limit.and_then(|l| l.pids))
            .filter(|pids| *pids > 0)
            .map(|pids| pids as u64),
        rlimits: service
            .ulimits
            .iter()
            .map(|(name, limit)| Rlimit {
                name: name.clone(),
                soft: unlimited(limit.soft),
                hard: unlimited(limit.hard),
            })
            .collect(),
        shm_size_bytes: service.shm_size.map(|s| s.0),
        capabilities: capability_set(service.privileged, &service.cap_add, &service.cap_drop)
            .map_err(|err| at("cap_add", format!("{err:#}")))?,
        sysctls: service
            .sysctls
            .iter()
            .map(|(key, value)| (key.clone(), value.clone().unwrap_or_default()))
            .collect(),
        additional_groups: service.group_add.clone(),
        no_new_privileges: parse_security_opts(&service.security_opt)
            .map_err(|reason| at("security_opt", reason))?
            .no_new_privileges,
        oom_score_adj: match service.oom_score_adj {
            Some(adj) if !(-1000..=1000).contains(&adj) => {
                return Err(at(
                    "oom_score_adj",
                    format!("{adj} is outside -1000 to 1000"),
                ))
            }
            adj => adj,
        },
    };
    if let Some(logging) = &service.logging {
        let at_logging = |err: hull_runtime::Error| at("logging", err.to_string());
        options.log_driver = match &logging.driver {
            Some(driver) => LogDriver::parse(driver).map_err(at_logging)?,
            None => LogDriver::default(),
        };
        options.log_limits = options
            .log_driver
            .limits(&logging.log_opts())
            .map_err(at_logging)?;
    }
    options.expose = service.expose.clone();
    options.links = service
        .external_links
        .iter()
        .map(|link| Link::parse(link).map_err(|reason| at("external_links", reason)))
        .collect::<Result<_>>()?;
    let service_links = service
        .links
        .iter()
        .map(|link| {
            let (linked, alias) = link.split_once(':').unwrap_or((link, link));
            let container = container_name(project, linked, &Replica::Number(1));
            Link::parse(&format!("{container}:{alias}")).map_err(|reason| at("links", reason))
        })
        .collect::<Result<_>>()?;
    let more_networks = more_networks(project, service, service_name);
    Ok(ContainerPlan {
        options,
        more_networks,
        service_links,
    })
}

/// `healthcheck` as changes to the image's: `disable` (or a `NONE` test)
/// turns it off, an absent test keeps the image's.
fn health_config(check: &Healthcheck) -> HealthConfig {
    let span = |span: Option<Span>| span.map(|s| s.0);
    HealthConfig {
        test: match check.disable {
            true => vec!["NONE".to_owned()],
            false => check.test.clone().unwrap_or_default(),
        },
        interval: span(check.interval),
        timeout: span(check.timeout),
        start_period: span(check.start_period),
        start_interval: span(check.start_interval),
        retries: check.retries,
    }
}

/// The least memory a container's VM gets, whatever its limit.
const MIN_VM_MIB: u64 = 64;

/// An rlimit value: -1 is unlimited.
fn unlimited(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The labels of a service's container.
fn container_labels(
    project: &Project,
    service_name: &str,
    image: &ServiceImage,
    replica: &Replica,
) -> Result<BTreeMap<String, String>> {
    let service = project.service(service_name)?;
    let mut labels: BTreeMap<String, String> = service
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
        .collect();
    let files: Vec<String> = project
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let (number, oneoff) = match replica {
        Replica::Number(n) => (n.to_string(), "False"),
        Replica::OneOff(_) => ("1".to_owned(), "True"),
    };
    for (key, value) in [
        (labels::PROJECT, project.name.clone()),
        (labels::SERVICE, service_name.to_owned()),
        (labels::CONTAINER_NUMBER, number),
        (labels::ONEOFF, oneoff.to_owned()),
        (
            labels::CONFIG_HASH,
            config_hash(project, service_name, image)?,
        ),
        (labels::WORKING_DIR, project.directory.display().to_string()),
        (labels::CONFIG_FILES, files.join(",")),
        (labels::IMAGE, image.id.clone()),
    ] {
        labels.insert(key.to_owned(), value);
    }
    Ok(labels)
}

/// The first network, its address and names, published ports, DNS and
/// hosts.
fn network_options(
    project: &Project,
    service: &Service,
    service_name: &str,
    replica: &Replica,
) -> Result<NetworkOptions> {
    let mut options = NetworkOptions::default();
    let keys = project.service_networks(service);
    match (&service.network_mode, keys.first()) {
        (Some(mode), _) => options.networks = vec![mode.clone()],
        (None, Some(first)) => {
            options.networks = vec![project.network_name(first)];
            let settings = service.networks.get(first);
            options.network_alias = aliases(service_name, settings.map(|s| &s.aliases[..]));
            options.ip = settings.and_then(|s| s.ipv4_address);
        }
        (None, None) => {}
    }
    // A `run` container publishes nothing unless asked (`--service-ports`,
    // which the front end applies to the plan).
    if matches!(replica, Replica::Number(_)) {
        options.publish = publish_specs(service);
    }
    options.mac_address = match &service.mac_address {
        Some(mac) => Some(mac.parse().map_err(|reason: String| {
            Error::config(format!("services.{service_name}.mac_address: {reason}"))
        })?),
        None => None,
    };
    options.dns = service.dns.clone();
    options.dns_search = service.dns_search.clone();
    options.dns_options = service.dns_opt.clone();
    options.add_host = service
        .extra_hosts
        .iter()
        .map(|entry| HostEntry::parse(entry).map_err(Error::Config))
        .collect::<Result<_>>()?;
    Ok(options)
}

/// A `volumes_from` entry as `--volumes-from` takes it: the container
/// (`container:NAME`, or a service's first) and whether read-only.
fn volumes_from(project: &Project, from: &str) -> std::result::Result<(String, bool), String> {
    let named = from.strip_prefix(CONTAINER_PREFIX);
    let (name, read_only) = parse_volumes_from(named.unwrap_or(from))
        .map_err(|reason| format!("{from:?}: {reason}"))?;
    match named {
        Some(_) => Ok((name, read_only)),
        None => Ok((
            container_name(project, &name, &Replica::Number(1)),
            read_only,
        )),
    }
}

/// The names a container has on a network: its service's, then the
/// network's `aliases`.
fn aliases(service_name: &str, more: Option<&[String]>) -> Vec<String> {
    let mut names = vec![service_name.to_owned()];
    for alias in more.unwrap_or_default() {
        if !names.contains(alias) {
            names.push(alias.clone());
        }
    }
    names
}

/// The networks after the first, with the container's names there.
fn more_networks(project: &Project, service: &Service, service_name: &str) -> Vec<NetworkJoin> {
    project
        .service_networks(service)
        .iter()
        .skip(1)
        .map(|key| {
            let settings = service.networks.get(key);
            NetworkJoin {
                network: project.network_name(key),
                ip: settings.and_then(|s| s.ipv4_address),
                aliases: aliases(service_name, settings.map(|s| &s.aliases[..])),
            }
        })
        .collect()
}

/// `restart`, else `deploy.restart_policy`.
fn restart_policy(service: &Service) -> RestartPolicy {
    if let Some(restart) = &service.restart {
        // Checked when the project was loaded.
        return restart.parse().unwrap_or_default();
    }
    let Some(policy) = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
    else {
        return RestartPolicy::No;
    };
    match policy.condition.as_deref() {
        Some("none") => RestartPolicy::No,
        Some("on-failure") => RestartPolicy::OnFailure {
            max_retries: policy.max_attempts,
        },
        _ => match policy.max_attempts {
            Some(max) => RestartPolicy::OnFailure {
                max_retries: Some(max),
            },
            None => RestartPolicy::Always,
        },
    }
}

/// What the containers of `service_name` publish, as `-p` values.
pub fn service_publish(project: &Project, service_name: &str) -> Result<Vec<String>> {
    Ok(publish_specs(project.service(service_name)?))
}

/// The service's `ports` as `-p` values.
fn publish_specs(service: &Service) -> Vec<String> {
    service
        .ports
        .iter()
        .map(|port| {
            let mut spec = String::new();
            if let Some(ip) = port.host_ip {
                spec.push_str(&format!("{ip}:"));
            }
            match port.published {
                Some(published) => spec.push_str(&format!("{published}:")),
                None if port.host_ip.is_some() => spec.push(':'),
                None => {}
            }
            format!("{spec}{}/{}", port.target, port.protocol)
        })
        .collect()
}

/// The mounts the containers of `service_name` get: its `volumes` and
/// `tmpfs`, binds resolved against the project directory.
pub fn service_mounts(project: &Project, service_name: &str) -> Result<Vec<Mount>> {
    mounts(project, project.service(service_name)?, service_name)
}

/// A `run -v` volume, `[SOURCE:]TARGET[:MODE]`, as the same entry in the
/// service's `volumes` would be mounted, but a volume the file does not
/// declare keeps its name, as Compose has it.
pub fn run_volume(project: &Project, text: &str) -> Result<Mount> {
    let invalid = |reason: String| {
        Error::Runtime(hull_runtime::Error::invalid(format!(
            "invalid volume {text:?}: {reason}"
        )))
    };
    let long = short_volume(text).map_err(invalid)?;
    let volume: ServiceVolume = serde_yaml::from_value(serde_yaml::Value::Mapping(long))
        .map_err(|err| invalid(err.to_string()))?;
    let mut mount = mount(project, &volume).map_err(invalid)?;
    if let (MountSource::Volume { name, .. }, Some(key)) = (&mut mount.source, &volume.source) {
        if !project.file.volumes.contains_key(key) {
            *name = hull_runtime::parse_volume_name(key).map_err(invalid)?;
        }
    }
    Ok(mount)
}

/// The service's `volumes` and `tmpfs` as mounts: binds resolved against
/// the project directory, volumes by their hull names.
fn mounts(project: &Project, service: &Service, service_name: &str) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for (index, volume) in service.volumes.iter().enumerate() {
        mounts.push(mount(project, volume).map_err(|reason| {
            Error::config(format!(
                "services.{service_name}.volumes[{index}]: {reason}"
            ))
        })?);
    }
    for (index, entry) in service.tmpfs.iter().enumerate() {
        mounts.push(tmpfs(entry).map_err(|reason| {
            Error::config(format!(
                "services.{service_name}.tmpfs[{index}]: {entry:?}: {reason}"
            ))
        })?);
    }
    for (kind, refs, defined) in [
        (FileObject::Secret, &service.secrets, &project.file.secrets),
        (FileObject::Config, &service.configs, &project.file.configs),
    ] {
        for (index, used) in refs.iter().enumerate() {
            let mount = defined
                .get(&used.source)
                .ok_or_else(|| format!("{:?} is not defined", used.source))
                .and_then(|def| file_object_mount(kind, used, def))
                .map_err(|reason| {
                    Error::config(format!(
                        "services.{service_name}.{}[{index}]: {reason}",
                        kind.section()
                    ))
                })?;
            mounts.push(mount);
        }
    }
    Ok(mounts)
}

/// A secret or a config.
#[derive(Debug, Clone, Copy)]
enum FileObject {
    Secret,
    Config,
}

impl FileObject {
    fn section(self) -> &'static str {
        match self {
            FileObject::Secret => "secrets",
            FileObject::Config => "configs",
        }
    }
}

/// A secret or config from a file, mounted read-only as Compose does
/// without a swarm: a secret at `/run/secrets/<target or source>`, a
/// config at its target or `/<source>`. One from an environment variable,
/// inline content or a swarm is refused: hull would have to write it into
/// the container.
fn file_object_mount(
    kind: FileObject,
    used: &FileObjectRef,
    def: &FileObjectDef,
) -> std::result::Result<Mount, String> {
    let source = &used.source;
    let Some(file) = &def.file else {
        let from = match (def.external, &def.environment, &def.content) {
            (true, _, _) => "an external store".to_owned(),
            (_, Some(variable), _) => format!("the environment variable {variable}"),
            (_, _, Some(_)) => "inline content".to_owned(),
            _ => "nowhere (no file given)".to_owned(),
        };
        return Err(format!(
            "{source:?} comes from {from}; hull mounts only {} from files (file:)",
            kind.section()
        ));
    };
    let target = used.target.as_deref().unwrap_or(source);
    let target = match (kind, target.starts_with('/')) {
        (_, true) => target.to_owned(),
        (FileObject::Secret, false) => format!("/run/secrets/{target}"),
        (FileObject::Config, false) => format!("/{target}"),
    };
    Ok(Mount {
        target,
        source: MountSource::Bind {
            path: PathBuf::from(file),
            create: false,
        },
        read_only: true,
    })
}

fn mount(project: &Project, volume: &ServiceVolume) -> std::result::Result<Mount, String> {
    let subpath = volume.volume.as_ref().and_then(|v| v.subpath.clone());
    if subpath.is_some() && volume.kind != MountKind::Volume {
        return Err("volume.subpath is for volume mounts".into());
    }
    let source = match volume.kind {
        MountKind::Bind => {
            let given = volume.source.as_deref().unwrap_or_default();
            MountSource::Bind {
                path: host_path(&project.directory, given)?,
                create: volume.bind.as_ref().is_some_and(|b| b.create_host_path),
            }
        }
        MountKind::Volume => MountSource::Volume {
            name: match volume.source.as_deref().filter(|s| !s.is_empty()) {
                Some(key) => project.volume_name(key),
                None => String::new(),
            },
            copy: !volume.volume.as_ref().is_some_and(|v| v.nocopy),
            subpath,
        },
        MountKind::Tmpfs => MountSource::Tmpfs {
            size_bytes: volume.tmpfs.as_ref().and_then(|t| t.size).map(|s| s.0),
            mode: match volume.tmpfs.as_ref().and_then(|t| t.mode.as_deref()) {
                Some(octal) => Some(parse_mode(octal)?),
                None => None,
            },
        },
    };
    let mount = Mount {
        target: volume.target.clone(),
        source,
        read_only: volume.read_only,
    };
    hull_runtime::check_mounts(std::slice::from_ref(&mount)).map_err(|err| err.to_string())?;
    Ok(mount)
}

/// A bind's host path: `~/` from `$HOME`, relative ones from the project
/// directory.
fn host_path(directory: &Path, given: &str) -> std::result::Result<PathBuf, String> {
    let path = match given.strip_prefix("~/") {
        Some(rest) => {
            let home = std::env::var_os("HOME").ok_or("~ is used but HOME is not set")?;
            PathBuf::from(home).join(rest)
        }
        None => directory.join(given),
    };
    // `./data` as `<dir>/data`, not `<dir>/./data`.
    Ok(path.components().collect())
}

/// A `tmpfs:` entry: `PATH[:size=SIZE,mode=OCTAL,ro]`.
fn tmpfs(entry: &str) -> std::result::Result<Mount, String> {
    let (target, options) = entry.split_once(':').unwrap_or((entry, ""));
    let (mut size_bytes, mut mode, mut read_only) = (None, None, false);
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", size)) => size_bytes = Some(hull_runtime::units::parse_size_bytes(size)?),
            Some(("mode", octal)) => mode = Some(parse_mode(octal)?),
            None if option == "ro" => read_only = true,
            _ => {}
        }
    }
    Ok(Mount {
        target: target.to_owned(),
        source: MountSource::Tmpfs { size_bytes, mode },
        read_only,
    })
}

fn parse_mode(octal: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(octal, 8).map_err(|_| format!("mode {octal} is not octal"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, LoadOptions};

    /// The project of `yaml`, in a directory named `shop`.
    fn project(yaml: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let shop = dir.path().join("shop");
        std::fs::create_dir(&shop).unwrap();
        std::fs::write(shop.join("web.env"), "FROM_FILE=1\nGREETING=file\n").unwrap();
        let project = reload(&dir, yaml);
        (dir, project)
    }

    /// The project of `yaml`, written over the one in `dir`.
    fn reload(dir: &tempfile::TempDir, yaml: &str) -> Project {
        let shop = dir.path().join("shop");
        std::fs::write(shop.join("compose.yaml"), yaml).unwrap();
        let options = LoadOptions {
            working_dir: shop,
            ..LoadOptions::default()
        };
        load(&options).unwrap()
    }

    fn image() -> ServiceImage {
        ServiceImage {
            name: "bb:1".into(),
            id: "sha256:abc".into(),
        }
    }

    const APP: &str = "services:
  web:
    image: bb:1
    env_file: web.env
    environment: {GREETING: hello}
    ports: ['8080:80', '127.0.0.1::53/udp', '9000-9001:90']
    networks:
      frontend: {aliases: [www]}
      backend: {}
    volumes: [data:/data, ./www:/www:ro]
    depends_on: {db: {condition: service_healthy}}
    healthcheck: {test: wget -q localhost, interval: 2s, retries: 5}
    deploy: {replicas: 2}
  db:
    image: bb:1
    networks: [backend]
    healthcheck: {disable: true}
networks: {frontend: {}, backend: {}}
volumes: {data: {}}
";

    #[test]
    fn names_and_labels_are_compose_v2_s() {
        let (_dir, project) = project(APP);
        assert_eq!(project.name, "shop");
        let plan = plan_container(&project, "web", &image(), &Replica::Number(2)).unwrap();
        let options = &plan.options;
        assert_eq!(options.name.as_deref(), Some("shop-web-2"));
        assert_eq!(options.network.networks, ["shop_frontend"]);
        assert_eq!(options.network.network_alias, ["web", "www"]);
        assert_eq!(plan.more_networks.len(), 1);
        assert_eq!(plan.more_networks[0].network, "shop_backend");
        assert_eq!(plan.more_networks[0].aliases, ["web"]);
        assert_eq!(
            options.network.publish,
            ["8080:80/tcp", "127.0.0.1::53/udp", "9000-9001:90/tcp"]
        );
        let labels = &options.labels;
        assert_eq!(labels[labels::PROJECT], "shop");
        assert_eq!(labels[labels::SERVICE], "web");
        assert_eq!(labels[labels::CONTAINER_NUMBER], "2");
        assert_eq!(labels[labels::ONEOFF], "False");
        assert_eq!(labels[labels::IMAGE], "sha256:abc");
        assert!(labels[labels::CONFIG_FILES].ends_with("shop/compose.yaml"));
        assert_eq!(
            options.env,
            ["FROM_FILE=1", "GREETING=hello"],
            "the env file, then environment over it"
        );
        let MountSource::Volume { name, .. } = &options.mounts[0].source else {
            panic!("{:?}", options.mounts[0]);
        };
        assert_eq!(name, "shop_data");
        let MountSource::Bind { path, .. } = &options.mounts[1].source else {
            panic!("{:?}", options.mounts[1]);
        };
        assert!(path.ends_with("shop/www"), "{path:?}");
        assert!(options.mounts[1].read_only);
        let run =
            plan_container(&project, "web", &image(), &Replica::OneOff("f00".into())).unwrap();
        assert_eq!(run.options.name.as_deref(), Some("shop-web-run-f00"));
        assert_eq!(run.options.labels[labels::ONEOFF], "True");
        assert!(run.options.network.publish.is_empty());
    }

    #[test]
    fn run_volumes_mount_as_the_files_volumes_do() {
        let (dir, project) = project("services:\n  web: {image: web}\nvolumes: {data: {}}\n");
        let source = |text: &str| run_volume(&project, text).map(|mount| mount.source);
        assert!(matches!(source("data:/d").unwrap(),
            MountSource::Volume { name, .. } if name == "shop_data"));
        assert!(matches!(source("cache:/c:nocopy").unwrap(),
            MountSource::Volume { name, copy: false, .. } if name == "cache"));
        let MountSource::Bind { path, .. } = source("./src:/app").unwrap() else {
            panic!("not a bind");
        };
        assert_eq!(path, dir.path().join("shop/src"));
        assert!(matches!(source("/tmp/a").unwrap(),
            MountSource::Volume { name, .. } if name.is_empty()));
        for bad in ["data:app", "no/such:/x", "/a:/b:zz"] {
            let err = source(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid volume {bad:?}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_volume_subpath_is_mounted_and_one_leaving_the_volume_refused() {
        let yaml = |subpath: &str| {
            format!(
                "services:\n  db:\n    image: db\n    volumes:\n      - type: volume\n        \
                 source: data\n        target: /var/lib/db\n        volume: {{subpath: \"{subpath}\"}}\n\
                 volumes: {{data: {{}}}}\n"
            )
        };
        let (dir, project) = project(&yaml("pg/data"));
        let db = plan_container(&project, "db", &image(), &Replica::Number(1)).unwrap();
        let MountSource::Volume { name, subpath, .. } = &db.options.mounts[0].source else {
            panic!("{:?}", db.options.mounts[0]);
        };
        assert_eq!(
            (name.as_str(), subpath.as_deref()),
            ("shop_data", Some("pg/data"))
        );
        let project = reload(&dir, &yaml("../other"));
        let err = plan_container(&project, "db", &image(), &Replica::Number(1))
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("services.db.volumes[0]") && text.contains("subpath"),
            "{text}"
        );
    }

    #[test]
    fn healthchecks_become_changes_to_the_image_s() {
        let (_dir, project) = project(APP);
        let web = plan_container(&project, "web", &image(), &Replica::Number(1)).unwrap();
        let check = web.options.healthcheck.unwrap();
        assert_eq!(check.test, ["CMD-SHELL", "wget -q localhost"]);
        assert_eq!(check.interval, Some(std::time::Duration::from_secs(2)));
        assert_eq!(check.retries, Some(5));
        assert_eq!(check.timeout, None);
        let db = plan_container(&project, "db", &image(), &Replica::Number(1)).unwrap();
        assert_eq!(db.options.healthcheck.unwrap().test, ["NONE"]);
    }

    #[test]
    fn hardening_logging_and_resolver_keys_become_run_options() {
        // As self-hosted apps' compose files harden and tune a service.
        let (_dir, project) = project(
            "services:
  app:
    image: bb:1
    platform: linux/amd64
    security_opt: ['no-new-privileges:true', 'apparmor:unconfined']
    group_add: [video, 1001]
    ipc: private
    userns_mode: host
    logging: {driver: json-file, options: {max-size: 5m, max-file: 2}}
    dns_search: corp.example
    dns_opt: [ndots:1]
    expose: ['9000-9001', 53/udp]
  quiet:
    image: bb:1
    logging: {driver: none}
",
        );
        let app = plan_container(&project, "app", &image(), &Replica::Number(1)).unwrap();
        let options = &app.options;
        assert!(options.limits.no_new_privileges);
        assert_eq!(options.limits.additional_groups, ["video", "1001"]);
        assert_eq!(options.log_driver, LogDriver::JsonFile);
        assert_eq!(
            (options.log_limits.max_size, options.log_limits.max_files),
            (5 << 20, 2)
        );
        assert_eq!(options.network.dns_search, ["corp.example"]);
        assert_eq!(options.network.dns_options, ["ndots:1"]);
        assert_eq!(options.expose, ["9000-9001", "53/udp"]);
        let quiet = plan_container(&project, "quiet", &image(), &Replica::Number(1)).unwrap();
        assert_eq!(quiet.options.log_driver, LogDriver::None);
        assert!(!quiet.options.limits.no_new_privileges);
    }

    #[test]
    fn cpu_oom_storage_and_uts_keys_become_run_options() {
        let (_dir, project) = project(
            "services:
  app:
    image: bb:1
    cpuset: '0'
    cpu_quota: 50000
    cpu_period: '100000'
    oom_score_adj: -500
    oom_kill_disable: true
    mem_swappiness: 0
    storage_opt: {size: 1G}
    domainname: example.com
  quota_and_cpus:
    image: bb:1
    cpus: 1
    cpu_quota: 50000
  bad_size:
    image: bb:1
    storage_opt: {size: 1k}
",
        );
        let app = plan_container(&project, "app", &image(), &Replica::Number(1)).unwrap();
        let options = &app.options;
        assert_eq!((options.cpus, options.nano_cpus), (1, Some(500_000_000)));
        assert_eq!(options.cpuset_cpus, Some(CpuList::parse("0").unwrap()));
        assert_eq!(options.limits.oom_score_adj, Some(-500));
        assert_eq!(options.scratch_bytes, Some(1 << 30));
        assert_eq!(options.domainname.as_deref(), Some("example.com"));
        assert!(project
            .warnings
            .iter()
            .any(|warning| warning.starts_with("services.app.oom_kill_disable: ")));
        let refused = |service| {
            plan_container(&project, service, &image(), &Replica::Number(1))
                .err()
                .map(|err| err.to_string())
                .unwrap_or_default()
        };
        assert!(
            refused("quota_and_cpus").contains("cannot both be set"),
            "{}",
            refused("quota_and_cpus")
        );
        assert!(
            refused("bad_size").starts_with("services.bad_size.storage_opt: "),
            "{}",
            refused("bad_size")
        );
    }

    #[test]
    fn volumes_from_name_a_services_first_container_or_a_container() {
        let (_dir, web_project) = project(
            "services:
  web:
    image: bb:1
    volumes_from: ['data:ro', 'container:legacy']
    mac_address: 02:42:ac:11:00:09
  data: {image: bb:1}
",
        );
        assert!(web_project.file.services["web"]
            .depends_on
            .contains_key("data"));
        let plan = plan_container(&web_project, "web", &image(), &Replica::Number(1)).unwrap();
        assert_eq!(
            plan.options.volumes_from,
            [
                ("shop-data-1".to_owned(), true),
                ("legacy".to_owned(), false)
            ]
        );
        assert_eq!(
            plan.options.network.mac_address.map(|mac| mac.to_string()),
            Some("02:42:ac:11:00:09".to_owned())
        );
        let (_dir, bad) =
            project("services:\n  web: {image: bb:1, volumes_from: ['container:x:rx']}\n");
        let err = plan_container(&bad, "web", &image(), &Replica::Number(1)).unwrap_err();
        assert!(err.to_string().contains("volumes_from"), "{err}");
    }

    #[test]
    fn links_are_dependencies_and_aliases_of_the_first_container() {
        // A v2-era file: `links` instead of depends_on, an alias for MySQL.
        let (_dir, project) = project(
            "services:
  web:
    image: bb:1
    links: [db:mysql, cache]
    external_links: [legacy-ldap:ldap]
  db: {image: bb:1, container_name: shop-db}
  cache: {image: bb:1}
",
        );
        let web = &project.file.services["web"];
        let implied: Vec<(&String, bool)> = web
            .depends_on
            .iter()
            .map(|(name, dependency)| (name, dependency.restart))
            .collect();
        assert_eq!(
            implied,
            [(&"db".to_owned(), true), (&"cache".to_owned(), true)]
        );
        let plan = plan_container(&project, "web", &image(), &Replica::Number(1)).unwrap();
        let links: Vec<(&str, &str)> = plan
            .service_links
            .iter()
            .map(|link| (link.container.as_str(), link.alias.as_str()))
            .collect();
        assert_eq!(links, [("shop-db", "mysql"), ("shop-cache-1", "cache")]);
        assert_eq!(
            plan.options.links,
            [Link::parse("legacy-ldap:ldap").unwrap()]
        );
    }

    #[test]
    fn the_config_hash_follows_the_configuration_not_the_scale() {
        // Paths are absolute: the projects compared share their directory.
        let (dir, base) = project(APP);
        let hash = |project: &Project| config_hash(project, "web", &image()).unwrap();
        let rescaled = reload(&dir, &APP.replace("replicas: 2", "replicas: 3"));
        assert_eq!(hash(&base), hash(&rescaled));
        let changed = reload(&dir, &APP.replace("GREETING: hello", "GREETING: hi"));
        assert_ne!(hash(&base), hash(&changed));
        assert_eq!(
            config_hash(&base, "db", &image()).unwrap(),
            config_hash(&changed, "db", &image()).unwrap(),
            "db did not change"
        );
        let other = ServiceImage {
            id: "sha256:def".into(),
            ..image()
        };
        assert_ne!(hash(&base), config_hash(&base, "web", &other).unwrap());
    }

    #[test]
    fn file_secrets_and_configs_mount_read_only_and_others_are_refused() {
        // docs.docker.com's secrets example, with a config.
        let (dir, project) = project(
            "services:\n  db:\n    image: mysql\n    secrets: [db_password, {source: db_password, target: wp_pw}]\n    \
             configs: [{source: httpd, target: /etc/extra.conf}, my_config]\n  \
             root:\n    image: mysql\n    secrets: [db_root_password]\n\
             secrets:\n  db_password: {file: db_password.txt}\n  db_root_password: {environment: DB_ROOT_PASSWORD}\n\
             configs:\n  httpd: {file: ./httpd.conf}\n  my_config: {file: /etc/my.conf}\n",
        );
        let shop = dir.path().join("shop");
        let mounts = service_mounts(&project, "db").unwrap();
        let seen: Vec<(&str, PathBuf, bool)> = mounts
            .iter()
            .map(|m| match &m.source {
                MountSource::Bind { path, .. } => (m.target.as_str(), path.clone(), m.read_only),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "/run/secrets/db_password",
                    shop.join("db_password.txt"),
                    true
                ),
                ("/run/secrets/wp_pw", shop.join("db_password.txt"), true),
                ("/etc/extra.conf", shop.join("httpd.conf"), true),
                ("/my_config", PathBuf::from("/etc/my.conf"), true),
            ]
        );
        let error = service_mounts(&project, "root").unwrap_err().to_string();
        assert_eq!(
            error,
            "services.root.secrets[0]: \"db_root_password\" comes from the environment variable \
             DB_ROOT_PASSWORD; hull mounts only secrets from files (file:)"
        );
    }
}
