//! `hull network`: the networks containers join, made, listed and removed
//! as with Docker.

use std::net::Ipv4Addr;

use anyhow::Result;
use clap::{Args, Subcommand};
use hull_runtime::{parse_host_name, parse_network_name, NetworkInfo, Runtime, Subnet};
use serde_json::{json, Value};

use crate::container_cmd::print_inspected;
use hull_format::{render_rows, Format, Listing};

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
    #[arg(value_parser = parse_network_name)]
    name: String,
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
    /// `table` (default), `json` (one object per line), or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
}

#[derive(Args)]
pub struct InspectArgs {
    /// A Go template for each network, e.g. `{{.IPAM.Config}}`.
    #[arg(short, long)]
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
    ],
};

pub fn network(command: NetworkCommand, runtime: &Runtime) -> Result<u8> {
    match command {
        NetworkCommand::Create(args) => {
            let network = runtime.create_network(&args.name, args.subnet, args.gateway)?;
            println!("{}", network.id);
        }
        NetworkCommand::Ls(args) => {
            let networks = runtime.list_networks()?;
            if args.quiet {
                networks.iter().for_each(|n| println!("{}", &n.id[..12]));
                return Ok(0);
            }
            let rows: Vec<Value> = networks
                .iter()
                .map(|n| {
                    json!({ "ID": &n.id[..12], "Name": n.name, "Driver": "bridge", "Scope": "local",
                            "CreatedAt": n.created })
                })
                .collect();
            render_rows(&args.format, &LISTING, &rows, &mut std::io::stdout())?;
        }
        NetworkCommand::Inspect(args) => {
            let described = args
                .networks
                .iter()
                .map(|name| Ok(describe(&runtime.inspect_network(name)?)))
                .collect::<Result<Vec<_>>>()?;
            return print_inspected(args.format.as_deref(), &described);
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
                prune(runtime)?;
            }
        }
    }
    Ok(0)
}

/// `hull network prune`, and its part of `hull system prune`.
pub fn prune(runtime: &Runtime) -> Result<()> {
    let removed = runtime.prune_networks()?;
    if !removed.is_empty() {
        println!("Deleted Networks:\n{}", removed.join("\n"));
    }
    Ok(())
}

/// A network as `docker network inspect` shows it.
pub fn describe(info: &NetworkInfo) -> Value {
    let network = &info.network;
    let containers: serde_json::Map<String, Value> = info
        .members
        .iter()
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
