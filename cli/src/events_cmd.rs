//! `hull events` (and `hull system events`): what happened to containers,
//! images, networks and volumes, from the runtime's event log, as `docker
//! events` prints it: past events with `--since`, then new ones as they
//! come until `--until` or Ctrl-C.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::UNIX_EPOCH;

use anyhow::Result;
use clap::Args;
use hull_format::{render_one, Format};
use hull_image::ImageRef;
use hull_runtime::{Actor, Event, EventType, EventsOptions, Runtime};
use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::filters::{all_hold, LabelFilter, ListFilter};
use crate::report::escaped;
use crate::times::parse_time;

/// Docker's time in an event line: RFC 3339 with nine fraction digits.
const EVENT_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

#[derive(Args)]
pub struct EventsArgs {
    /// Events from this time on: RFC 3339, Unix seconds, or a duration
    /// before now (`10m`); without it, only new events.
    #[arg(long, value_parser = parse_nanos)]
    since: Option<i64>,
    /// Stop at this time (same forms); without it, follow until Ctrl-C.
    #[arg(long, value_parser = parse_nanos)]
    until: Option<i64>,
    /// Only events that match: container=, event=, image=, label=,
    /// network=, type=container|image|network|volume, volume=.
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = EventFilter::parse)]
    filter: Vec<EventFilter>,
    /// `json` (one object per line) or a Go template over .Type, .Action,
    /// .Actor.ID, .Actor.Attributes, .Time, .TimeNano, .Status, .ID, .From.
    #[arg(long, default_value = "")]
    format: Format,
}

/// One `--filter` of `events`.
#[derive(Debug, Clone)]
pub enum EventFilter {
    Container(String),
    Event(String),
    Image(String),
    Label(LabelFilter),
    Network(String),
    Type(EventType),
    Volume(String),
}

impl ListFilter for EventFilter {
    fn is_label(&self) -> bool {
        matches!(self, EventFilter::Label(_))
    }
}

impl EventFilter {
    fn parse(value: &str) -> Result<EventFilter, String> {
        let (key, wanted) = value
            .split_once('=')
            .ok_or_else(|| format!("{value:?} is not a filter: give KEY=VALUE"))?;
        let wanted = wanted.to_owned();
        Ok(match key {
            "container" => EventFilter::Container(wanted),
            "event" => EventFilter::Event(wanted),
            "image" => EventFilter::Image(wanted),
            "label" => EventFilter::Label(LabelFilter::parse(&wanted)),
            "network" => EventFilter::Network(wanted),
            "volume" => EventFilter::Volume(wanted),
            "type" => EventFilter::Type(match wanted.as_str() {
                "container" => EventType::Container,
                "image" => EventType::Image,
                "network" => EventType::Network,
                "volume" => EventType::Volume,
                _ => {
                    return Err(format!(
                        "{wanted:?} is not an event type: use container, image, network or volume"
                    ))
                }
            }),
            _ => {
                return Err(format!(
                    "{key:?} is not an events filter: use container, event, image, label, \
                     network, type or volume"
                ))
            }
        })
    }

    /// Whether `event` passes, as Docker's filters match: an object by ID
    /// (or its start) or name, an action by its name before any `:`.
    fn holds(&self, event: &Event) -> bool {
        let actor = &event.actor;
        let attribute = |key: &str| actor.attributes.get(key).map(String::as_str);
        let names =
            |wanted: &str| actor.id.starts_with(wanted) || attribute("name") == Some(wanted);
        match self {
            EventFilter::Container(wanted) => match event.kind {
                EventType::Container => names(wanted),
                // A network's connect and disconnect name the container.
                _ => attribute("container").is_some_and(|id| id.starts_with(wanted.as_str())),
            },
            EventFilter::Event(wanted) => {
                let action = event.action.split(':').next().unwrap_or_default();
                action == wanted || event.action == *wanted
            }
            EventFilter::Image(wanted) => {
                let name = match event.kind {
                    EventType::Image => attribute("name"),
                    _ => attribute("image"),
                };
                // As Docker's: the ID or name as logged, or either without
                // its tag or digest (`image=alpine` for `alpine:3`).
                [Some(actor.id.as_str()), name]
                    .into_iter()
                    .flatten()
                    .any(|logged| logged == wanted || familiar_name(logged) == *wanted)
                    || (event.kind == EventType::Image && actor.id.starts_with(wanted.as_str()))
            }
            EventFilter::Label(label) => label.matches(&actor.attributes),
            EventFilter::Network(wanted) => event.kind == EventType::Network && names(wanted),
            EventFilter::Type(kind) => event.kind == *kind,
            EventFilter::Volume(wanted) => event.kind == EventType::Volume && names(wanted),
        }
    }
}

/// An image as Docker's events filter compares it besides as logged: its
/// familiar name, without tag or digest (`alpine` for
/// `docker.io/library/alpine:3`); what is no reference stays as it is.
fn familiar_name(logged: &str) -> String {
    ImageRef::parse(logged)
        .map_or_else(|_| logged.to_owned(), |reference| reference.familiar_name())
}

/// A `--since`/`--until` value, in nanoseconds since the epoch.
fn parse_nanos(value: &str) -> Result<i64, String> {
    let time = parse_time(value)?;
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{value:?} is before 1970"))?;
    i64::try_from(since_epoch.as_nanos()).map_err(|_| format!("{value:?} is after 2262"))
}

pub fn events(args: EventsArgs, runtime: &Runtime) -> Result<u8> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since > until {
            anyhow::bail!("--since must be before --until");
        }
    }
    let options = EventsOptions {
        since: args.since,
        until: args.until,
    };
    let mut failure = None;
    let mut stdout = std::io::stdout().lock();
    runtime.events(&options, &mut |event| {
        if !all_hold(&args.filter, |filter| filter.holds(event)) {
            return true;
        }
        let written = line(&args.format, event).and_then(|line| {
            writeln!(stdout, "{line}")?;
            Ok(stdout.flush()?)
        });
        match written {
            Ok(()) => true,
            Err(err) => {
                failure = Some(err);
                false
            }
        }
    })?;
    match failure {
        Some(err) => Err(err),
        None => Ok(0),
    }
}

/// `event` as one line of output in `format`.
fn line(format: &Format, event: &Event) -> Result<String> {
    match format {
        Format::Default => Ok(text(event)),
        Format::Json => Ok(api_message(event)),
        Format::Template { template, .. } if template.trim() == "{{json .}}" => {
            Ok(api_message(event))
        }
        Format::Template { template, .. } => render_one(template, &template_fields(event), &[]),
    }
}

/// Docker's line: `TIME TYPE ACTION ID (KEY=VALUE, ...)`, with control
/// characters escaped (labels come from images: a line is one line).
fn text(event: &Event) -> String {
    escaped(&format!(
        "{} {} {} {} ({})",
        time_text(event.time_nano),
        event.kind.name(),
        event.action,
        event.actor.id,
        attribute_list(&event.actor.attributes)
    ))
}

/// Attributes as an event line shows them: `KEY=VALUE, ...`, by key.
pub fn attribute_list<K: AsRef<str>, V: AsRef<str>>(attributes: &BTreeMap<K, V>) -> String {
    let pairs: Vec<String> = attributes
        .iter()
        .map(|(key, value)| format!("{}={}", key.as_ref(), value.as_ref()))
        .collect();
    pairs.join(", ")
}

fn time_text(time_nano: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_nano))
        .ok()
        .and_then(|time| time.format(EVENT_TIME).ok())
        .unwrap_or_else(|| time_nano.to_string())
}

/// The deprecated `status`, `id` and `from` Docker still sends for
/// container and image events.
fn legacy(event: &Event) -> Option<(String, String, Option<String>)> {
    let from = event.actor.attributes.get("image").cloned();
    match event.kind {
        EventType::Container => Some((event.action.clone(), event.actor.id.clone(), from)),
        EventType::Image => Some((event.action.clone(), event.actor.id.clone(), None)),
        EventType::Network | EventType::Volume => None,
    }
}

/// An event as Docker's API and `--format json` give it, in its order.
#[derive(Serialize)]
struct ApiMessage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Action")]
    action: &'a str,
    #[serde(rename = "Actor")]
    actor: &'a Actor,
    scope: &'static str,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

/// `event` as one line of Docker's JSON.
fn api_message(event: &Event) -> String {
    let (status, id, from) = match legacy(event) {
        Some((status, id, from)) => (Some(status), Some(id), from),
        None => (None, None, None),
    };
    let message = ApiMessage {
        status,
        id,
        from,
        kind: event.kind.name(),
        action: &event.action,
        actor: &event.actor,
        scope: "local",
        time: event.time_nano / 1_000_000_000,
        time_nano: event.time_nano,
    };
    serde_json::to_string(&message).expect("an event serializes")
}

/// The event as a template sees Docker's `events.Message`: by its Go field
/// names.
fn template_fields(event: &Event) -> Value {
    let (status, id, from) = legacy(event).unwrap_or_default();
    let attributes: BTreeMap<&str, &str> = event
        .actor
        .attributes
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    json!({
        "Status": status,
        "ID": id,
        "From": from.unwrap_or_default(),
        "Type": event.kind.name(),
        "Action": event.action,
        "Actor": { "ID": event.actor.id, "Attributes": attributes },
        "Scope": "local",
        "Time": event.time_nano / 1_000_000_000,
        "TimeNano": event.time_nano,
    })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// Now, in nanoseconds since the epoch.
    fn now_nanos() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i64)
    }

    fn start_of_web() -> Event {
        Event {
            kind: EventType::Container,
            action: "start".into(),
            actor: Actor {
                id: "4f2a9c0d1e7b".into(),
                attributes: BTreeMap::from([
                    ("image".into(), "alpine".into()),
                    ("name".into(), "web".into()),
                    ("tier".into(), "front".into()),
                ]),
            },
            time_nano: 1_700_000_000_123_456_789,
        }
    }

    fn filters(values: &[&str]) -> Vec<EventFilter> {
        values
            .iter()
            .map(|v| EventFilter::parse(v).unwrap())
            .collect()
    }

    #[test]
    fn a_line_reads_as_dockers() {
        assert_eq!(
            text(&start_of_web()),
            "2023-11-14T22:13:20.123456789Z container start 4f2a9c0d1e7b \
             (image=alpine, name=web, tier=front)"
        );
        let json = line(&Format::Json, &start_of_web()).unwrap();
        assert_eq!(
            json,
            r#"{"status":"start","id":"4f2a9c0d1e7b","from":"alpine","Type":"container","Action":"start","Actor":{"ID":"4f2a9c0d1e7b","Attributes":{"image":"alpine","name":"web","tier":"front"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}"#
        );
        let template: Format = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Time}}"
            .parse()
            .unwrap();
        assert_eq!(
            line(&template, &start_of_web()).unwrap(),
            "container start web 1700000000"
        );
    }

    #[test]
    fn a_label_cannot_forge_a_line() {
        let mut event = start_of_web();
        event.actor.attributes.insert(
            "note".into(),
            "x)\n2023-01-01T00:00:00Z container die".into(),
        );
        assert_eq!(text(&event).lines().count(), 1);
        assert!(parse_nanos("99999999999").is_err());
    }

    #[test]
    fn filters_match_as_dockers() {
        let event = start_of_web();
        let holds = |values: &[&str]| all_hold(&filters(values), |f| f.holds(&event));
        assert!(holds(&[]));
        assert!(holds(&["container=web"]));
        assert!(holds(&["container=4f2a"]));
        assert!(!holds(&["container=db"]));
        assert!(holds(&["event=die", "event=start"]));
        assert!(!holds(&["event=die"]));
        assert!(holds(&[
            "type=container",
            "image=alpine",
            "label=tier=front"
        ]));
        assert!(!holds(&["type=container", "label=tier=back"]));
        // An image by its name as logged, or without its tag.
        assert!(!holds(&["image=alpine:3"]));
        assert!(!holds(&["image=alpinist"]));
        let mut tagged = start_of_web();
        tagged
            .actor
            .attributes
            .insert("image".into(), "docker.io/library/alpine:3.19".into());
        let tagged_holds = |values: &[&str]| all_hold(&filters(values), |f| f.holds(&tagged));
        assert!(tagged_holds(&["image=alpine"]));
        assert!(tagged_holds(&["image=docker.io/library/alpine:3.19"]));
        assert!(!tagged_holds(&["image=alpine:3.18"]));
        assert_eq!(familiar_name("docker.io/library/alpine:3.19"), "alpine");
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            familiar_name(&format!("localhost:5000/me/app@{digest}")),
            "localhost:5000/me/app"
        );
        assert_eq!(familiar_name("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(familiar_name("docker.io/me/app:v1"), "me/app");
        assert_eq!(familiar_name("not a reference"), "not a reference");
        assert!(!holds(&["type=network"]));
        let mut health = start_of_web();
        health.action = "health_status: healthy".into();
        assert!(all_hold(&filters(&["event=health_status"]), |f| f.holds(&health)));
        assert!(EventFilter::parse("colour=red").is_err());
        assert!(EventFilter::parse("type=pod").is_err());
    }

    #[test]
    fn times_are_nanoseconds() {
        let nanos = parse_nanos("2023-11-14T22:13:20Z").unwrap();
        assert_eq!(nanos, 1_700_000_000_000_000_000);
        let ago = parse_nanos("10m").unwrap();
        assert!((now_nanos() - ago - 600_000_000_000).abs() < 5_000_000_000);
    }
}
