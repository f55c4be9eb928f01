//! Container networking on the host. A container joins a network (the
//! default `bridge`, host bridge `hull0`) with an address leased for its
//! lifetime; each boot of its VM gets a tap on that bridge for a virtio-net
//! device, NAT out through the host, and a proxy for its published ports.
//!
//! - [`store`]: networks and address leases.
//! - [`bridge`] and [`nat`]: the host side of a network.
//! - [`tap`]: the VM's end of the bridge.
//! - [`ports`] and [`proxy`]: `-p`, `-P` and the relays behind them.
//! - [`dns`]: the network's name server, which knows its containers.
//! - [`etc_files`]: the container's hosts, resolv.conf and hostname.

mod bridge;
mod dns;
mod etc_files;
mod nat;
mod ports;
mod proxy;
mod store;
mod tap;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use anyhow::{Context, Result};
use hull_netlink::Netlink;
use hull_protocol::{InterfaceSpec, NetworkSpec};
use serde::{Deserialize, Serialize};

pub use ports::{PortMapping, Protocol};
use proxy::PortProxy;
use store::usable_name;
pub(crate) use store::LeaseHolder;
pub(crate) use store::NetworkStore;
pub use store::{parse_network_name, Network, Subnet, DEFAULT_NETWORK};

use crate::error::Error;
use crate::root::{StateRoot, SHORT_ID_LEN};

/// `--network none`: loopback only.
pub const NO_NETWORK: &str = "none";

/// What the network needs to know of the containers recorded in the state
/// root (the container records live above this module, which knows them
/// only through this).
pub(crate) trait ContainerRecords: Send + Sync {
    /// Whether container `id` is recorded (or being recorded).
    fn recorded(&self, id: &str) -> bool;
    /// Whether container `id` runs; `None` if it is not recorded.
    fn running(&self, id: &str) -> Option<bool>;
    /// The names of the containers recorded on network `network`.
    fn on_network(&self, network: &str) -> Result<Vec<String>>;
}

/// How a new container is networked (`hull run`'s `--network`, `-p`,
/// `--ip`, ... flags).
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// The network to join: `bridge` (the default), `none` (loopback
    /// only), or one made with `hull network create`.
    pub network: String,
    /// Other names the container has on its network, for the network's
    /// name server to answer.
    pub network_alias: Vec<String>,
    /// Ports to publish: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]`
    /// (no HOST_PORT: one the kernel picks).
    pub publish: Vec<String>,
    /// Publish every port the image exposes on ports the kernel picks.
    pub publish_all: bool,
    /// The container's address on its network (default: the next free).
    pub ip: Option<Ipv4Addr>,
    /// The container's MAC address (default: derived from its address).
    pub mac_address: Option<MacAddress>,
    /// Name servers for the container (default: the host's).
    pub dns: Vec<IpAddr>,
    /// Extra /etc/hosts lines.
    pub add_host: Vec<HostEntry>,
}

impl Default for NetworkOptions {
    /// The default network, nothing published.
    fn default() -> NetworkOptions {
        NetworkOptions {
            network: DEFAULT_NETWORK.into(),
            network_alias: Vec::new(),
            publish: Vec::new(),
            publish_all: false,
            ip: None,
            mac_address: None,
            dns: Vec::new(),
            add_host: Vec::new(),
        }
    }
}

impl NetworkOptions {
    /// Checks the options as far as this host can tell without the state
    /// root: the network's name, the ports to publish (and that those named
    /// are free here: ports left to the kernel are not checked), and the
    /// flags that need a network. A front end that creates the container
    /// elsewhere (the hull machine forwards this host's ports to it) asks
    /// before it goes there.
    pub fn check_here(&self) -> crate::Result<()> {
        usable_name(&self.network)?;
        let mut named = Vec::new();
        for value in &self.publish {
            let mapping = PortMapping::parse(value)?;
            if mapping.host_port != 0 {
                named.push(mapping);
            }
        }
        if self.network == NO_NETWORK {
            self.check_offline(!self.publish.is_empty())?;
        }
        Ok(ports::reserve_all(&named).map(drop)?)
    }

    /// Fails for flags that need a network, with `--network none`;
    /// `publishing`: whether ports are to be published.
    fn check_offline(&self, publishing: bool) -> Result<()> {
        let addressed = self.ip.is_some() || self.mac_address.is_some();
        if publishing || addressed || !self.network_alias.is_empty() {
            return Err(Error::invalid(
                "--network none gives the container no network: -p, -P, --ip, --mac-address \
                 and --network-alias need one",
            )
            .into());
        }
        if let Some(entry) = self
            .add_host
            .iter()
            .find(|entry| entry.address == HostAddress::HostGateway)
        {
            return Err(Error::invalid(format!(
                "--add-host {}:{HOST_GATEWAY} needs a network: with --network none the \
                 container cannot reach the host",
                entry.name
            ))
            .into());
        }
        Ok(())
    }
}

/// How a container is networked, fixed when it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetwork {
    /// Where it is attached; `None`: loopback only.
    pub endpoint: Option<Endpoint>,
    /// Its published ports, host ports fixed.
    pub ports: Vec<PortMapping>,
    /// Name servers it was given (`--dns`).
    pub dns: Vec<IpAddr>,
    /// Its extra /etc/hosts lines (`--add-host`).
    pub extra_hosts: Vec<HostEntry>,
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    /// The container's address there.
    pub address: Ipv4Addr,
    /// The container's MAC address.
    pub mac: MacAddress,
    /// `--network-alias`es.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// An `--add-host` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    /// The host name.
    pub name: String,
    /// Where it points.
    pub address: HostAddress,
}

impl HostEntry {
    /// Parses `NAME:IP` or `NAME:host-gateway`.
    pub fn parse(value: &str) -> Result<HostEntry, String> {
        let bad = || {
            format!("--add-host {value}: expected NAME:IP or NAME:{HOST_GATEWAY}, e.g. db:10.0.0.9")
        };
        let (name, address) = value.split_once(':').ok_or_else(bad)?;
        parse_host_name(name).map_err(|_| bad())?;
        Ok(HostEntry {
            name: name.to_owned(),
            address: address.parse().map_err(|_| bad())?,
        })
    }

    /// The entry as the container on the network with `gateway` sees it;
    /// none for `host-gateway` without a network.
    fn resolve(&self, gateway: Option<Ipv4Addr>) -> Option<HostEntry> {
        let address = match self.address {
            HostAddress::Ip(ip) => ip,
            HostAddress::HostGateway => IpAddr::V4(gateway?),
        };
        Some(HostEntry {
            name: self.name.clone(),
            address: HostAddress::Ip(address),
        })
    }
}

/// What `--add-host NAME:host-gateway` names, as in Docker.
const HOST_GATEWAY: &str = "host-gateway";

/// Where an `--add-host` name points: an address, or this host as the
/// container reaches it (its network's gateway). Stored as the user wrote
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HostAddress {
    /// This address.
    Ip(IpAddr),
    /// The host, at the container's network's gateway.
    HostGateway,
}

impl std::str::FromStr for HostAddress {
    type Err = std::net::AddrParseError;

    fn from_str(value: &str) -> Result<HostAddress, Self::Err> {
        match value {
            HOST_GATEWAY => Ok(HostAddress::HostGateway),
            ip => Ok(HostAddress::Ip(
                ip.trim_start_matches('[').trim_end_matches(']').parse()?,
            )),
        }
    }
}

impl TryFrom<String> for HostAddress {
    type Error = std::net::AddrParseError;

    fn try_from(value: String) -> Result<HostAddress, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddress::Ip(ip) => write!(f, "{ip}"),
            HostAddress::HostGateway => f.write_str(HOST_GATEWAY),
        }
    }
}

impl From<HostAddress> for String {
    fn from(address: HostAddress) -> String {
        address.to_string()
    }
}

/// `entries` as the container on the network with `gateway` sees them.
fn resolve_hosts(entries: &[HostEntry], gateway: Option<Ipv4Addr>) -> Vec<HostEntry> {
    entries
        .iter()
        .filter_map(|entry| entry.resolve(gateway))
        .collect()
}

/// A name a resolver can look up: letters, digits, '-', '.' and '_'.
pub fn parse_host_name(name: &str) -> Result<String, String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    match plain {
        true => Ok(name.to_owned()),
        false => Err(format!(
            "{name:?} is not a host name (letters, digits, '-', '.', '_')"
        )),
    }
}

/// A unicast MAC address, written `02:68:0a:59:00:02`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// A locally administered address carrying the container's IPv4 one,
    /// as Docker derives them.
    fn for_address(address: Ipv4Addr) -> MacAddress {
        let [a, b, c, d] = address.octets();
        MacAddress([0x02, 0x68, a, b, c, d])
    }
}

impl std::str::FromStr for MacAddress {
    type Err = String;

    fn from_str(value: &str) -> Result<MacAddress, String> {
        let bad = || format!("{value:?} is not a unicast MAC address like 02:42:ac:11:00:02");
        let mut bytes = [0u8; 6];
        let mut parts = value.split(':');
        for byte in &mut bytes {
            let part = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() || bytes[0] & 1 == 1 || bytes == [0; 6] {
            return Err(bad());
        }
        Ok(MacAddress(bytes))
    }
}

impl TryFrom<String> for MacAddress {
    type Error = String;

    fn try_from(value: String) -> Result<MacAddress, String> {
        value.parse()
    }
}

impl From<MacAddress> for String {
    fn from(mac: MacAddress) -> String {
        mac.to_string()
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Sets up the network of container `id` named `name` as `options` ask:
/// checks and fixes the published host ports and leases its address, held
/// by this process until the container is recorded. `exposed` is the
/// image's `EXPOSE` list (`-P`). [`release`] gives the address back.
pub(crate) fn create(
    root: &StateRoot,
    records: &dyn ContainerRecords,
    id: &str,
    name: &str,
    options: &NetworkOptions,
    exposed: &[String],
) -> Result<ContainerNetwork> {
    let mut requested = options
        .publish
        .iter()
        .map(|value| PortMapping::parse(value))
        .collect::<Result<Vec<_>>>()?;
    if options.publish_all {
        for entry in exposed {
            let mapping = match PortMapping::exposed(entry) {
                Ok(mapping) => mapping,
                Err(err) => {
                    tracing::warn!("-P leaves it out: {err:#}");
                    continue;
                }
            };
            let published = requested.iter().any(|m| {
                m.container_port == mapping.container_port && m.protocol == mapping.protocol
            });
            if !published {
                requested.push(mapping);
            }
        }
    }
    if options.network == NO_NETWORK {
        options.check_offline(!requested.is_empty())?;
        return Ok(ContainerNetwork {
            endpoint: None,
            ports: Vec::new(),
            dns: options.dns.clone(),
            extra_hosts: options.add_host.clone(),
        });
    }
    let ports = ports::reserve_all(&requested)?;
    let store = NetworkStore::open(root);
    let network = store.get(&options.network)?;
    let holder = LeaseHolder {
        container: id.to_owned(),
        pid: Some(std::process::id()),
        names: dns_names(id, name, &options.network_alias),
    };
    let address = store.lease(&network, holder, options.ip, lease_alive(records))?;
    Ok(ContainerNetwork {
        endpoint: Some(Endpoint {
            network: network.name,
            address,
            mac: options
                .mac_address
                .unwrap_or_else(|| MacAddress::for_address(address)),
            aliases: options.network_alias.clone(),
        }),
        ports,
        dns: options.dns.clone(),
        extra_hosts: options.add_host.clone(),
    })
}

/// What the network's name server answers with container `id`'s address:
/// its name, its aliases and its short ID, as Docker's does.
fn dns_names(id: &str, name: &str, aliases: &[String]) -> Vec<String> {
    let mut names = vec![name.to_owned()];
    names.extend(aliases.iter().cloned());
    names.push(id[..id.len().min(SHORT_ID_LEN)].to_owned());
    names.iter().map(|name| name.to_ascii_lowercase()).collect()
}

/// Gives the running or created container `id` the name `name` on its
/// network's name server too.
pub(crate) fn rename(
    root: &StateRoot,
    id: &str,
    network: &ContainerNetwork,
    name: &str,
) -> Result<()> {
    let Some(endpoint) = &network.endpoint else {
        return Ok(());
    };
    NetworkStore::open(root).rename(
        &endpoint.network,
        endpoint.address,
        id,
        dns_names(id, name, &endpoint.aliases),
    )
}

/// Removes the network `name` and its bridge: refused for the default
/// network and while containers are on it.
pub(crate) fn remove(root: &StateRoot, records: &dyn ContainerRecords, name: &str) -> Result<()> {
    let store = NetworkStore::open(root);
    let network = store.get(name)?;
    if network.name == DEFAULT_NETWORK {
        return Err(Error::InUse(format!(
            "network {DEFAULT_NETWORK} is hull's default and cannot be removed"
        ))
        .into());
    }
    let users = records.on_network(&network.name)?;
    if !users.is_empty() {
        return Err(Error::InUse(format!(
            "network {name} is in use by {}; remove them first",
            users.join(", ")
        ))
        .into());
    }
    if store.in_use(name, |holder| process_runs(holder.pid))? {
        return Err(Error::InUse(format!(
            "network {name} is in use by a container being created"
        ))
        .into());
    }
    let _host_side = store.lock_host_side()?;
    let bridge_exists = Netlink::link_index(&network.bridge).is_some();
    if bridge_exists {
        Netlink::open()?.delete_link(&network.bridge)?;
    }
    store.remove(name)?;
    if bridge_exists {
        bridge::apply_rules(&store)?;
    }
    Ok(())
}

/// Removes every network no container is on but the default, whose host
/// side (bridge and rules) goes too while no container holds an address on
/// it: the next container sets it up again. Returns the removed networks.
pub(crate) fn prune(root: &StateRoot, records: &dyn ContainerRecords) -> Result<Vec<String>> {
    let store = NetworkStore::open(root);
    let mut removed = Vec::new();
    for network in store.list()? {
        if network.name != DEFAULT_NETWORK && remove(root, records, &network.name).is_ok() {
            removed.push(network.name);
        }
    }
    let default = store.get(DEFAULT_NETWORK)?;
    // A container takes its lease before it sets up the host side (under
    // this lock), so one that starts now either is seen here or finds the
    // bridge gone and makes it again.
    let _host_side = store.lock_host_side()?;
    let idle = !store.in_use(DEFAULT_NETWORK, lease_alive(records))?;
    if idle && Netlink::link_index(&default.bridge).is_some() {
        Netlink::open()?.delete_link(&default.bridge)?;
        bridge::apply_rules(&store)?;
    }
    Ok(removed)
}

/// Whether a lease is still held: by a recorded container, or by the
/// process that took it for a container it is creating.
fn lease_alive(records: &dyn ContainerRecords) -> impl Fn(&LeaseHolder) -> bool + '_ {
    |holder| records.recorded(&holder.container) || process_runs(holder.pid)
}

/// Leases an address on network `name` to the stopped container `id`
/// named `container_name`, which is on no network, at `ip` if given, with
/// `aliases` for its name server.
pub(crate) fn join(
    root: &StateRoot,
    records: &dyn ContainerRecords,
    id: &str,
    container_name: &str,
    name: &str,
    ip: Option<Ipv4Addr>,
    aliases: Vec<String>,
) -> Result<Endpoint> {
    let store = NetworkStore::open(root);
    let network = store.get(name)?;
    let holder = LeaseHolder {
        container: id.to_owned(),
        pid: None,
        names: dns_names(id, container_name, &aliases),
    };
    let address = store.lease(&network, holder, ip, lease_alive(records))?;
    Ok(Endpoint {
        network: network.name,
        address,
        mac: MacAddress::for_address(address),
        aliases,
    })
}

/// Whether the process that took a lease still runs.
fn process_runs(pid: Option<u32>) -> bool {
    pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Gives back container `id`'s address.
pub(crate) fn release(root: &StateRoot, id: &str, network: &ContainerNetwork) -> Result<()> {
    match &network.endpoint {
        Some(endpoint) => release_endpoint(root, id, endpoint),
        None => Ok(()),
    }
}

/// Gives back container `id`'s address on `endpoint`'s network.
pub(crate) fn release_endpoint(root: &StateRoot, id: &str, endpoint: &Endpoint) -> Result<()> {
    NetworkStore::open(root).release(&endpoint.network, endpoint.address, id)
}

/// A container's network for one boot of its VM: the tap (handed to the
/// VMM), the host's services for it, and what the agent sets up inside.
pub(crate) struct Attached {
    /// The tap and the guest's MAC address; `None` with `--network none`.
    pub tap: Option<(OwnedFd, MacAddress)>,
    pub services: Services,
    pub spec: NetworkSpec,
}

/// What serves a container from the host while its VM runs; whoever holds
/// the VM keeps it, and dropping it stops it.
#[derive(Default)]
pub(crate) struct Services {
    _ports: Option<PortProxy>,
    _names: Option<dns::NameServer>,
}

/// Connects one boot of container `id`'s VM to its network; the network's
/// name server learns from `records` which containers run.
pub(crate) fn attach(
    root: &StateRoot,
    records: Arc<dyn ContainerRecords>,
    id: &str,
    network: &ContainerNetwork,
    hostname: &str,
) -> Result<Attached> {
    let Some(endpoint) = &network.endpoint else {
        let extra_hosts = resolve_hosts(&network.extra_hosts, None);
        let etc_files = etc_files::render(hostname, None, &extra_hosts, &network.dns);
        return Ok(Attached {
            tap: None,
            services: Services::default(),
            spec: NetworkSpec {
                interface: None,
                etc_files,
            },
        });
    };
    let store = NetworkStore::open(root);
    let definition = store.get(&endpoint.network)?;
    let mut netlink = Netlink::open()?;
    let host_side = store.lock_host_side().and_then(|_host_side| {
        bridge::ensure(&definition, &store, &mut netlink)?;
        tap::create(&tap_name(id), &definition.bridge, &mut netlink)
    });
    let tap = host_side.context("container networking needs root (CAP_NET_ADMIN)")?;
    let ports = match network.ports.is_empty() {
        true => None,
        false => Some(PortProxy::start(&network.ports, endpoint.address)?),
    };
    let upstream = match network.dns.is_empty() {
        true => etc_files::host_name_servers(),
        false => network.dns.clone(),
    };
    let directory = Box::new(directory(root.clone(), records, &endpoint.network));
    let upstream = upstream.iter().map(|ip| SocketAddr::new(*ip, dns::PORT));
    let names = dns::NameServer::start(
        definition.gateway,
        definition.subnet,
        directory,
        upstream.collect(),
    );
    // Without its name server, the container still runs: names of other
    // containers just do not resolve.
    let names = names.inspect_err(|err| tracing::warn!("{err:#}")).ok();
    // The gateway answers names when a name server does; else the
    // container asks the upstream servers itself.
    let name_servers = match names {
        Some(_) => vec![IpAddr::V4(definition.gateway)],
        None => network.dns.clone(),
    };
    let etc_files = etc_files::render(
        hostname,
        Some(endpoint.address),
        &resolve_hosts(&network.extra_hosts, Some(definition.gateway)),
        &name_servers,
    );
    Ok(Attached {
        tap: Some((tap, endpoint.mac)),
        services: Services {
            _ports: ports,
            _names: names,
        },
        spec: NetworkSpec {
            interface: Some(InterfaceSpec {
                mac: endpoint.mac.to_string(),
                address: endpoint.address,
                prefix_len: definition.subnet.prefix_len,
                gateway: definition.gateway,
            }),
            etc_files,
        },
    })
}

/// The name server's view of network `network` in the state root `root`:
/// the address of the running container with a name, if any.
fn directory(
    root: StateRoot,
    records: Arc<dyn ContainerRecords>,
    network: &str,
) -> impl Fn(&str) -> Option<Ipv4Addr> + Send + Sync {
    let network = network.to_owned();
    move |name| {
        let leases = NetworkStore::open(&root).leases(&network).ok()?;
        leases
            .into_iter()
            .find(|(_, holder)| {
                holder.names.iter().any(|n| n == name) && runs(records.as_ref(), holder)
            })
            .map(|(address, _)| address)
    }
}

/// Whether the holder of a lease runs: its recorded container, or else the
/// process creating the container that holds it.
fn runs(records: &dyn ContainerRecords, holder: &LeaseHolder) -> bool {
    records
        .running(&holder.container)
        .unwrap_or_else(|| process_runs(holder.pid))
}

/// `htap` and the start of the container ID: unique among running VMs,
/// within the kernel's name limit, and recognisably hull's.
fn tap_name(id: &str) -> String {
    let prefix = "htap";
    format!("{prefix}{}", &id[..tap::MAX_NAME_LEN - prefix.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state root without container records.
    struct NoRecords;

    impl ContainerRecords for NoRecords {
        fn recorded(&self, _id: &str) -> bool {
            false
        }

        fn running(&self, _id: &str) -> Option<bool> {
            None
        }

        fn on_network(&self, _network: &str) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn mac_addresses_parse_show_and_derive_from_the_address() {
        let mac: MacAddress = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
        assert_eq!(
            MacAddress::for_address(Ipv4Addr::new(10, 89, 0, 5)).to_string(),
            "02:68:0a:59:00:05"
        );
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "01:00:5e:00:00:01",
            "0:42:ac:11:00:02",
            "00:00:00:00:00:00",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_host_takes_a_name_and_an_address_or_the_host_gateway() {
        let entry = HostEntry::parse("db:10.0.0.9").unwrap();
        assert_eq!(entry.name, "db");
        assert_eq!(entry.address, HostAddress::Ip("10.0.0.9".parse().unwrap()));
        let v6 = HostEntry::parse("v6:[2001:db8::1]").unwrap();
        assert_eq!(v6.address, HostAddress::Ip("2001:db8::1".parse().unwrap()));
        let host = HostEntry::parse("host.docker.internal:host-gateway").unwrap();
        assert_eq!(host.address, HostAddress::HostGateway);
        for bad in ["db", ":10.0.0.9", "db:nowhere", "a b:10.0.0.1", "db:host"] {
            assert!(HostEntry::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_gateway_is_the_networks_gateway_and_dropped_without_one() {
        let entries = [
            HostEntry::parse("db:10.0.0.9").unwrap(),
            HostEntry::parse("host:host-gateway").unwrap(),
        ];
        let on_network = resolve_hosts(&entries, Some(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(on_network[0], entries[0]);
        assert_eq!(on_network[1].address.to_string(), "10.89.0.1");
        let offline = resolve_hosts(&entries, None);
        assert_eq!(offline, entries[..1]);
    }

    #[test]
    fn host_addresses_are_stored_as_written() {
        let entries = [
            HostEntry::parse("db:10.0.0.9").unwrap(),
            HostEntry::parse("host:host-gateway").unwrap(),
        ];
        let json = serde_json::to_string(&entries).unwrap();
        assert_eq!(
            json,
            r#"[{"name":"db","address":"10.0.0.9"},{"name":"host","address":"host-gateway"}]"#
        );
        assert_eq!(
            serde_json::from_str::<Vec<HostEntry>>(&json).unwrap(),
            entries
        );
        assert!(serde_json::from_str::<HostEntry>(r#"{"name":"x","address":"gw"}"#).is_err());
    }

    #[test]
    fn tap_names_fit_the_kernel_limit() {
        let name = tap_name(&"0123456789abcdef".repeat(4));
        assert_eq!(name, "htap0123456789a");
        assert_eq!(name.len(), tap::MAX_NAME_LEN);
    }

    #[test]
    fn network_none_has_no_endpoint_and_refuses_ports() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().to_owned());
        let flags = NetworkOptions {
            network: NO_NETWORK.into(),
            ..NetworkOptions::default()
        };
        let network = create(&root, &NoRecords, "c", "c", &flags, &["80/tcp".into()]).unwrap();
        assert_eq!(network.endpoint, None);
        let publishing = NetworkOptions {
            publish: vec!["8080:80".into()],
            ..flags
        };
        assert!(create(&root, &NoRecords, "c", "c", &publishing, &[]).is_err());
    }

    #[test]
    fn leases_are_released_for_the_next_container() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().to_owned());
        let flags = NetworkOptions {
            network: DEFAULT_NETWORK.into(),
            publish_all: true,
            ..NetworkOptions::default()
        };
        let first = create(
            &root,
            &NoRecords,
            "a",
            "a",
            &flags,
            &["80/tcp".into(), "53/udp".into()],
        )
        .unwrap();
        let endpoint = first.endpoint.clone().unwrap();
        assert_eq!(endpoint.address, Ipv4Addr::new(10, 89, 0, 2));
        assert_eq!(endpoint.mac.to_string(), "02:68:0a:59:00:02");
        let sides: Vec<String> = first
            .ports
            .iter()
            .map(PortMapping::container_side)
            .collect();
        assert_eq!(sides, ["80/tcp", "53/udp"]);
        assert!(first.ports.iter().all(|m| m.host_port != 0));
        let second = create(&root, &NoRecords, "b", "b", &flags, &[]).unwrap();
        assert_eq!(
            second.endpoint.unwrap().address,
            Ipv4Addr::new(10, 89, 0, 3)
        );
        release(&root, "a", &first).unwrap();
        let third = create(&root, &NoRecords, "c", "c", &flags, &[]).unwrap();
        assert_eq!(third.endpoint.unwrap().address, endpoint.address);
    }
}
