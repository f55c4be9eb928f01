//! What the project and its containers look like: `compose ps`, `logs`,
//! `config`, `top`, `images`, `port`, `ls` and `events`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use clap::Args;
use hull_compose::{follow, list_projects, service_of, Compose, LogLine, DEFAULT_NETWORK};
use hull_format::{render_rows, Format, Listing};
use hull_runtime::{ContainerInfo, Runtime, Status};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use super::lifecycle::ServicesArgs;
use super::log_printer::LogPrinter;
use crate::container_cmd::{print_processes, ps_row, LogSelection, PsFormat};
use crate::image_cmd::human_size;

/// `compose ps`'s flags.
#[derive(Args)]
pub struct PsArgs {
    /// Show stopped containers too.
    #[arg(short, long)]
    all: bool,
    /// Print only container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Print only the services' names.
    #[arg(long)]
    services: bool,
    /// Only containers in this state: created, running, paused,
    /// restarting, exited.
    #[arg(long, value_name = "STATUS", value_parser = STATES)]
    status: Vec<String>,
    /// Only containers matching: status=STATUS (as --status).
    #[arg(long, value_name = "KEY=VALUE", value_parser = status_filter)]
    filter: Vec<String>,
    /// `table` (default), `json` (one object per line), or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
    /// The services (default: all).
    #[arg(value_name = "SERVICE")]
    service_names: Vec<String>,
}

/// The states `compose ps --status` selects by.
const STATES: [&str; 5] = ["created", "running", "paused", "restarting", "exited"];

/// `status=STATE`, the one filter `docker compose ps` has: the state.
fn status_filter(filter: &str) -> Result<String, String> {
    match filter.split_once('=') {
        Some(("status", state)) if STATES.contains(&state) => Ok(state.to_owned()),
        Some(("status", state)) => Err(format!(
            "invalid status {state:?}: give one of {}",
            STATES.join(", ")
        )),
        _ => Err(format!(
            "invalid filter {filter:?}: compose ps filters by status=STATE only"
        )),
    }
}

/// `docker compose ps`'s table.
const PS_LISTING: Listing = Listing {
    default_format:
        "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("Service", "SERVICE"),
        ("Project", "PROJECT"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("State", "STATE"),
        ("Health", "HEALTH"),
        ("ExitCode", "EXIT CODE"),
        ("Ports", "PORTS"),
        ("Networks", "NETWORKS"),
    ],
};

pub fn ps(mut args: PsArgs, compose: &Compose) -> Result<u8> {
    args.status.append(&mut args.filter);
    let any_state = args.all || !args.status.is_empty();
    let containers: Vec<ContainerInfo> = compose
        .listed_containers(&args.service_names, any_state)?
        .into_iter()
        .filter(|c| args.status.is_empty() || args.status.iter().any(|s| s == state_word(c)))
        .collect();
    if args.services {
        let mut names: Vec<&str> = containers.iter().filter_map(service_of).collect();
        names.dedup();
        names.iter().for_each(|name| println!("{name}"));
        return Ok(0);
    }
    if args.quiet {
        containers.iter().for_each(|c| println!("{}", c.id()));
        return Ok(0);
    }
    let rows: Vec<Value> = containers.iter().map(ps_compose_row).collect();
    render_rows(&args.format, &PS_LISTING, &rows, &mut std::io::stdout())?;
    Ok(0)
}

/// A container as `docker compose ps` shows it: `docker ps`'s row with
/// its service, project, health and exit code, and the command whole.
fn ps_compose_row(container: &ContainerInfo) -> Value {
    let mut row = ps_row(container, false);
    let state = &container.state;
    let labels = &container.config.labels;
    let extra = json!({
        "Name": container.name(),
        "Service": service_of(container).unwrap_or_default(),
        "Project": labels.get("com.docker.compose.project").cloned().unwrap_or_default(),
        "Command": format!("\"{}\"", container.config.boot.argv.join(" ")),
        "Health": match (state.status, &state.health) {
            (Status::Running, Some(health)) => health.status.as_str(),
            _ => "",
        },
        "ExitCode": state.exit_code.unwrap_or(0),
        "Publishers": container.config.boot.network.ports.iter().map(|p| json!({
            "URL": p.host_ip.to_string(),
            "TargetPort": p.container_port,
            "PublishedPort": p.host_port,
            "Protocol": p.protocol.to_string(),
        })).collect::<Vec<_>>(),
    });
    if let (Value::Object(row), Value::Object(extra)) = (&mut row, extra) {
        row.extend(extra);
    }
    row
}

/// Docker's state word: `paused` for a paused running container.
fn state_word(container: &ContainerInfo) -> &'static str {
    match container.state.paused {
        true => "paused",
        false => container.state.status.as_str(),
    }
}

/// `compose logs`'s flags.
#[derive(Args)]
pub struct LogsArgs {
    #[command(flatten)]
    selection: LogSelection,
    /// Leave out the `service-N |` prefixes.
    #[arg(long)]
    no_log_prefix: bool,
    /// Accepted for Docker's sake: hull prints no colours.
    #[arg(long)]
    no_color: bool,
    /// The services (default: all).
    services: Vec<String>,
}

pub fn logs(args: LogsArgs, compose: &Compose) -> Result<u8> {
    let runtime = compose.runtime();
    let names: Vec<String> = compose
        .service_containers(&args.services, true)?
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let printer = LogPrinter::new(&compose.project().name, &names)
        .without_prefix(args.no_log_prefix)
        .with_timestamps(args.selection.timestamps);
    let options = args.selection.options();
    let lines = follow(runtime, &names, options);
    let mut failed = false;
    for line in lines {
        failed |= matches!(line, LogLine::End { error: Some(_), .. });
        printer.print(line);
    }
    Ok(u8::from(failed))
}

/// `compose config`'s flags.
#[derive(Args)]
pub struct ConfigArgs {
    /// Print only the services' names.
    #[arg(long)]
    services: bool,
    /// Print only the volumes' names.
    #[arg(long)]
    volumes: bool,
    /// Print only the networks' names.
    #[arg(long)]
    networks: bool,
    /// Print only the images the services run.
    #[arg(long)]
    images: bool,
    /// Print only the profiles the services name.
    #[arg(long)]
    profiles: bool,
    /// Check the files, print nothing.
    #[arg(short, long)]
    quiet: bool,
    /// yaml (default) or json.
    #[arg(long, value_parser = ["yaml", "json"], default_value = "yaml")]
    format: String,
    /// Write it into this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

pub fn config(args: ConfigArgs, compose: &Compose) -> Result<u8> {
    let project = compose.project();
    let file = &project.file;
    // Compose lists services by name, each after its dependencies, and
    // networks and volumes by name.
    let active = project.listed_services()?;
    let list: Option<Vec<String>> = if args.services {
        Some(active)
    } else if args.volumes {
        let mut volumes: Vec<String> = file.volumes.keys().cloned().collect();
        volumes.sort();
        Some(volumes)
    } else if args.networks {
        let mut networks: Vec<String> = file.networks.keys().cloned().collect();
        let uses_default = active.iter().filter_map(|s| file.services.get(s)).any(|s| {
            project
                .service_networks(s)
                .iter()
                .any(|n| n == DEFAULT_NETWORK)
        });
        if uses_default && !networks.iter().any(|n| n == DEFAULT_NETWORK) {
            networks.push(DEFAULT_NETWORK.to_owned());
        }
        networks.sort();
        Some(networks)
    } else if args.images {
        Some(
            active
                .iter()
                .map(|s| match &file.services[s].image {
                    Some(image) => image.clone(),
                    None => format!("{}-{s}", project.name),
                })
                .collect(),
        )
    } else if args.profiles {
        let mut profiles: Vec<String> = file
            .services
            .values()
            .flat_map(|s| s.profiles.iter().cloned())
            .collect();
        profiles.sort();
        profiles.dedup();
        Some(profiles)
    } else {
        None
    };
    if args.quiet {
        return Ok(0);
    }
    let text = match list {
        Some(names) => names.iter().map(|name| format!("{name}\n")).collect(),
        None => hull_compose::render_config(project, args.format == "json")?,
    };
    match &args.output {
        Some(path) => {
            crate::output_file::write_whole(path, |out| Ok(out.write_all(text.as_bytes())?))?
        }
        None => print!("{text}"),
    }
    Ok(0)
}

pub fn top(args: ServicesArgs, compose: &Compose) -> Result<u8> {
    for (index, (name, processes)) in compose.top(&args.services)?.iter().enumerate() {
        if index > 0 {
            println!();
        }
        println!("{name}");
        print_processes(&PsFormat::default(), processes)?;
    }
    Ok(0)
}

/// `docker compose images`' table.
const IMAGES_LISTING: Listing = Listing {
    default_format: "table {{.ContainerName}}\t{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}",
    headers: &[
        ("ContainerName", "CONTAINER"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("ID", "IMAGE ID"),
        ("Size", "SIZE"),
    ],
};

/// `compose images`' flags.
#[derive(Args)]
pub struct ImagesArgs {
    /// Print only image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// `table` (default), `json`, or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
    /// The services (default: all).
    services: Vec<String>,
}

pub fn images(args: ImagesArgs, compose: &Compose) -> Result<u8> {
    let images = compose.images(&args.services)?;
    let short = |id: &str| {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        hex[..hex.len().min(12)].to_owned()
    };
    if args.quiet {
        let mut ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
        ids.dedup();
        ids.iter().for_each(|id| println!("{}", short(id)));
        return Ok(0);
    }
    // JSON as Compose writes it: the whole ID, the size in bytes.
    let json = args.format == Format::Json;
    let rows: Vec<Value> = images
        .iter()
        .map(|image| {
            let mut row = json!({
                "ContainerName": image.container,
                "Repository": image.repository,
                "Tag": image.tag,
                "ID": short(&image.id),
                "Size": human_size(image.size, 3),
            });
            if json {
                row["ID"] = json!(image.id);
                row["Size"] = json!(image.size);
                row["Platform"] = json!("linux/amd64");
            }
            row
        })
        .collect();
    render_list(&args.format, &IMAGES_LISTING, &rows)
}

/// Prints `rows` as `format` says, `json` as one array, as Compose prints
/// the lists of `ls` and `images` (`ps` writes a line per container).
fn render_list(format: &Format, listing: &Listing, rows: &[Value]) -> Result<u8> {
    match format {
        Format::Json => println!("{}", Value::Array(rows.to_vec())),
        format => render_rows(format, listing, rows, &mut std::io::stdout())?,
    }
    Ok(0)
}

/// `compose port`'s flags.
#[derive(Args)]
pub struct PortArgs {
    /// tcp or udp.
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"])]
    protocol: String,
    /// Which container of the service, from 1.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// The service.
    service: String,
    /// The port in the container.
    private_port: u16,
}

pub fn port(args: PortArgs, compose: &Compose) -> Result<u8> {
    let mapping = compose.port(&args.service, args.private_port, &args.protocol, args.index)?;
    println!("{}:{}", mapping.host_ip, mapping.host_port);
    Ok(0)
}

/// `compose ls`'s flags.
#[derive(Args)]
pub struct LsArgs {
    /// Show stopped projects too.
    #[arg(short, long)]
    all: bool,
    /// Print only the projects' names.
    #[arg(short, long)]
    quiet: bool,
    /// `table` (default), `json`, or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
}

/// `docker compose ls`'s table.
const LS_LISTING: Listing = Listing {
    default_format: "table {{.Name}}\t{{.Status}}\t{{.ConfigFiles}}",
    headers: &[
        ("Name", "NAME"),
        ("Status", "STATUS"),
        ("ConfigFiles", "CONFIG FILES"),
    ],
};

/// Lists the projects, from their containers' labels: no file is read.
pub fn ls(args: &LsArgs, runtime: &Runtime) -> Result<u8> {
    let projects: Vec<_> = list_projects(runtime)?
        .into_iter()
        .filter(|p| args.all || p.running)
        .collect();
    if args.quiet {
        projects.iter().for_each(|p| println!("{}", p.name));
        return Ok(0);
    }
    let rows: Vec<Value> = projects
        .iter()
        .map(|p| json!({"Name": p.name, "Status": p.status, "ConfigFiles": p.config_files}))
        .collect();
    render_list(&args.format, &LS_LISTING, &rows)
}

/// `compose events`' flags.
#[derive(Args)]
pub struct EventsArgs {
    /// One JSON object per event.
    #[arg(long)]
    json: bool,
    /// The services (default: all).
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

/// Prints the project's containers' events as they happen, as `docker
/// compose events` does: `TIME container ACTION ID (KEY=VALUE, ...)`
/// without the Compose labels, or with `--json` one object per line.
pub fn events(args: EventsArgs, compose: &Compose) -> Result<u8> {
    let mut stdout = std::io::stdout().lock();
    let mut failure = None;
    compose.events(&args.services, &mut |service, event| {
        let written = writeln!(stdout, "{}", event_line(args.json, service, event))
            .and_then(|()| stdout.flush());
        match written {
            Ok(()) => true,
            Err(err) => {
                failure = Some(err);
                false
            }
        }
    })?;
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(0),
    }
}

/// One event as Compose prints it.
fn event_line(json: bool, service: &str, event: &hull_runtime::Event) -> String {
    let attributes: BTreeMap<&str, &str> = event
        .actor
        .attributes
        .iter()
        .filter(|(key, _)| !key.starts_with("com.docker.compose."))
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.time_nano))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if json {
        let time = time.format(&Rfc3339).unwrap_or_default();
        return json!({
            "time": time,
            "type": "container",
            "service": service,
            "id": event.actor.id,
            "action": event.action,
            "attributes": attributes,
        })
        .to_string();
    }
    crate::report::escaped(&format!(
        "{} container {} {} ({})",
        time.format(COMPOSE_EVENT_TIME).unwrap_or_default(),
        event.action,
        event.actor.id,
        crate::events_cmd::attribute_list(&attributes)
    ))
}

/// Compose's time in an event line: `2006-01-02 15:04:05.000000`, UTC.
const COMPOSE_EVENT_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");

#[cfg(test)]
mod tests {
    use hull_runtime::{Actor, Event, EventType};

    use super::*;

    #[test]
    fn ps_filters_by_status_only() {
        assert_eq!(status_filter("status=exited").unwrap(), "exited");
        assert!(status_filter("status=gone").unwrap_err().contains("gone"));
        assert!(status_filter("name=web")
            .unwrap_err()
            .contains("status=STATE"));
    }

    #[test]
    fn an_event_reads_as_composes() {
        let event = Event {
            kind: EventType::Container,
            action: "die".into(),
            actor: Actor {
                id: "4f2a9c0d1e7b".into(),
                attributes: BTreeMap::from([
                    ("com.docker.compose.service".into(), "web".into()),
                    ("exitCode".into(), "0".into()),
                    ("name".into(), "app-web-1".into()),
                ]),
            },
            time_nano: 1_700_000_000_123_456_789,
        };
        assert_eq!(
            event_line(false, "web", &event),
            "2023-11-14 22:13:20.123456 container die 4f2a9c0d1e7b (exitCode=0, name=app-web-1)"
        );
        assert_eq!(
            event_line(true, "web", &event),
            r#"{"action":"die","attributes":{"exitCode":"0","name":"app-web-1"},"id":"4f2a9c0d1e7b","service":"web","time":"2023-11-14T22:13:20.123456789Z","type":"container"}"#
        );
    }
}
