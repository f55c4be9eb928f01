//! `hull inspect`: containers as JSON, in the shape of `docker inspect`.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::container::{self, Container, RootfsSource, Status};
use crate::state::StateRoot;

#[derive(Args)]
pub struct InspectArgs {
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn inspect(args: InspectArgs, root: &StateRoot) -> Result<u8> {
    let mut described = Vec::new();
    for name in &args.containers {
        described.push(describe(&container::find(root, name)?)?);
    }
    println!("{}", serde_json::to_string_pretty(&described)?);
    Ok(0)
}

fn describe(container: &Container) -> Result<Value> {
    let state = container.state()?;
    let config = &container.config;
    let boot = &config.boot;
    let status = match state.status {
        Status::Created => "created",
        Status::Running => "running",
        Status::Exited => "exited",
    };
    let (image_id, rootfs_dir) = match &boot.rootfs {
        RootfsSource::Image(id) => (Some(id.clone()), None),
        RootfsSource::Directory(dir) => (None, Some(dir.display().to_string())),
    };
    Ok(json!({
        "Id": container.id(),
        "Name": format!("/{}", config.name),
        "Created": config.created,
        "Path": boot.argv.first(),
        "Args": boot.argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": status,
            "Running": state.status == Status::Running,
            "Pid": state.pid,
            "ExitCode": state.exit_code.unwrap_or(0),
            "Error": state.error.clone().unwrap_or_default(),
            "OOMKilled": false,
            "StartedAt": state.started_at,
            "FinishedAt": state.finished_at,
        },
        "Image": image_id,
        "LogPath": container.log_path(),
        "Config": {
            "Hostname": boot.hostname,
            "User": boot.user,
            "Env": boot.env,
            "Cmd": boot.argv,
            "Image": config.image,
            "WorkingDir": boot.cwd,
            "Rootfs": rootfs_dir,
        },
        "HostConfig": {
            "AutoRemove": config.auto_remove,
            "NanoCpus": u64::from(boot.cpus) * 1_000_000_000,
            "Memory": boot.memory_mib << 20,
            "Kernel": boot.kernel,
        },
    }))
}
