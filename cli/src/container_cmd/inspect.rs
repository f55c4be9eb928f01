//! `hull inspect`: containers as JSON, in the shape of `docker inspect`.

use anyhow::Result;
use clap::Args;
use hull_runtime::{ContainerInfo, ContainerNetwork, RestartPolicy, RootfsSource, Runtime, Status};
use serde_json::{json, Value};

use hull_format::render_one;

use super::for_each_name;

#[derive(Args)]
pub struct InspectArgs {
    /// A Go template for each container, e.g.
    /// `{{.NetworkSettings.IPAddress}}` or `{{json .State}}`.
    #[arg(short, long)]
    format: Option<String>,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// As `docker inspect`: what was found, and a line for each name that was
/// not (exit code 1).
pub fn inspect(args: InspectArgs, runtime: &Runtime) -> Result<u8> {
    let mut described = Vec::new();
    let code = for_each_name(&args.containers, |name| {
        described.push(describe(&runtime.inspect(name)?));
        Ok(())
    });
    print_inspected(args.format.as_deref(), &described)?;
    Ok(code)
}

/// Objects as `docker inspect` prints them: a JSON array (no format, or
/// `json`), or `format` rendered for each.
pub fn print_inspected(format: Option<&str>, described: &[Value]) -> Result<u8> {
    match format.map(str::trim) {
        None | Some("" | "json") => println!("{}", serde_json::to_string_pretty(described)?),
        Some(template) => {
            for object in described {
                println!("{}", render_one(template, object)?);
            }
        }
    }
    Ok(0)
}

fn describe(container: &ContainerInfo) -> Value {
    let state = &container.state;
    let config = &container.config;
    let boot = &config.boot;
    let status = state.status.as_str();
    let (image_id, rootfs_dir) = match &boot.rootfs {
        RootfsSource::Image(id) => (Some(id.clone()), None),
        RootfsSource::Directory(dir) => (None, Some(dir.display().to_string())),
    };
    json!({
        "Id": container.id(),
        "Name": format!("/{}", config.name),
        "Created": config.created,
        "Path": boot.argv.first(),
        "Args": boot.argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": status,
            "Running": state.status == Status::Running,
            "Restarting": state.status == Status::Restarting,
            "Pid": state.pid,
            "ExitCode": state.exit_code.unwrap_or(0),
            "Error": state.error.clone().unwrap_or_default(),
            "OOMKilled": state.oom_killed,
            "StartedAt": state.started_at,
            "FinishedAt": state.finished_at,
        },
        "RestartCount": state.restart_count,
        "Image": image_id,
        "LogPath": container.log_path,
        "Config": {
            "Hostname": boot.hostname,
            "User": boot.user,
            "Env": boot.env,
            "Cmd": boot.argv,
            "Image": config.image,
            "WorkingDir": boot.cwd,
            "Rootfs": rootfs_dir,
        },
        "NetworkSettings": network_settings(&boot.network),
        "HostConfig": {
            "AutoRemove": config.auto_remove,
            "RestartPolicy": restart_policy(config.restart),
            "LogConfig": {
                "Type": "json-file",
                "Config": {
                    "max-size": config.log_limits.max_size.to_string(),
                    "max-file": config.log_limits.max_files.to_string(),
                },
            },
            "NanoCpus": u64::from(boot.cpus) * 1_000_000_000,
            "Memory": boot.memory_mib << 20,
            "Kernel": boot.kernel,
        },
    })
}

/// Docker's form: the address, and each published port's bindings by
/// container side (`"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]`).
fn network_settings(network: &ContainerNetwork) -> Value {
    let mut ports = serde_json::Map::new();
    for mapping in &network.ports {
        let bindings = ports
            .entry(mapping.container_side())
            .or_insert_with(|| json!([]));
        if let Value::Array(bindings) = bindings {
            bindings.push(json!({
                "HostIp": mapping.host_ip.to_string(),
                "HostPort": mapping.host_port.to_string(),
            }));
        }
    }
    let endpoint = network.endpoint.as_ref();
    let networks: serde_json::Map<String, Value> = endpoint
        .map(|e| {
            (
                e.network.clone(),
                json!({ "IPAddress": e.address.to_string(), "MacAddress": e.mac.to_string() }),
            )
        })
        .into_iter()
        .collect();
    json!({
        "IPAddress": endpoint.map(|e| e.address.to_string()).unwrap_or_default(),
        "MacAddress": endpoint.map(|e| e.mac.to_string()).unwrap_or_default(),
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
