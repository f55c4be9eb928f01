//! `hull ps`: containers, as Docker lists them.

use anyhow::Result;
use clap::Args;
use hull_runtime::{ContainerInfo, HealthStatus, Mount, MountSource, PortMapping, Runtime, Status};
use serde_json::{json, Value};

use hull_format::{labels_field, render_rows, Format, Listing};

use super::ps_filter::{status_word, Filter, Resolved};
use crate::filters::all_hold;
use crate::times::{created_at, human_duration_since};

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    all: bool,
    /// Print only container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Only containers matching: status=created|running|paused|restarting|
    /// exited, name=PATTERN, id=PREFIX, label=KEY[=VALUE],
    /// health=starting|healthy|unhealthy|none, ancestor=IMAGE (or one built
    /// on it), exited=CODE, before=CONTAINER, since=CONTAINER,
    /// volume=NAME|PATH, network=NAME|ID, publish=PORT[/PROTO],
    /// expose=PORT[/PROTO] (a port or a range). Values of one key are
    /// alternatives; all keys must match.
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = Filter::parse)]
    filter: Vec<Filter>,
    /// Show full IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Only the N containers created last (in any state).
    #[arg(short = 'n', long, value_name = "N")]
    last: Option<usize>,
    /// Only the container created last (in any state).
    #[arg(short, long)]
    latest: bool,
    /// Show what each container's writable layer takes on the host.
    #[arg(short, long)]
    size: bool,
    /// `table` (default), `json` (one object per line), or a Go template
    /// (`{{.Names}}`; `table {{.ID}}\t{{.Status}}` for a table).
    #[arg(long, default_value = "")]
    format: Format,
}

/// `docker ps`'s default table.
const LISTING: Listing = Listing {
    default_format:
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("State", "STATE"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
        ("Networks", "NETWORKS"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ],
};

/// `docker ps -s`'s table: the default one and the size.
const SIZED_LISTING: Listing = Listing {
    default_format: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}",
    headers: LISTING.headers,
};

pub fn ps(args: PsArgs, runtime: &Runtime) -> Result<u8> {
    // A status filter shows containers in any state, as in Docker.
    let last = args.last.or(args.latest.then_some(1));
    let any_status =
        args.all || last.is_some() || args.filter.iter().any(|f| matches!(f, Filter::Status(_)));
    let filters = Resolved::new(runtime, args.filter)?;
    let listed = runtime.list()?.into_iter().rev().filter(|container| {
        (any_status || container.state.monitor_pid().is_some())
            && all_hold(&filters.list, |filter| filters.holds(filter, container))
    });
    let listed = listed.take(last.unwrap_or(usize::MAX));
    let id = |container: &ContainerInfo| match args.no_trunc {
        true => container.id().to_owned(),
        false => container.short_id().to_owned(),
    };
    if args.quiet {
        listed.for_each(|container| println!("{}", id(&container)));
        return Ok(0);
    }
    let rows: Vec<Value> = listed
        .map(|container| row(&container, args.no_trunc))
        .collect();
    let listing = match args.size {
        true => &SIZED_LISTING,
        false => &LISTING,
    };
    render_rows(&args.format, listing, &rows, &mut std::io::stdout())?;
    Ok(0)
}

/// A container as `docker ps` shows it.
pub fn row(container: &ContainerInfo, no_trunc: bool) -> Value {
    let state = &container.state;
    let status = match state.status {
        Status::Created => "Created".to_owned(),
        Status::Running if state.paused => format!(
            "Up {} (Paused)",
            duration_since(state.started_at.as_deref())
        ),
        Status::Running => {
            let health = match state.health.as_ref().map(|health| health.status) {
                None => "",
                Some(HealthStatus::Starting) => " (health: starting)",
                Some(HealthStatus::Healthy) => " (healthy)",
                Some(HealthStatus::Unhealthy) => " (unhealthy)",
            };
            format!("Up {}{health}", duration_since(state.started_at.as_deref()))
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code.unwrap_or(-1),
            duration_since(state.finished_at.as_deref())
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code.unwrap_or(-1),
            duration_since(state.finished_at.as_deref())
        ),
    };
    let config = &container.config;
    let network = &config.boot.network;
    let command = config.boot.argv.join(" ");
    json!({
        "ID": match no_trunc {
            true => container.id(),
            false => container.short_id(),
        },
        "Image": config.image,
        "Command": match no_trunc {
            true => format!("{command:?}"),
            false => format!("\"{}\"", truncate(&command, 20)),
        },
        "CreatedAt": created_at(&config.created),
        "RunningFor": format!("{} ago", duration_since(Some(&config.created))),
        "Status": status,
        "State": status_word(container),
        "Labels": labels_field(&config.labels),
        "Size": crate::image_cmd::human_size(container.writable_bytes, 3),
        "Ports": match state.status {
            Status::Running => ports(container),
            _ => String::new(),
        },
        "Names": config.name,
        "Mounts": mount_names(&config.boot.mounts, no_trunc),
        "LocalVolumes": config.boot.mounts.iter().filter(|m| matches!(m.source, MountSource::Volume { .. })).count().to_string(),
        "Networks": match network.endpoints.is_empty() {
            true => "none".to_owned(),
            false => network.endpoints.iter().map(|e| e.network.as_str()).collect::<Vec<_>>().join(","),
        },
    })
}

/// The published ports, as `docker ps` lists them.
fn ports(container: &ContainerInfo) -> String {
    displayable_ports(&container.config.boot.network.ports)
}

/// Published ports as Docker's `ps` shows them: in order of container
/// port, those published on the same port number of the host in runs
/// (`0.0.0.0:8000-8002->8000-8002/tcp`), a run ended by a gap shown
/// first, then the others one by one.
fn displayable_ports(ports: &[PortMapping]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by_key(|p| {
        (
            p.container_port,
            p.host_ip.to_string(),
            p.host_port,
            p.protocol.to_string(),
        )
    });
    // Runs by host address and protocol: (key, first, last).
    let mut runs: Vec<(String, u16, u16)> = Vec::new();
    let mut shown = Vec::new();
    let mut others = Vec::new();
    for port in &ports {
        if port.host_port != port.container_port {
            others.push(port.to_string());
            continue;
        }
        let key = format!("{}:{}", port.host_ip, port.protocol);
        let current = port.container_port;
        match runs.iter_mut().find(|(k, _, _)| *k == key) {
            Some(run) if run.2.checked_add(1) == Some(current) => run.2 = current,
            Some(run) => {
                shown.push(run_text(run));
                (run.1, run.2) = (current, current);
            }
            None => runs.push((key, current, current)),
        }
    }
    shown.extend(runs.iter().map(run_text));
    shown.extend(others);
    shown.join(", ")
}

/// `0.0.0.0:8000-8002->8000-8002/tcp` for a run keyed `0.0.0.0:tcp`.
fn run_text((key, first, last): &(String, u16, u16)) -> String {
    let (ip, protocol) = key.rsplit_once(':').expect("keys are IP:PROTOCOL");
    let ports = match first == last {
        true => first.to_string(),
        false => format!("{first}-{last}"),
    };
    format!("{ip}:{ports}->{ports}/{protocol}")
}

/// Docker's `Mounts` column: each volume's name and each bind's host
/// path, cut to 15 characters unless `no_trunc`.
fn mount_names(mounts: &[Mount], no_trunc: bool) -> String {
    let name = |mount: &Mount| {
        let name = match &mount.source {
            MountSource::Volume { name, .. } => name.clone(),
            MountSource::Bind { path, .. } => path.display().to_string(),
            MountSource::Tmpfs { .. } => return None,
        };
        Some(match no_trunc {
            true => name,
            false => truncate(&name, 15),
        })
    };
    mounts.iter().filter_map(name).collect::<Vec<_>>().join(",")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// "3 minutes", as Docker words a duration up to now.
fn duration_since(time: Option<&str>) -> String {
    time.and_then(human_duration_since)
        .unwrap_or_else(|| "N/A".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_show_in_runs_as_dockers_ps_shows_them() {
        let port = |ip: [u8; 4], host: u16, container: u16, protocol| PortMapping {
            host_ip: ip.into(),
            host_port: host,
            container_port: container,
            protocol,
        };
        use hull_runtime::Protocol::{Tcp, Udp};
        let ports = [
            port([0; 4], 9001, 9001, Tcp),
            port([0; 4], 8080, 80, Tcp),
            port([0; 4], 9000, 9000, Tcp),
            port([0; 4], 9002, 9002, Udp),
            port([0; 4], 9003, 9003, Tcp),
            port([127, 0, 0, 1], 9004, 9004, Tcp),
        ];
        assert_eq!(
            displayable_ports(&ports),
            "0.0.0.0:9000-9001->9000-9001/tcp, 0.0.0.0:9003->9003/tcp, \
             0.0.0.0:9002->9002/udp, 127.0.0.1:9004->9004/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn mounts_are_named_by_volume_or_host_path() {
        let mount = |source| Mount {
            target: "/data".into(),
            source,
            read_only: false,
        };
        let mounts = [
            mount(MountSource::Volume {
                name: "a-rather-long-volume-name".into(),
                copy: true,
                subpath: None,
            }),
            mount(MountSource::Bind {
                path: "/srv/app".into(),
                create: false,
            }),
            mount(MountSource::Tmpfs {
                size_bytes: None,
                mode: None,
            }),
        ];
        assert_eq!(mount_names(&mounts, false), "a-rather-long-…,/srv/app");
        assert_eq!(
            mount_names(&mounts, true),
            "a-rather-long-volume-name,/srv/app"
        );
    }

    #[test]
    fn long_commands_are_cut() {
        assert_eq!(truncate("sleep 5", 20), "sleep 5");
        assert_eq!(
            truncate("sh -c 'while true; do sleep 1; done'", 10),
            "sh -c 'wh…"
        );
    }
}
