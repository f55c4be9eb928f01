//! `hull ps`: containers, as Docker lists them.

use std::mem;

use anyhow::Result;
use clap::Args;
use hull_runtime::{ContainerInfo, Runtime, Status};
use regex::Regex;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use hull_format::{render_rows, Format, Listing};

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    all: bool,
    /// Print only container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Only containers matching: status=created|running|exited, name=TEXT
    /// (a part of the name), id=PREFIX. Repeatable; all must match.
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    filter: Vec<Filter>,
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
    ],
};

#[derive(Clone, Debug)]
enum Filter {
    Status(Status),
    /// A regular expression the name matches somewhere, as in Docker.
    Name(Regex),
    Id(String),
}

impl Filter {
    fn matches(&self, container: &ContainerInfo) -> bool {
        match self {
            Filter::Status(wanted) => container.state.status == *wanted,
            Filter::Name(pattern) => pattern.is_match(container.name()),
            Filter::Id(prefix) => container.id().starts_with(prefix.as_str()),
        }
    }

    /// Docker's rule: values of one key are alternatives, keys must all
    /// hold.
    fn all_hold(filters: &[Filter], container: &ContainerInfo) -> bool {
        filters.iter().all(|filter| {
            let same_key = |other: &&Filter| mem::discriminant(*other) == mem::discriminant(filter);
            filters
                .iter()
                .filter(same_key)
                .any(|f| f.matches(container))
        })
    }
}

fn parse_filter(value: &str) -> Result<Filter, String> {
    let invalid = || {
        format!(
            "{value:?}: filters are status=created|running|restarting|exited, name=TEXT, id=PREFIX"
        )
    };
    let (key, wanted) = value.split_once('=').ok_or_else(invalid)?;
    match key {
        "status" => match wanted {
            "created" => Ok(Filter::Status(Status::Created)),
            "running" => Ok(Filter::Status(Status::Running)),
            "restarting" => Ok(Filter::Status(Status::Restarting)),
            "exited" => Ok(Filter::Status(Status::Exited)),
            _ => Err(invalid()),
        },
        "name" => Regex::new(wanted)
            .map(Filter::Name)
            .map_err(|err| format!("name={wanted}: not a regular expression: {err}")),
        "id" => Ok(Filter::Id(wanted.to_owned())),
        _ => Err(invalid()),
    }
}

pub fn ps(args: PsArgs, runtime: &Runtime) -> Result<u8> {
    // A status filter shows containers in any state, as in Docker.
    let any_status = args.all || args.filter.iter().any(|f| matches!(f, Filter::Status(_)));
    let listed = runtime.list()?.into_iter().rev().filter(|container| {
        (any_status || container.state.monitor_pid().is_some())
            && Filter::all_hold(&args.filter, container)
    });
    if args.quiet {
        listed.for_each(|container| println!("{}", container.short_id()));
        return Ok(0);
    }
    let rows: Vec<Value> = listed.map(|container| row(&container)).collect();
    render_rows(&args.format, &LISTING, &rows, &mut std::io::stdout())?;
    Ok(0)
}

/// A container as `docker ps` shows it.
fn row(container: &ContainerInfo) -> Value {
    let state = &container.state;
    let status = match state.status {
        Status::Created => "Created".to_owned(),
        Status::Running => format!("Up {}", duration_since(state.started_at.as_deref())),
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
    json!({
        "ID": container.short_id(),
        "Image": config.image,
        "Command": format!("\"{}\"", truncate(&config.boot.argv.join(" "), 20)),
        "CreatedAt": config.created,
        "RunningFor": format!("{} ago", duration_since(Some(&config.created))),
        "Status": status,
        "State": state.status.as_str(),
        "Ports": match state.status {
            Status::Running => ports(container),
            _ => String::new(),
        },
        "Names": config.name,
        "Networks": network.endpoint.as_ref().map(|e| e.network.as_str()).unwrap_or("none"),
    })
}

/// The published ports, as `docker ps` lists them.
fn ports(container: &ContainerInfo) -> String {
    let ports = &container.config.boot.network.ports;
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
    let Some(then) = time.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
        return "N/A".into();
    };
    human_duration((OffsetDateTime::now_utc() - then).whole_seconds().max(0))
}

fn human_duration(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match seconds {
        0 => "Less than a second".into(),
        s if s < 60 => plural(s, "second"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 7200 => "About an hour".into(),
        s if s < 86_400 * 2 => plural(s / 3600, "hour"),
        s if s < 86_400 * 14 => plural(s / 86_400, "day"),
        s if s < 86_400 * 60 => plural(s / (86_400 * 7), "week"),
        s if s < 86_400 * 730 => plural(s / (86_400 * 30), "month"),
        s => plural(s / (86_400 * 365), "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(180), "3 minutes");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
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
