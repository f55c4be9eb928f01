//! `hull ps --filter KEY=VALUE`: Docker's container filters, read from the
//! command line and then resolved against the images, containers and
//! networks they name, once per listing.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use hull_image::Store;
use hull_runtime::{ContainerInfo, MountSource, RootfsSource, Runtime, Status};
use regex::Regex;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::filters::{LabelFilter, ListFilter};

/// What `--filter` takes, for errors and help.
const KEYS: &str = "status=created|running|paused|restarting|exited, name=PATTERN, \
     id=PREFIX, label=KEY[=VALUE], health=starting|healthy|unhealthy|none, ancestor=IMAGE, \
     exited=CODE, before=CONTAINER, since=CONTAINER, volume=NAME|PATH, network=NAME|ID, \
     publish=PORT[/PROTO], expose=PORT[/PROTO]";

/// One `--filter`.
#[derive(Clone, Debug)]
pub enum Filter {
    /// Docker's status word: `paused` for a paused running container.
    Status(&'static str),
    /// A regular expression the name matches somewhere, as in Docker.
    Name(Regex),
    Id(String),
    Label(LabelFilter),
    /// `starting`, `healthy`, `unhealthy`, or `none` (no healthcheck).
    Health(&'static str),
    /// Made from this image, or from one built on it.
    Ancestor(String),
    /// Ran, and exited with this code.
    Exited(i32),
    /// Created before this container.
    Before(String),
    /// Created after this container.
    Since(String),
    /// A volume's name, a bind's host path, or a mount point.
    Volume(String),
    /// A network's name, or a prefix of its ID.
    Network(String),
    /// Running, publishes one of these host ports (`8080/tcp`).
    Publish(Vec<String>),
    /// Running, exposes (or publishes) one of these container ports.
    Expose(Vec<String>),
}

impl ListFilter for Filter {
    fn is_label(&self) -> bool {
        matches!(self, Filter::Label(_))
    }
}

impl Filter {
    /// Reads one `--filter` value.
    pub fn parse(value: &str) -> Result<Filter, String> {
        let invalid = || format!("{value:?}: filters are {KEYS}");
        let (key, wanted) = value.split_once('=').ok_or_else(invalid)?;
        let one_of = |words: &[&'static str]| words.iter().copied().find(|word| *word == wanted);
        let ports = |wanted: &str| {
            hull_image::exposed_ports(wanted).map_err(|err| format!("{key}={wanted}: {err}"))
        };
        match key {
            "status" => one_of(&["created", "running", "paused", "restarting", "exited"])
                .map(Filter::Status)
                .ok_or_else(invalid),
            "label" => Ok(Filter::Label(LabelFilter::parse(wanted))),
            "name" => Regex::new(wanted)
                .map(Filter::Name)
                .map_err(|err| format!("name={wanted}: not a regular expression: {err}")),
            "id" => Ok(Filter::Id(wanted.to_owned())),
            "health" => one_of(&["starting", "healthy", "unhealthy", "none"])
                .map(Filter::Health)
                .ok_or_else(invalid),
            "ancestor" => Ok(Filter::Ancestor(wanted.to_owned())),
            "exited" => wanted
                .parse()
                .map(Filter::Exited)
                .map_err(|_| format!("exited={wanted}: not an exit code")),
            "before" => Ok(Filter::Before(wanted.to_owned())),
            "since" => Ok(Filter::Since(wanted.to_owned())),
            "volume" => Ok(Filter::Volume(wanted.to_owned())),
            "network" => Ok(Filter::Network(wanted.to_owned())),
            "publish" => ports(wanted).map(Filter::Publish),
            "expose" => ports(wanted).map(Filter::Expose),
            _ => Err(invalid()),
        }
    }
}

/// The filters, with what they name looked up.
pub struct Resolved {
    pub list: Vec<Filter>,
    /// For each `ancestor=`: the IDs of the image it names and of the
    /// images built on it (whose layers start with its own); none if there
    /// is no such image, as Docker has it.
    ancestors: BTreeMap<String, BTreeSet<String>>,
    /// For each `before=`/`since=`: when that container was created.
    created: BTreeMap<String, OffsetDateTime>,
    /// For each `network=`: the names of the networks it names.
    networks: BTreeMap<String, BTreeSet<String>>,
}

impl Resolved {
    /// Looks up what `list` names; a `before=`/`since=` container must
    /// exist.
    pub fn new(runtime: &Runtime, list: Vec<Filter>) -> Result<Resolved> {
        let mut resolved = Resolved {
            list,
            ancestors: BTreeMap::new(),
            created: BTreeMap::new(),
            networks: BTreeMap::new(),
        };
        for filter in &resolved.list {
            match filter {
                Filter::Ancestor(name) => {
                    let store = Store::open(runtime.root())?;
                    resolved
                        .ancestors
                        .insert(name.clone(), image_and_descendants(&store, name)?);
                }
                Filter::Before(name) | Filter::Since(name) => {
                    let container = runtime.inspect(name)?;
                    resolved
                        .created
                        .insert(name.clone(), created_time(&container));
                }
                Filter::Network(wanted) => {
                    let names = runtime
                        .list_networks()?
                        .into_iter()
                        .filter(|network| network.name == *wanted || network.id.starts_with(wanted))
                        .map(|network| network.name)
                        .collect();
                    resolved.networks.insert(wanted.clone(), names);
                }
                _ => {}
            }
        }
        Ok(resolved)
    }

    /// Whether `container` passes `filter`.
    pub fn holds(&self, filter: &Filter, container: &ContainerInfo) -> bool {
        let config = &container.config;
        let state = &container.state;
        match filter {
            Filter::Status(wanted) => status_word(container) == *wanted,
            Filter::Name(pattern) => pattern.is_match(container.name()),
            Filter::Id(prefix) => container.id().starts_with(prefix.as_str()),
            Filter::Health(wanted) => health_word(container) == *wanted,
            Filter::Label(label) => label.matches(&config.labels),
            Filter::Ancestor(name) => match &config.boot.rootfs {
                RootfsSource::Image(id) => self.ancestors[name].contains(id),
                _ => false,
            },
            Filter::Exited(code) => {
                state.status == Status::Exited
                    && state.started_at.is_some()
                    && state.exit_code == Some(*code)
            }
            Filter::Before(name) => created_time(container) < self.created[name],
            Filter::Since(name) => created_time(container) > self.created[name],
            Filter::Volume(wanted) => config.boot.mounts.iter().any(|mount| {
                let source = match &mount.source {
                    MountSource::Volume { name, .. } => Some(name.as_str()),
                    MountSource::Bind { path, .. } => path.to_str(),
                    MountSource::Tmpfs { .. } => None,
                };
                mount.target == *wanted || source == Some(wanted.as_str())
            }),
            Filter::Network(wanted) => match config.boot.network.endpoints.as_slice() {
                // Docker's `--network none` is a network of that name.
                [] => wanted == "none",
                endpoints => endpoints
                    .iter()
                    .any(|endpoint| self.networks[wanted].contains(&endpoint.network)),
            },
            // As Docker's, of a running container's ports only.
            Filter::Publish(ports) => {
                state.status == Status::Running
                    && config.boot.network.ports.iter().any(|port| {
                        ports.contains(&format!("{}/{}", port.host_port, port.protocol))
                    })
            }
            Filter::Expose(ports) => {
                let published = config
                    .boot
                    .network
                    .ports
                    .iter()
                    .map(|port| format!("{}/{}", port.container_port, port.protocol));
                state.status == Status::Running
                    && config
                        .exposed_ports
                        .iter()
                        .cloned()
                        .chain(published)
                        .any(|port| ports.contains(&port))
            }
        }
    }
}

/// The IDs of the image `name` and of every image whose layers start with
/// its own (built on it); none if there is no such image.
fn image_and_descendants(store: &Store, name: &str) -> Result<BTreeSet<String>> {
    let Some(ancestor) = store.find(name)? else {
        return Ok(BTreeSet::new());
    };
    let mut ids = BTreeSet::from([ancestor.id.to_string()]);
    // An image of no layers is no image's base.
    if !ancestor.layers.is_empty() {
        let descendants = store.images()?.into_iter().filter(|image| {
            image.layers.len() > ancestor.layers.len() && image.layers.starts_with(&ancestor.layers)
        });
        ids.extend(descendants.map(|image| image.id.to_string()));
    }
    Ok(ids)
}

fn created_time(container: &ContainerInfo) -> OffsetDateTime {
    OffsetDateTime::parse(&container.config.created, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Docker's health word for `ps --filter health=`: that of a running
/// container with a healthcheck, else `none`.
fn health_word(container: &ContainerInfo) -> &'static str {
    let state = &container.state;
    match (&state.health, state.status) {
        (Some(health), Status::Running) => health.status.as_str(),
        _ => "none",
    }
}

/// `created`, `running`, `paused`, `restarting` or `exited`, as Docker's
/// State.Status says.
pub fn status_word(container: &ContainerInfo) -> &'static str {
    match container.state.paused {
        true => "paused",
        false => container.state.status.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_as_docker_writes_them() {
        assert!(matches!(
            Filter::parse("exited=137"),
            Ok(Filter::Exited(137))
        ));
        assert!(matches!(Filter::parse("exited=-1"), Ok(Filter::Exited(-1))));
        assert_eq!(
            Filter::parse("exited=x").unwrap_err(),
            "exited=x: not an exit code"
        );
        let Ok(Filter::Publish(ports)) = Filter::parse("publish=8080") else {
            panic!("publish=8080");
        };
        assert_eq!(ports, ["8080/tcp"]);
        let Ok(Filter::Expose(ports)) = Filter::parse("expose=53-54/udp") else {
            panic!("expose=53-54/udp");
        };
        assert_eq!(ports, ["53/udp", "54/udp"]);
        assert!(Filter::parse("publish=80/icmp")
            .unwrap_err()
            .starts_with("publish=80/icmp: invalid proto"));
        assert!(
            matches!(Filter::parse("ancestor=alpine:3"), Ok(Filter::Ancestor(name)) if name == "alpine:3")
        );
        assert!(
            matches!(Filter::parse("volume=/data"), Ok(Filter::Volume(path)) if path == "/data")
        );
        assert!(Filter::parse("is-task=true")
            .unwrap_err()
            .contains("filters are status="));
        assert!(Filter::parse("status=gone").is_err());
        assert!(Filter::parse("name=[").is_err());
    }
}
