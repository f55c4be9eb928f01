//! `hull network`: the networks containers join, made, listed and removed
//! as with Docker.

use std::net::Ipv4Addr;

use anyhow::Result;
use clap::{Args, Subcommand};
use hull_runtime::{
    parse_host_name, parse_network_name, Network, NetworkInfo, NewNetwork, Runtime, Subnet,
    DEFAULT_NETWORK,
};
use serde_json::{json, Value};

use crate::container_cmd::inspect_each;
use crate::filters::{all_hold, LabelFilter, ListFilter, PruneFilter};
use crate::prune_report::PruneReport;
use crate::run::{label_pair, parse_label};
use crate::times::created_at;
use hull_format::{labels_field, render_rows, Format, Listing};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network: its own bridge and subnet; containers on other
    /// networks cannot reach it.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show networks and the containers on them as JSON.
    Inspect(InspectArgs),
    /// Remove networks no container is on.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Put a stopped container that is on no network on a network.
    Connect(ConnectArgs),
    /// Take a stopped container off its network.
    Disconnect(DisconnectArgs),
    /// Remove every network no container is on (but the default, whose
    /// bridge goes while no container uses it).
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The network's IPv4 subnet, e.g. 10.90.3.0/24 (default: the first
    /// free /24 of 10.90.0.0/16).
    #[arg(long, value_name = "SUBNET")]
    subnet: Option<Subnet>,
    /// The host's address on it (default: the subnet's first).
    #[arg(long, value_name = "IPV4")]
    gateway: Option<Ipv4Addr>,
    /// Keep its containers from everything but each other and the host:
    /// no way out, no published ports.
    #[arg(long)]
    internal: bool,
    /// Set a label on the network: KEY=VALUE (or KEY).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<String>,
    /// The driver: bridge, the only one (each network is a host bridge).
    #[arg(short, long, value_name = "DRIVER", value_parser = parse_driver)]
    driver: Option<String>,
    /// Accepted: any container can join any network.
    #[arg(long = "attachable")]
    _attachable: bool,
    #[arg(value_parser = parse_network_name)]
    name: String,
}

/// `--driver`: bridge.
fn parse_driver(driver: &str) -> Result<String, String> {
    match driver {
        "bridge" => Ok(driver.to_owned()),
        other => Err(format!(
            "network driver {other:?} is not supported: hull's networks are host bridges (bridge)"
        )),
    }
}

#[derive(Args)]
pub struct ConnectArgs {
    /// The container's address there (default: the next free).
    #[arg(long, value_name = "IPV4")]
    ip: Option<Ipv4Addr>,
    /// Another name the container has there.
    #[arg(long = "alias", value_name = "NAME", value_parser = parse_host_name)]
    aliases: Vec<String>,
    network: String,
    container: String,
}

#[derive(Args)]
pub struct DisconnectArgs {
    network: String,
    container: String,
}

#[derive(Args)]
pub struct RmArgs {
    /// Network names.
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Print only network IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Print whole network IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Only networks that match: name=PART, id=PREFIX, label=KEY[=VALUE],
    /// driver=bridge, type=builtin|custom, scope=local, dangling=true|false
    /// (no container is on it); repeat a key for any of its values.
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    filter: Vec<Filter>,
    /// `table` (default), `json` (one object per line), or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
}

#[derive(Args)]
pub struct InspectArgs {
    /// A Go template for each network, e.g. `{{.IPAM.Config}}`.
    #[arg(short, long, value_parser = crate::container_cmd::parse_format)]
    format: Option<String>,
    /// Network names.
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Only networks that match: until=TIME (made before; `24h` for a day
    /// ago), label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long, value_name = "KEY=VALUE", value_parser = PruneFilter::parse)]
    filter: Vec<PruneFilter>,
}

impl PruneArgs {
    /// Whether it goes ahead without asking.
    pub fn force(&self) -> bool {
        self.force
    }
}

/// Docker's question before `network prune`.
const PRUNE_WARNING: &str =
    "WARNING! This will remove all custom networks not used by at least one container.";

/// `docker network ls`'s default table.
const LISTING: Listing = Listing {
    default_format: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    headers: &[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv4", "IPV4"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ],
};

pub fn network(command: NetworkCommand, runtime: &Runtime) -> Result<u8> {
    match command {
        NetworkCommand::Create(args) => {
            let new = NewNetwork {
                subnet: args.subnet,
                gateway: args.gateway,
                internal: args.internal,
                labels: args.labels.iter().map(|label| label_pair(label)).collect(),
            };
            let network = runtime.create_network(&args.name, &new)?;
            println!("{}", network.id);
        }
        NetworkCommand::Ls(args) => {
            let mut networks = runtime.list_networks()?;
            let on_networks = match args.filter.iter().any(|f| matches!(f, Filter::Dangling(_))) {
                true => runtime.list()?,
                false => Vec::new(),
            };
            let in_use = |name: &str| {
                on_networks
                    .iter()
                    .any(|container| container.config.boot.network.on(name).is_some())
            };
            networks.retain(|network| {
                all_hold(&args.filter, |filter| filter.matches(network, &in_use))
            });
            let shown_id = |id: &str| match args.no_trunc {
                true => id.to_owned(),
                false => id[..12].to_owned(),
            };
            if args.quiet {
                networks
                    .iter()
                    .for_each(|n| println!("{}", shown_id(&n.id)));
                return Ok(0);
            }
            let rows: Vec<Value> = networks
                .iter()
                .map(|n| {
                    json!({ "ID": shown_id(&n.id), "Name": n.name, "Driver": "bridge", "Scope": "local",
                            "IPv4": "true", "IPv6": "false",
                            "CreatedAt": created_at(&n.created), "Internal": n.internal.to_string(),
                            "Labels": labels_field(&n.labels) })
                })
                .collect();
            render_rows(&args.format, &LISTING, &rows, &mut std::io::stdout())?;
        }
        NetworkCommand::Inspect(args) => {
            return inspect_each(&args.networks, args.format.as_deref(), |name| {
                Ok(describe(&runtime.inspect_network(name)?))
            });
        }
        NetworkCommand::Rm(args) => {
            for name in &args.networks {
                runtime.remove_network(name)?;
                println!("{name}");
            }
        }
        NetworkCommand::Connect(args) => {
            runtime.connect(&args.network, &args.container, args.ip, args.aliases)?;
        }
        NetworkCommand::Disconnect(args) => runtime.disconnect(&args.network, &args.container)?,
        NetworkCommand::Prune(args) => {
            if args.force || crate::prompt::confirm(PRUNE_WARNING)? {
                print!("{}", prune(runtime, &args.filter)?.listing());
            }
        }
    }
    Ok(0)
}

/// `hull network prune`, and its part of `hull system prune`: the unused
/// networks `filters` select.
pub fn prune(runtime: &Runtime, filters: &[PruneFilter]) -> Result<PruneReport> {
    let selected = |network: &Network| {
        all_hold(filters, |filter| {
            filter.holds(&network.created, &network.labels)
        })
    };
    let removed = runtime.prune_networks(&selected)?;
    Ok(PruneReport::new("Deleted Networks:", &removed, 0))
}

/// A `network ls --filter`.
#[derive(Clone, Debug)]
pub enum Filter {
    Name(String),
    Id(String),
    Label(LabelFilter),
    Driver(String),
    /// `builtin` (hull's default network) or `custom`.
    Type(bool),
    /// Docker's scope: every hull network is `local`.
    Scope(String),
    /// No container (in any state) is on it, and it is not built in.
    Dangling(bool),
}

impl ListFilter for Filter {
    fn is_label(&self) -> bool {
        matches!(self, Filter::Label(_))
    }
}

impl Filter {
    /// Whether `network` passes, `in_use` telling whether a container is
    /// on the network it names.
    fn matches(&self, network: &Network, in_use: &dyn Fn(&str) -> bool) -> bool {
        let builtin = network.name == DEFAULT_NETWORK;
        match self {
            Filter::Name(part) => network.name.contains(part.as_str()),
            Filter::Id(prefix) => network.id.starts_with(prefix.as_str()),
            Filter::Label(label) => label.matches(&network.labels),
            Filter::Driver(driver) => driver == "bridge",
            Filter::Type(wanted) => builtin == *wanted,
            Filter::Scope(scope) => scope == "local",
            Filter::Dangling(dangling) => (!builtin && !in_use(&network.name)) == *dangling,
        }
    }
}

fn parse_filter(value: &str) -> Result<Filter, String> {
    let invalid = || {
        format!(
            "{value:?}: filters are name=PART, id=PREFIX, label=KEY[=VALUE], driver=bridge, \
             type=builtin|custom, scope=local, dangling=true|false"
        )
    };
    let (key, wanted) = value.split_once('=').ok_or_else(invalid)?;
    match key {
        "name" => Ok(Filter::Name(wanted.to_owned())),
        "id" => Ok(Filter::Id(wanted.to_owned())),
        "label" => Ok(Filter::Label(LabelFilter::parse(wanted))),
        "driver" => Ok(Filter::Driver(wanted.to_owned())),
        "type" => match wanted {
            "builtin" => Ok(Filter::Type(true)),
            "custom" => Ok(Filter::Type(false)),
            _ => Err(invalid()),
        },
        "scope" => Ok(Filter::Scope(wanted.to_owned())),
        "dangling" => match wanted {
            "true" | "1" => Ok(Filter::Dangling(true)),
            "false" | "0" => Ok(Filter::Dangling(false)),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// A network as `docker network inspect` shows it: its `Containers` those
/// on it now, the running ones.
pub fn describe(info: &NetworkInfo) -> Value {
    let network = &info.network;
    let containers: serde_json::Map<String, Value> = info
        .members
        .iter()
        .filter(|member| member.running)
        .map(|member| {
            let endpoint = &member.endpoint;
            let address = format!("{}/{}", endpoint.address, network.subnet.prefix_len);
            let entry = json!({
                "Name": member.name,
                "IPv4Address": address,
                "MacAddress": endpoint.mac.to_string(),
            });
            (member.id.clone(), entry)
        })
        .collect();
    json!({
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Config": [{
                "Subnet": network.subnet.to_string(),
                "Gateway": network.gateway.to_string(),
            }],
        },
        "Internal": network.internal,
        "Attachable": true,
        "Ingress": false,
        "ConfigOnly": false,
        "Labels": network.labels,
        "Containers": containers,
        "Options": { "com.docker.network.bridge.name": network.bridge },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(name: &str, labels: &[(&str, &str)]) -> Network {
        Network {
            id: "abc123".repeat(11),
            name: name.into(),
            bridge: "hull-x".into(),
            subnet: "10.90.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 90, 0, 1),
            created: String::new(),
            internal: false,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn networks_filter_by_name_label_and_type() {
        let filters = |values: &[&str]| -> Vec<Filter> {
            values.iter().map(|v| parse_filter(v).unwrap()).collect()
        };
        let db = network("back-db", &[("tier", "db")]);
        let default = network(DEFAULT_NETWORK, &[]);
        let used = |name: &str| name == "back-db";
        let holds =
            |list: &[Filter], network: &Network| all_hold(list, |f| f.matches(network, &used));
        assert!(holds(
            &filters(&["name=db", "label=tier=db", "type=custom"]),
            &db
        ));
        assert!(!holds(&filters(&["type=custom"]), &default));
        assert!(holds(
            &filters(&["type=builtin", "driver=bridge"]),
            &default
        ));
        assert!(holds(&filters(&["name=front", "name=back"]), &db));
        // Every network is local; one a container is on is no dangling one,
        // nor is the default network.
        assert!(holds(&filters(&["scope=local"]), &db));
        assert!(!holds(&filters(&["scope=swarm"]), &db));
        assert!(!holds(&filters(&["dangling=true"]), &db));
        assert!(holds(&filters(&["dangling=false"]), &db));
        assert!(!holds(&filters(&["dangling=true"]), &default));
        let idle = network("idle", &[]);
        assert!(holds(&filters(&["dangling=true", "scope=local"]), &idle));
        assert!(!holds(&filters(&["scope=cluster"]), &idle));
        assert!(parse_filter("dangling=maybe").is_err());
        assert!(parse_driver("overlay").is_err());
    }
}
