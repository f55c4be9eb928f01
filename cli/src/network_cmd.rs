//! `hull network`: the networks containers join, made, listed and removed
//! as with Docker.

use std::net::Ipv4Addr;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::container;
use crate::network::{self, Network, NetworkStore, Subnet, DEFAULT_NETWORK};
use crate::state::StateRoot;
use crate::table;

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network: its own bridge and subnet; containers on other
    /// networks cannot reach it.
    Create(CreateArgs),
    /// List networks.
    Ls(LsArgs),
    /// Show networks and the containers on them as JSON.
    Inspect(InspectArgs),
    /// Remove networks no container is on.
    Rm(RmArgs),
    /// Put a stopped container that is on no network on a network.
    Connect(ConnectArgs),
    /// Take a stopped container off its network.
    Disconnect(DisconnectArgs),
    /// Remove every network no container is on (but the default, whose
    /// bridge goes while no container uses it).
    Prune,
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
    name: String,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// The container's address there (default: the next free).
    #[arg(long, value_name = "IPV4")]
    ip: Option<Ipv4Addr>,
    /// Another name the container has there.
    #[arg(long = "alias", value_name = "NAME", value_parser = network::parse_host_name)]
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
}

#[derive(Args)]
pub struct InspectArgs {
    /// Network names.
    #[arg(required = true)]
    networks: Vec<String>,
}

pub fn network(command: NetworkCommand, root: &StateRoot) -> Result<u8> {
    let store = NetworkStore::open(root);
    // Listed even before any container has used it.
    store.get(DEFAULT_NETWORK)?;
    match command {
        NetworkCommand::Create(args) => {
            let network = store.create(&args.name, args.subnet, args.gateway)?;
            println!("{}", network.id);
            Ok(0)
        }
        NetworkCommand::Ls(args) => ls(&store, &args),
        NetworkCommand::Inspect(args) => inspect(&store, root, &args),
        NetworkCommand::Rm(args) => {
            for name in &args.networks {
                network::remove(root, name)?;
                println!("{name}");
            }
            Ok(0)
        }
        NetworkCommand::Connect(args) => {
            let mut container = container::find(root, &args.container)?;
            network::connect(root, &mut container, &args.network, args.ip, args.aliases)?;
            Ok(0)
        }
        NetworkCommand::Disconnect(args) => {
            let mut container = container::find(root, &args.container)?;
            network::disconnect(root, &mut container, &args.network)?;
            Ok(0)
        }
        NetworkCommand::Prune => prune(root),
    }
}

/// `hull network prune`, and its part of `hull system prune`.
pub fn prune(root: &StateRoot) -> Result<u8> {
    let removed = network::prune(root)?;
    if !removed.is_empty() {
        println!("Deleted Networks:\n{}", removed.join("\n"));
    }
    Ok(0)
}

fn ls(store: &NetworkStore, args: &LsArgs) -> Result<u8> {
    let rows: Vec<[String; 4]> = store
        .list()?
        .into_iter()
        .map(|network| {
            [
                network.id[..12].to_owned(),
                network.name,
                "bridge".into(),
                "local".into(),
            ]
        })
        .collect();
    if args.quiet {
        rows.iter().for_each(|row| println!("{}", row[0]));
    } else {
        table::print(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
    }
    Ok(0)
}

fn inspect(store: &NetworkStore, root: &StateRoot, args: &InspectArgs) -> Result<u8> {
    let containers = container::list(root)?;
    let mut described = Vec::new();
    for name in &args.networks {
        let network = store.get(name)?;
        let members: serde_json::Map<String, Value> = containers
            .iter()
            .filter_map(|container| {
                let endpoint = container.config.boot.network.endpoint.as_ref()?;
                (endpoint.network == network.name).then(|| {
                    (
                        container.id().to_owned(),
                        json!({
                            "Name": container.config.name,
                            "IPv4Address": format!("{}/{}", endpoint.address, network.subnet.prefix_len),
                            "MacAddress": endpoint.mac.to_string(),
                        }),
                    )
                })
            })
            .collect();
        described.push(describe(&network, members));
    }
    println!("{}", serde_json::to_string_pretty(&described)?);
    Ok(0)
}

fn describe(network: &Network, containers: serde_json::Map<String, Value>) -> Value {
    json!({
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": "bridge",
        "IPAM": {
            "Driver": "default",
            "Config": [{
                "Subnet": network.subnet.to_string(),
                "Gateway": network.gateway.to_string(),
            }],
        },
        "Containers": containers,
        "Options": { "com.docker.network.bridge.name": network.bridge },
    })
}
