//! `hull network ls` and `hull network inspect`: the networks containers
//! join, as Docker shows them.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::container;
use crate::network::{Network, NetworkStore, DEFAULT_NETWORK};
use crate::state::StateRoot;
use crate::table;

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// List networks.
    Ls(LsArgs),
    /// Show networks and the containers on them as JSON.
    Inspect(InspectArgs),
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
        NetworkCommand::Ls(args) => ls(&store, &args),
        NetworkCommand::Inspect(args) => inspect(&store, root, &args),
    }
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
