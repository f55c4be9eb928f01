//! `hull inspect`: containers, and images and networks, as JSON in the
//! shape of `docker inspect`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use hull_image::Store;
use hull_runtime::{
    is_anonymous_volume, ContainerConfig, ContainerInfo, ContainerNetwork, Endpoint, Health,
    HealthConfig, HostEntry, LogDriver, Mount, MountSource, RestartPolicy, RootfsSource, Runtime,
    Status, DEFAULT_CAPABILITIES,
};
use serde_json::{json, Value};

use hull_format::render_one;

use super::for_each_name;
use crate::{image_cmd, network_cmd, volume_cmd};

#[derive(Args)]
pub struct InspectArgs {
    /// A Go template for each object, e.g.
    /// `{{.NetworkSettings.IPAddress}}` or `{{json .State}}`.
    #[arg(short, long, value_parser = parse_format)]
    format: Option<String>,
    /// Only objects of this type (default: a container, else an image,
    /// else a network, else a volume of that name).
    #[arg(long = "type", value_enum)]
    kind: Option<Kind>,
    /// Add containers' SizeRw (what the writable layer takes on the host)
    /// and SizeRootFs (that and the image's layers).
    #[arg(short, long)]
    size: bool,
    /// Names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl InspectArgs {
    /// As `container inspect`: containers only, whatever `--type` said.
    pub fn containers_only(self) -> InspectArgs {
        InspectArgs {
            kind: Some(Kind::Container),
            ..self
        }
    }
}

/// What `inspect` looks at.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

/// No object of any type has the name.
#[derive(Debug)]
pub struct NoSuchObject(String);

impl fmt::Display for NoSuchObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no such object: {}", self.0)
    }
}

impl std::error::Error for NoSuchObject {}

/// As `docker inspect`: what was found, and a line for each name that was
/// not (exit code 1).
pub fn inspect(args: InspectArgs, runtime: &Runtime) -> Result<u8> {
    inspect_each(&args.containers, args.format.as_deref(), |name| {
        Ok(match args.kind {
            Some(Kind::Container) => describe_sized(&runtime.inspect(name)?, runtime, args.size)?,
            Some(Kind::Image) => {
                image_cmd::describe_image(&Store::open(runtime.root())?.resolve(name)?)
            }
            Some(Kind::Network) => network_cmd::describe(&runtime.inspect_network(name)?),
            Some(Kind::Volume) => volume_cmd::describe(&runtime.inspect_volume(name)?),
            None => any_object(runtime, name, args.size)?,
        })
    })
}

/// As every `docker ... inspect` does: prints what `describe` found of
/// `names` as `format` says, after a line for each name it did not find;
/// exits 1 if any was not.
pub fn inspect_each(
    names: &[String],
    format: Option<&str>,
    mut describe: impl FnMut(&str) -> Result<Value>,
) -> Result<u8> {
    let mut described = Vec::new();
    let code = for_each_name(names, |name| {
        described.push(describe(name)?);
        Ok(())
    });
    print_inspected(format, &described)?;
    Ok(code)
}

/// The fields of inspected objects that Docker's structs hold as pointers
/// (`*Health`, `*HealthConfig`, `*int`, `*int64`), which a template prints
/// as `<nil>` when they are null or missing (an image's `Config` has no
/// `Healthcheck` unless it was set).
const NIL_POINTERS: [&str; 4] = [
    "State.Health",
    "Config.Healthcheck",
    "Config.StopTimeout",
    "HostConfig.PidsLimit",
];

/// An inspect command's `--format`: `json`, or a template that parses.
pub fn parse_format(value: &str) -> Result<String, String> {
    match value.trim() {
        "" | "json" => Ok(value.to_owned()),
        template => hull_format::check_template(template)
            .map(|()| value.to_owned())
            .map_err(|err| err.to_string()),
    }
}

/// Objects as `docker inspect` prints them: a JSON array (no format, or
/// `json`), or `format` rendered for each.
fn print_inspected(format: Option<&str>, described: &[Value]) -> Result<u8> {
    match format.map(str::trim) {
        None | Some("" | "json") => println!("{}", serde_json::to_string_pretty(described)?),
        Some(template) => {
            for object in described {
                println!("{}", render_one(template, object, &NIL_POINTERS)?);
            }
        }
    }
    Ok(0)
}

/// The container, image or network `name` names, in that order; with
/// `size`, a container's sizes too.
fn any_object(runtime: &Runtime, name: &str, size: bool) -> Result<Value> {
    match runtime.inspect(name) {
        Err(hull_runtime::Error::NoSuchContainer(_)) => {}
        found => return describe_sized(&found?, runtime, size),
    }
    if let Some(image) = Store::open(runtime.root())?.find(name).ok().flatten() {
        return Ok(image_cmd::describe_image(&image));
    }
    if let Ok(network) = runtime.inspect_network(name) {
        return Ok(network_cmd::describe(&network));
    }
    match runtime.inspect_volume(name) {
        Ok(volume) => Ok(volume_cmd::describe(&volume)),
        Err(_) => Err(NoSuchObject(name.to_owned()).into()),
    }
}

/// Go's zero time, which Docker shows for a time that has not come.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A container as `docker inspect` shows it, with `docker inspect -s`'s
/// sizes if `size`.
fn describe_sized(container: &ContainerInfo, runtime: &Runtime, size: bool) -> Result<Value> {
    let mut described = describe(container, runtime);
    if size {
        let image_bytes = match &container.config.boot.rootfs {
            RootfsSource::Image(id) => Store::open(runtime.root())?
                .find(id)?
                .map_or(0, |image| image.size),
            _ => 0,
        };
        let writable = container.writable_bytes;
        described["SizeRw"] = json!(writable);
        described["SizeRootFs"] = json!(writable + image_bytes);
    }
    Ok(described)
}

/// A container as `docker inspect` shows it, with Docker's field names and
/// types.
fn describe(container: &ContainerInfo, runtime: &Runtime) -> Value {
    let state = &container.state;
    let config = &container.config;
    let boot = &config.boot;
    let status = match state.paused {
        true => "paused",
        false => state.status.as_str(),
    };
    let (image_id, rootfs_dir) = match &boot.rootfs {
        RootfsSource::Image(id) => (id.clone(), None),
        RootfsSource::Directory(dir) => (String::new(), Some(dir.display().to_string())),
        RootfsSource::Layers(_) => (String::new(), None),
    };
    let (entrypoint, cmd) = boot.argv.split_at(boot.entrypoint_len.min(boot.argv.len()));
    let network = &boot.network;
    let exposed: serde_json::Map<String, Value> = config
        .exposed_ports
        .iter()
        .cloned()
        .chain(network.ports.iter().map(|port| port.container_side()))
        .map(|port| (port, json!({})))
        .collect();
    let stop_signal = config.stop_signal.unwrap_or(libc::SIGTERM);
    json!({
        "Id": container.id(),
        "Name": format!("/{}", config.name),
        "Created": config.created,
        "Path": boot.argv.first(),
        "Args": boot.argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": status,
            "Running": state.status == Status::Running,
            "Paused": state.paused,
            "Restarting": state.status == Status::Restarting,
            "OOMKilled": state.oom_killed,
            "Dead": false,
            "Pid": state.pid.unwrap_or(0),
            "ExitCode": state.exit_code.unwrap_or(0),
            "Error": state.error.clone().unwrap_or_default(),
            "StartedAt": state.started_at.as_deref().unwrap_or(ZERO_TIME),
            "FinishedAt": state.finished_at.as_deref().unwrap_or(ZERO_TIME),
            "Health": state.health.as_ref().map(health),
        },
        "RestartCount": state.restart_count,
        "Image": image_id,
        "LogPath": container.log_path,
        "Mounts": mounts(&boot.mounts, runtime),
        "Config": {
            "Hostname": boot.hostname,
            "Domainname": boot.domainname,
            "User": boot.user,
            "Tty": boot.tty.is_some(),
            "OpenStdin": config.interactive,
            "Env": boot.env,
            "Cmd": cmd,
            "Entrypoint": (!entrypoint.is_empty()).then_some(entrypoint),
            "Image": config.image,
            "WorkingDir": boot.cwd,
            "Labels": config.labels,
            "Volumes": anonymous_volumes(&boot.mounts),
            "ExposedPorts": exposed,
            "StopSignal": signal_name(stop_signal),
            "StopTimeout": config.stop_timeout,
            "Healthcheck": config.healthcheck.as_ref().map(healthcheck),
            "Rootfs": rootfs_dir,
        },
        "NetworkSettings": network_settings(network, &config.exposed_ports, runtime),
        "HostConfig": host_config(config),
    })
}

/// Docker's `HostConfig`: how the container was asked to run.
fn host_config(config: &ContainerConfig) -> Value {
    let boot = &config.boot;
    let network = &boot.network;
    let limits = &boot.limits;
    let (cap_add, cap_drop) = capability_changes(limits.capabilities.as_deref());
    json!({
        "NetworkMode": network.primary().map_or("none", |e| e.network.as_str()),
        "PortBindings": port_bindings(network),
        "AutoRemove": config.auto_remove,
        "RestartPolicy": restart_policy(config.restart),
        "LogConfig": log_config(config),
        "Init": true,
        "NanoCpus": boot.nano_cpus.unwrap_or(u64::from(boot.cpus) * 1_000_000_000),
        "CpusetCpus": boot.cpuset_cpus.as_ref().map(ToString::to_string).unwrap_or_default(),
        "Memory": boot.memory_mib << 20,
        "MemoryReservation": limits.memory_low_bytes.unwrap_or(0),
        "CpuShares": limits.cpu_weight.map_or(0, |weight| weight * 1024 / 100),
        "PidsLimit": limits.pids_max,
        "OomScoreAdj": limits.oom_score_adj.unwrap_or(0),
        "StorageOpt": boot.scratch_bytes.map(|bytes| json!({ "size": bytes.to_string() })),
        "Ulimits": limits.rlimits.iter().map(|r| json!({
            "Name": r.name, "Soft": ulimit_value(r.soft), "Hard": ulimit_value(r.hard),
        })).collect::<Vec<_>>(),
        "ShmSize": limits.shm_size_bytes.unwrap_or(64 << 20),
        "Privileged": limits.capabilities.is_none(),
        "CapAdd": cap_add,
        "CapDrop": cap_drop,
        "Sysctls": limits.sysctls.iter().cloned().collect::<BTreeMap<_, _>>(),
        "GroupAdd": (!limits.additional_groups.is_empty()).then_some(&limits.additional_groups),
        "SecurityOpt": limits.no_new_privileges.then_some(["no-new-privileges"]),
        "Dns": network.dns,
        "DnsSearch": network.dns_search,
        "DnsOptions": network.dns_options,
        "ExtraHosts": extra_hosts(&network.extra_hosts),
        "ReadonlyRootfs": boot.read_only,
        "Binds": binds(&boot.mounts),
        "Tmpfs": tmpfs(&boot.mounts),
        "Kernel": boot.kernel,
    })
}

/// Docker's `HostConfig.ExtraHosts`: the `--add-host` entries as given,
/// or null for none.
fn extra_hosts(entries: &[HostEntry]) -> Option<Vec<String>> {
    let given = entries
        .iter()
        .map(|entry| format!("{}:{}", entry.name, String::from(entry.address)));
    (!entries.is_empty()).then(|| given.collect())
}

/// Docker's `HostConfig.LogConfig`: the driver and its options.
fn log_config(config: &ContainerConfig) -> Value {
    let options = match config.log_driver {
        LogDriver::JsonFile => json!({
            "max-size": config.log_limits.max_size.to_string(),
            "max-file": config.log_limits.max_files.to_string(),
        }),
        LogDriver::None => json!({}),
    };
    json!({ "Type": config.log_driver.name(), "Config": options })
}

/// Docker's `State.Health`.
fn health(health: &Health) -> Value {
    let log: Vec<Value> = health
        .log
        .iter()
        .map(|result| {
            json!({
                "Start": result.start,
                "End": result.end,
                "ExitCode": result.exit_code,
                "Output": result.output,
            })
        })
        .collect();
    json!({
        "Status": health.status.as_str(),
        "FailingStreak": health.failing_streak,
        "Log": log,
    })
}

/// Docker's `Config.Healthcheck`: durations in nanoseconds, 0 for the
/// default.
fn healthcheck(config: &HealthConfig) -> Value {
    let nanos = |duration: Option<Duration>| duration.map_or(0, |d| d.as_nanos() as u64);
    json!({
        "Test": config.test,
        "Interval": nanos(config.interval),
        "Timeout": nanos(config.timeout),
        "StartPeriod": nanos(config.start_period),
        "StartInterval": nanos(config.start_interval),
        "Retries": config.retries.unwrap_or(0),
    })
}

/// Docker's `Mounts`: each bind, volume and tmpfs with its host side.
fn mounts(mounts: &[Mount], runtime: &Runtime) -> Vec<Value> {
    mounts
        .iter()
        .map(|mount| {
            let (kind, name, source) = match &mount.source {
                MountSource::Bind { path, .. } => ("bind", None, path.clone()),
                MountSource::Volume { name, .. } => {
                    ("volume", Some(name), runtime.volume_mountpoint(name))
                }
                MountSource::Tmpfs { .. } => ("tmpfs", None, PathBuf::new()),
            };
            let mut described = json!({
                "Type": kind,
                "Source": source,
                "Destination": mount.target,
                "Mode": if mount.read_only { "ro" } else { "" },
                "RW": !mount.read_only,
                "Propagation": if kind == "bind" { "rprivate" } else { "" },
            });
            // As Docker's: only a volume has a name and a driver.
            if let Some(name) = name {
                described["Name"] = json!(name);
                described["Driver"] = json!("local");
            }
            described
        })
        .collect()
}

/// Docker's `Config.Volumes`: the targets of anonymous volumes (an image's
/// `VOLUME`s, `-v /path`), or null for none.
fn anonymous_volumes(mounts: &[Mount]) -> Option<BTreeMap<&str, Value>> {
    let targets: BTreeMap<&str, Value> = mounts
        .iter()
        .filter(|mount| {
            matches!(&mount.source, MountSource::Volume { name, .. } if is_anonymous_volume(name))
        })
        .map(|mount| (mount.target.as_str(), json!({})))
        .collect();
    (!targets.is_empty()).then_some(targets)
}

/// Docker's `HostConfig.Binds`: `SOURCE:TARGET[:ro]` for binds and named
/// volumes.
fn binds(mounts: &[Mount]) -> Vec<String> {
    let bind = |mount: &Mount| {
        let source = match &mount.source {
            MountSource::Bind { path, .. } => path.display().to_string(),
            MountSource::Volume { name, .. } => name.clone(),
            MountSource::Tmpfs { .. } => return None,
        };
        let mode = if mount.read_only { ":ro" } else { "" };
        Some(format!("{source}:{}{mode}", mount.target))
    };
    mounts.iter().filter_map(bind).collect()
}

/// Docker's `HostConfig.Tmpfs`: options by target.
fn tmpfs(mounts: &[Mount]) -> BTreeMap<String, String> {
    let entry = |mount: &Mount| match &mount.source {
        MountSource::Tmpfs { size_bytes, mode } => {
            let mut options = Vec::new();
            options.extend(mount.read_only.then(|| "ro".to_owned()));
            options.extend(size_bytes.map(|size| format!("size={size}")));
            options.extend(mode.map(|mode| format!("mode={mode:o}")));
            Some((mount.target.clone(), options.join(",")))
        }
        _ => None,
    };
    mounts.iter().filter_map(entry).collect()
}

/// Docker's `CapAdd` and `CapDrop`: the differences of `kept` from the
/// default set (none for a privileged container).
fn capability_changes(kept: Option<&[String]>) -> (Vec<String>, Vec<String>) {
    let Some(kept) = kept else {
        return (Vec::new(), Vec::new());
    };
    let default = DEFAULT_CAPABILITIES;
    let added = kept.iter().filter(|cap| !default.contains(&cap.as_str()));
    let dropped = default.iter().filter(|cap| !kept.iter().any(|k| k == *cap));
    (
        added.map(|cap| format!("CAP_{cap}")).collect(),
        dropped.map(|cap| format!("CAP_{cap}")).collect(),
    )
}

/// A ulimit as Docker shows it: -1 for unlimited.
fn ulimit_value(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(-1)
}

/// `SIGTERM`, as Docker names a stop signal.
fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|signal| signal.as_str().to_owned())
        .unwrap_or_else(|_| signal.to_string())
}

/// Docker's `HostConfig.PortBindings`: each published port's host sides
/// as asked for (an address of all zeros as "").
fn port_bindings(network: &ContainerNetwork) -> Value {
    let mut bindings = serde_json::Map::new();
    for mapping in &network.ports {
        let host_ip = match mapping.host_ip.is_unspecified() {
            true => String::new(),
            false => mapping.host_ip.to_string(),
        };
        let entry = bindings
            .entry(mapping.container_side())
            .or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(json!({ "HostIp": host_ip, "HostPort": mapping.host_port.to_string() }));
        }
    }
    Value::Object(bindings)
}

/// Docker's form: the address, and each published port's bindings by
/// container side (`"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]`).
fn network_settings(network: &ContainerNetwork, exposed: &[String], runtime: &Runtime) -> Value {
    // Exposed and not published: null, as Docker lists them.
    let mut ports: serde_json::Map<String, Value> = exposed
        .iter()
        .map(|port| (port.clone(), Value::Null))
        .collect();
    for mapping in &network.ports {
        let bindings = ports.entry(mapping.container_side()).or_insert(Value::Null);
        if bindings.is_null() {
            *bindings = json!([]);
        }
        if let Value::Array(bindings) = bindings {
            bindings.push(json!({
                "HostIp": mapping.host_ip.to_string(),
                "HostPort": mapping.host_port.to_string(),
            }));
        }
    }
    // A network removed since is shown without its gateway and ID.
    let defined = runtime.list_networks().unwrap_or_default();
    let endpoint_settings = |e: &Endpoint| {
        let on = defined.iter().find(|n| n.name == e.network);
        json!({
            "IPAddress": e.address.to_string(),
            "IPPrefixLen": on.map_or(0, |n| n.subnet.prefix_len),
            "Gateway": on.map(|n| n.gateway.to_string()).unwrap_or_default(),
            "MacAddress": e.mac.to_string(),
            "NetworkID": on.map(|n| n.id.as_str()).unwrap_or_default(),
            "Aliases": e.aliases,
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPv6Gateway": "",
        })
    };
    let networks: serde_json::Map<String, Value> = network
        .endpoints
        .iter()
        .map(|e| (e.network.clone(), endpoint_settings(e)))
        .collect();
    // The first network's settings also stand at the top, as Docker's
    // default bridge's do.
    let primary = network.primary().map(endpoint_settings);
    let field = |name: &str, none: Value| primary.as_ref().map_or(none, |p| p[name].clone());
    json!({
        "IPAddress": network.primary().map(|e| e.address.to_string()).unwrap_or_default(),
        "IPPrefixLen": field("IPPrefixLen", json!(0)),
        "Gateway": field("Gateway", json!("")),
        "MacAddress": network.primary().map(|e| e.mac.to_string()).unwrap_or_default(),
        "Ports": ports,
        "Networks": networks,
    })
}

/// Docker's form: `{"Name": "on-failure", "MaximumRetryCount": 3}`.
fn restart_policy(policy: RestartPolicy) -> Value {
    let (name, max_retries) = match policy {
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries.unwrap_or(0)),
        RestartPolicy::No => ("no", 0),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
    };
    json!({ "Name": name, "MaximumRetryCount": max_retries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_that_does_not_parse_is_refused_before_any_lookup() {
        assert_eq!(parse_format("json").unwrap(), "json");
        assert_eq!(parse_format("{{.State.Pid}}").unwrap(), "{{.State.Pid}}");
        let err = parse_format("{{.State").unwrap_err();
        assert!(err.starts_with("template parsing error: "), "{err}");
    }
}
