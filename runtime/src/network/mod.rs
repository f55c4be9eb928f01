//! Container networking on the host. A container joins a network (the
//! default `bridge`, host bridge `hull0`) with an address leased for its
//! lifetime; each boot of its VM gets a tap on that bridge for a virtio-net
//! device, NAT out through the host, and a proxy for its published ports.
//!
//! - [`store`]: networks and address leases.
//! - [`bridge`] and [`nat`]: the host side of a network.
//! - [`tap`]: the VM's end of the bridge, and [`filter`]: what the VM may
//!   send through it (its own MAC and address only).
//! - [`nft`]: running nftables.
//! - [`ports`] and [`proxy`]: `-p`, `-P` and the relays behind them.
//! - [`dns`]: the network's name server, which knows its containers.
//! - [`etc_files`]: the container's hosts, resolv.conf and hostname.

mod bridge;
pub(crate) mod dns;
mod etc_files;
mod filter;
mod nat;
mod nft;
mod ports;
mod proxy;
mod store;
mod tap;

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use anyhow::{Context, Result};
use hull_netlink::Netlink;
use hull_protocol::{InterfaceSpec, NetworkSpec};
use serde::{Deserialize, Serialize};

use etc_files::Resolver;
pub use ports::{PortMapping, PortRequest, Protocol};
use proxy::PortProxy;
use store::usable_name;
pub(crate) use store::LeaseHolder;
pub(crate) use store::NetworkStore;
pub use store::{parse_network_name, Network, NewNetwork, Subnet, DEFAULT_NETWORK};

use crate::error::Error;
use crate::root::{StateRoot, SHORT_ID_LEN};

/// `--network none`: loopback only.
pub const NO_NETWORK: &str = "none";
/// The networks a container can be on at once: a VM's network interfaces.
const MAX_NETWORKS: usize = 8;

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
    /// The host ports the containers recorded publish.
    fn published_ports(&self) -> Result<Vec<PortMapping>>;
}

/// How a new container is networked (`hull run`'s `--network`, `-p`,
/// `--ip`, ... flags).
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// The networks to join: `bridge` (the default when none is named),
    /// `none` (loopback only, alone), or ones made with `hull network
    /// create`. The first carries the default route, the published ports
    /// and `ip`/`mac_address`; the container answers to its names on every
    /// one of them.
    pub networks: Vec<String>,
    /// Other names the container has on its networks, for their name
    /// servers to answer.
    pub network_alias: Vec<String>,
    /// Ports to publish: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]`
    /// (no HOST_PORT: one the kernel picks).
    pub publish: Vec<String>,
    /// Publish every port the image exposes on ports the kernel picks.
    pub publish_all: bool,
    /// The container's address on its first network (default: the next
    /// free).
    pub ip: Option<Ipv4Addr>,
    /// The container's MAC address there (default: derived from its
    /// address).
    pub mac_address: Option<MacAddress>,
    /// Name servers for the container (default: the host's).
    pub dns: Vec<IpAddr>,
    /// Search domains for the container (default: the host's; `.` alone:
    /// none), each checked by [`parse_dns_search`].
    pub dns_search: Vec<String>,
    /// Resolver options for the container (default: the host's), each
    /// checked by [`parse_dns_option`].
    pub dns_options: Vec<String>,
    /// Extra /etc/hosts lines.
    pub add_host: Vec<HostEntry>,
}

impl Default for NetworkOptions {
    /// The default network, nothing published.
    fn default() -> NetworkOptions {
        NetworkOptions {
            networks: Vec::new(),
            network_alias: Vec::new(),
            publish: Vec::new(),
            publish_all: false,
            ip: None,
            mac_address: None,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            add_host: Vec::new(),
        }
    }
}

impl NetworkOptions {
    /// What `publish` asks, each `-p` value parsed.
    pub fn port_requests(&self) -> Result<Vec<PortRequest>> {
        let mut requests = Vec::new();
        for value in &self.publish {
            requests.extend(PortRequest::parse(value)?);
        }
        Ok(requests)
    }

    /// Checks the options as far as this host can tell without the state
    /// root: the network's name, the ports to publish (and that those named
    /// are free here: ports left to the kernel are not checked), and the
    /// flags that need a network. A front end that creates the container
    /// elsewhere (the hull machine forwards this host's ports to it) asks
    /// before it goes there.
    pub fn check_here(&self) -> crate::Result<()> {
        for network in &self.networks {
            usable_name(network)?;
        }
        self.check_networks()?;
        self.check_resolver()?;
        let requests = self.port_requests()?;
        if self.offline() {
            self.check_offline(!self.publish.is_empty())?;
        }
        PortRequest::check_free(&requests)
    }

    /// Fails for search domains or resolver options that are not one word
    /// each (a library caller's could break the container's resolv.conf).
    fn check_resolver(&self) -> crate::Result<()> {
        for domain in &self.dns_search {
            parse_dns_search(domain).map_err(Error::invalid)?;
        }
        for option in &self.dns_options {
            parse_dns_option(option).map_err(Error::invalid)?;
        }
        Ok(())
    }

    /// The networks to join, the default one if none is named.
    pub(crate) fn networks(&self) -> Vec<String> {
        match self.networks.is_empty() {
            true => vec![DEFAULT_NETWORK.to_owned()],
            false => self.networks.clone(),
        }
    }

    /// How many network interfaces the container's VM gets: one per
    /// network joined, none with loopback only.
    pub(crate) fn interfaces(&self) -> usize {
        match self.offline() {
            true => 0,
            false => self.networks().len(),
        }
    }

    /// Whether the container is to have loopback only.
    fn offline(&self) -> bool {
        self.networks.iter().any(|network| network == NO_NETWORK)
    }

    /// Fails for `none` with other networks, a network named twice, and
    /// more networks than a VM takes interfaces.
    fn check_networks(&self) -> crate::Result<()> {
        if self.networks.len() > MAX_NETWORKS {
            return Err(Error::invalid(format!(
                "a container is on {MAX_NETWORKS} networks at most"
            )));
        }
        if self.offline() && self.networks.len() > 1 {
            return Err(Error::invalid(
                "--network none is loopback only: it goes with no other network",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = self.networks.iter().find(|network| !seen.insert(*network)) {
            return Err(Error::invalid(format!("--network {twice} is named twice")));
        }
        Ok(())
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

/// How a container is networked, fixed while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredNetwork")]
pub struct ContainerNetwork {
    /// Where it is attached, the one with the default route (and the
    /// published ports) first; none: loopback only.
    pub endpoints: Vec<Endpoint>,
    /// Its published ports, host ports fixed.
    pub ports: Vec<PortMapping>,
    /// Name servers it was given (`--dns`).
    pub dns: Vec<IpAddr>,
    /// Search domains it was given (`--dns-search`).
    pub dns_search: Vec<String>,
    /// Resolver options it was given (`--dns-option`).
    pub dns_options: Vec<String>,
    /// Its extra /etc/hosts lines (`--add-host`).
    pub extra_hosts: Vec<HostEntry>,
}

impl ContainerNetwork {
    /// Its `resolv.conf` settings, asking `servers`.
    fn resolver<'a>(&'a self, servers: &'a [IpAddr]) -> Resolver<'a> {
        Resolver {
            servers,
            search: &self.dns_search,
            options: &self.dns_options,
        }
    }

    /// The endpoint with the default route and the published ports.
    pub fn primary(&self) -> Option<&Endpoint> {
        self.endpoints.first()
    }

    /// Its endpoint on network `network`.
    pub fn on(&self, network: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|endpoint| endpoint.network == network)
    }
}

/// A container's network as its record has it, of this hull or an older
/// one, which had one endpoint at most.
#[derive(Deserialize)]
struct StoredNetwork {
    #[serde(default)]
    endpoints: Vec<Endpoint>,
    #[serde(default)]
    endpoint: Option<Endpoint>,
    #[serde(default)]
    ports: Vec<PortMapping>,
    #[serde(default)]
    dns: Vec<IpAddr>,
    #[serde(default)]
    dns_search: Vec<String>,
    #[serde(default)]
    dns_options: Vec<String>,
    #[serde(default)]
    extra_hosts: Vec<HostEntry>,
}

impl From<StoredNetwork> for ContainerNetwork {
    fn from(stored: StoredNetwork) -> ContainerNetwork {
        let mut endpoints = stored.endpoints;
        endpoints.extend(stored.endpoint);
        ContainerNetwork {
            endpoints,
            ports: stored.ports,
            dns: stored.dns,
            dns_search: stored.dns_search,
            dns_options: stored.dns_options,
            extra_hosts: stored.extra_hosts,
        }
    }
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

/// The longest host or domain name a container's kernel takes
/// (`HOST_NAME_MAX`, the UTS namespace's fields).
const MAX_HOSTNAME_LEN: usize = 64;

/// A container's `--hostname`: a host name ([`parse_host_name`]) its
/// kernel takes, at most 64 characters. It goes into the container's
/// `/etc/hosts`, where a space or newline would make entries of its own.
pub fn parse_hostname(name: &str) -> Result<String, String> {
    parse_host_name(name)?;
    match name.len() <= MAX_HOSTNAME_LEN {
        true => Ok(name.to_owned()),
        false => Err(format!(
            "a host name is at most {MAX_HOSTNAME_LEN} characters; this one has {}",
            name.len()
        )),
    }
}

/// A `--domainname`: a host name's characters, at most the kernel's 64
/// bytes.
pub fn parse_domain_name(name: &str) -> Result<String, String> {
    parse_hostname(name).map_err(|reason| format!("--domainname: {reason}"))
}

/// A `--dns-search` domain: `.` (no search domains), or a domain name whose
/// labels are letters, digits and inner '-' (a trailing '.' allowed).
pub fn parse_dns_search(domain: &str) -> Result<String, String> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = domain.strip_suffix('.').unwrap_or(domain);
    match domain == "." || (name.len() <= 255 && name.split('.').all(label_ok)) {
        true => Ok(domain.to_owned()),
        false => Err(format!(
            "{domain:?} is not a valid search domain (a domain name, or . for none)"
        )),
    }
}

/// A `--dns-option`: one resolver option word (`ndots:2`, `edns0`).
pub fn parse_dns_option(option: &str) -> Result<String, String> {
    match !option.is_empty() && !option.contains(char::is_whitespace) {
        true => Ok(option.to_owned()),
        false => Err(format!(
            "{option:?} is not a resolver option (one word, as ndots:2 or edns0)"
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
    let mut requested = options.port_requests()?;
    options.check_networks()?;
    options.check_resolver()?;
    let internal = match options.offline() {
        true => false,
        false => {
            NetworkStore::open(root)
                .get(&options.networks()[0])?
                .internal
        }
    };
    if internal && !requested.is_empty() {
        return Err(Error::invalid(format!(
            "network {} is internal: nothing outside it reaches its containers, so they \
             publish no ports",
            options.networks()[0]
        ))
        .into());
    }
    // As Docker's -P on an internal network: nothing.
    if options.publish_all && !internal {
        let mut published: HashSet<(u16, Protocol)> = requested
            .iter()
            .map(|m| (m.container_port, m.protocol))
            .collect();
        for entry in exposed {
            let request = match PortRequest::exposed(entry) {
                Ok(request) => request,
                Err(err) => {
                    tracing::warn!("-P leaves it out: {err:#}");
                    continue;
                }
            };
            if published.insert((request.container_port, request.protocol)) {
                requested.push(request);
            }
        }
    }
    if options.offline() {
        options.check_offline(!requested.is_empty())?;
        return Ok(ContainerNetwork {
            endpoints: Vec::new(),
            ports: Vec::new(),
            dns: options.dns.clone(),
            dns_search: options.dns_search.clone(),
            dns_options: options.dns_options.clone(),
            extra_hosts: options.add_host.clone(),
        });
    }
    let ports = ports::reserve_all_around(&requested, &records.published_ports()?)?;
    let mut endpoints = Vec::new();
    for (index, network) in options.networks().iter().enumerate() {
        let primary = index == 0;
        let leased = lease(
            root,
            records,
            Some(std::process::id()),
            (id, name),
            network,
            options.ip.filter(|_| primary),
            options.network_alias.clone(),
        );
        match leased {
            Ok(mut endpoint) => {
                if let Some(mac) = options.mac_address.filter(|_| primary) {
                    endpoint.mac = mac;
                }
                endpoints.push(endpoint);
            }
            Err(err) => {
                // Nothing half-made: the leases taken so far go back.
                for endpoint in &endpoints {
                    let _ = release_endpoint(root, id, endpoint);
                }
                return Err(err);
            }
        }
    }
    Ok(ContainerNetwork {
        endpoints,
        ports,
        dns: options.dns.clone(),
        dns_search: options.dns_search.clone(),
        dns_options: options.dns_options.clone(),
        extra_hosts: options.add_host.clone(),
    })
}

/// Leases an address on network `network` to container `id` named `name`
/// (held by the process `pid` while it creates the container), at `ip` if
/// given, with `aliases` for the network's name server.
fn lease(
    root: &StateRoot,
    records: &dyn ContainerRecords,
    pid: Option<u32>,
    (id, name): (&str, &str),
    network: &str,
    ip: Option<Ipv4Addr>,
    aliases: Vec<String>,
) -> Result<Endpoint> {
    let store = NetworkStore::open(root);
    let network = store.get(network)?;
    let holder = LeaseHolder {
        container: id.to_owned(),
        pid,
        names: dns_names(id, name, &aliases),
    };
    let address = store.lease(&network, holder, ip, lease_alive(records))?;
    Ok(Endpoint {
        network: network.name,
        address,
        mac: MacAddress::for_address(address),
        aliases,
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
/// networks' name servers too.
pub(crate) fn rename(
    root: &StateRoot,
    id: &str,
    network: &ContainerNetwork,
    name: &str,
) -> Result<()> {
    let store = NetworkStore::open(root);
    for endpoint in &network.endpoints {
        let names = dns_names(id, name, &endpoint.aliases);
        store.rename(&endpoint.network, endpoint.address, id, names)?;
    }
    Ok(())
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
pub(crate) fn prune(
    root: &StateRoot,
    records: &dyn ContainerRecords,
    selected: &dyn Fn(&Network) -> bool,
) -> Result<Vec<String>> {
    let store = NetworkStore::open(root);
    let mut removed = Vec::new();
    for network in store.list()? {
        let prunable = network.name != DEFAULT_NETWORK && selected(&network);
        if prunable && remove(root, records, &network.name).is_ok() {
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

/// Leases an address on network `network` to the stopped container `id`
/// named `container_name`, at `ip` if given, with `aliases` for its name
/// server.
pub(crate) fn join(
    root: &StateRoot,
    records: &dyn ContainerRecords,
    (id, container_name): (&str, &str),
    network: &str,
    ip: Option<Ipv4Addr>,
    aliases: Vec<String>,
) -> Result<Endpoint> {
    lease(
        root,
        records,
        None,
        (id, container_name),
        network,
        ip,
        aliases,
    )
}

/// Whether the process that took a lease still runs.
fn process_runs(pid: Option<u32>) -> bool {
    pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Gives back container `id`'s addresses, and sweeps the rules of its taps
/// if its VM's holder could not (killed).
pub(crate) fn release(root: &StateRoot, id: &str, network: &ContainerNetwork) -> Result<()> {
    for endpoint in &network.endpoints {
        release_endpoint(root, id, endpoint)?;
    }
    let store = NetworkStore::open(root);
    let bridged_here = network.endpoints.iter().any(|endpoint| {
        store
            .get(&endpoint.network)
            .is_ok_and(|network| Netlink::link_index(&network.bridge).is_some())
    });
    if bridged_here {
        let swept = store
            .lock_host_side()
            .and_then(|_host_side| filter::sweep(None));
        if let Err(err) = swept {
            tracing::warn!("{err:#}");
        }
    }
    Ok(())
}

/// Gives back container `id`'s address on `endpoint`'s network.
pub(crate) fn release_endpoint(root: &StateRoot, id: &str, endpoint: &Endpoint) -> Result<()> {
    NetworkStore::open(root).release(&endpoint.network, endpoint.address, id)
}

/// A container's network for one boot of its VM: its taps (handed to the
/// VMM), the host's services for it, and what the agent sets up inside.
pub(crate) struct Attached {
    /// A tap and the guest's MAC address for each network, the primary
    /// first; none with `--network none`.
    pub taps: Vec<(OwnedFd, MacAddress)>,
    pub services: Services,
    pub spec: NetworkSpec,
}

/// What serves a container from the host while its VM runs; whoever holds
/// the VM keeps it, and dropping it stops it.
#[derive(Default)]
pub(crate) struct Services {
    _ports: Option<PortProxy>,
    _names: Vec<dns::NameServer>,
    _filters: Vec<filter::TapFilter>,
}

/// Connects one boot of container `id`'s VM to its networks; their name
/// servers learn from `records` which containers run.
pub(crate) fn attach(
    root: &StateRoot,
    records: Arc<dyn ContainerRecords>,
    id: &str,
    network: &ContainerNetwork,
    hostname: &str,
) -> Result<Attached> {
    let Some(primary) = network.primary() else {
        let extra_hosts = resolve_hosts(&network.extra_hosts, None);
        let etc_files =
            etc_files::render(hostname, None, &extra_hosts, network.resolver(&network.dns));
        return Ok(Attached {
            taps: Vec::new(),
            services: Services::default(),
            spec: NetworkSpec {
                interfaces: Vec::new(),
                etc_files,
            },
        });
    };
    let store = NetworkStore::open(root);
    let upstream: Vec<SocketAddr> = match network.dns.is_empty() {
        true => etc_files::host_name_servers(),
        false => network.dns.clone(),
    }
    .iter()
    .map(|ip| SocketAddr::new(*ip, dns::PORT))
    .collect();
    let mut netlink = Netlink::open()?;
    let (mut taps, mut filters) = (Vec::new(), Vec::new());
    let (mut names, mut interfaces) = (Vec::new(), Vec::new());
    let mut primary_gateway = None;
    for (index, endpoint) in network.endpoints.iter().enumerate() {
        let definition = store.get(&endpoint.network)?;
        let host_side = store.lock_host_side().and_then(|_host_side| {
            bridge::ensure(&definition, &store, &mut netlink)?;
            let name = tap_name(id, index);
            let tap = tap::create(&name, &definition.bridge, &mut netlink)?;
            let filter = filter::TapFilter::install(&store, &name, endpoint.mac, endpoint.address)?;
            Ok((tap, filter))
        });
        let (tap, filter) = host_side.with_context(|| match nix::unistd::geteuid().is_root() {
            true => format!(
                "cannot connect the container to network {}",
                endpoint.network
            ),
            false => "container networking needs root (CAP_NET_ADMIN)".to_owned(),
        })?;
        taps.push((tap, endpoint.mac));
        filters.push(filter);
        let directory = directory(root.clone(), records.clone(), &endpoint.network);
        // An internal network's containers learn nothing from outside it,
        // not even names (a DNS query would be a way out), as Docker's.
        let forwarded_to = match definition.internal {
            true => Vec::new(),
            false => upstream.clone(),
        };
        let server = dns::NameServer::start(
            definition.gateway,
            definition.subnet,
            Box::new(directory),
            forwarded_to,
        );
        // Without its name server, the container still runs: names of
        // other containers just do not resolve.
        names.extend(server.inspect_err(|err| tracing::warn!("{err:#}")).ok());
        let gateway = match index {
            0 => definition.gateway,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        primary_gateway.get_or_insert(definition.gateway);
        interfaces.push(InterfaceSpec {
            mac: endpoint.mac.to_string(),
            address: endpoint.address,
            prefix_len: definition.subnet.prefix_len,
            gateway,
        });
    }
    let gateway = primary_gateway.expect("a container with an endpoint has a gateway");
    let ports = match network.ports.is_empty() {
        true => None,
        false => Some(PortProxy::start(&network.ports, primary.address)?),
    };
    // The primary network's gateway answers names when its name server
    // runs (for every network the container is on); else the container asks
    // the upstream servers itself.
    let name_servers = match names.is_empty() {
        false => vec![IpAddr::V4(gateway)],
        true => network.dns.clone(),
    };
    let etc_files = etc_files::render(
        hostname,
        Some(primary.address),
        &resolve_hosts(&network.extra_hosts, Some(gateway)),
        network.resolver(&name_servers),
    );
    Ok(Attached {
        taps,
        services: Services {
            _ports: ports,
            _names: names,
            _filters: filters,
        },
        spec: NetworkSpec {
            interfaces,
            etc_files,
        },
    })
}

/// The name server's view from network `network` in the state root
/// `root`: the address of a running container with a name, on this
/// network or on another network of the container that asks (from its
/// address here), if any.
fn directory(
    root: StateRoot,
    records: Arc<dyn ContainerRecords>,
    network: &str,
) -> impl Fn(&str, Ipv4Addr) -> Option<Ipv4Addr> + Send + Sync {
    let network = network.to_owned();
    move |name, asker| {
        let store = NetworkStore::open(&root);
        let here = store.leases(&network).ok()?;
        let asking = here.get(&asker).map(|holder| holder.container.clone());
        let mut searched = vec![(network.clone(), here)];
        if let Some(asking) = asking {
            for other in store.list().ok()? {
                if other.name == network {
                    continue;
                }
                let leases = store.leases(&other.name).ok()?;
                if leases.values().any(|holder| holder.container == asking) {
                    searched.push((other.name, leases));
                }
            }
        }
        searched.into_iter().find_map(|(_, leases)| {
            leases
                .into_iter()
                .find(|(_, holder)| {
                    holder.names.iter().any(|n| n == name) && runs(records.as_ref(), holder)
                })
                .map(|(address, _)| address)
        })
    }
}

/// Whether the holder of a lease runs: its recorded container, or else the
/// process creating the container that holds it.
fn runs(records: &dyn ContainerRecords, holder: &LeaseHolder) -> bool {
    records
        .running(&holder.container)
        .unwrap_or_else(|| process_runs(holder.pid))
}

/// [`tap::NAME_PREFIX`] and the start of the container ID for its VM's first network
/// interface: unique among running VMs, within the kernel's name limit, and
/// recognisably hull's. Its others end in a letter past the hex digits
/// (`g` for the second), so no two names can be the same.
fn tap_name(id: &str, index: usize) -> String {
    let prefix = tap::NAME_PREFIX;
    match index {
        0 => format!("{prefix}{}", &id[..tap::MAX_NAME_LEN - prefix.len()]),
        _ => {
            let letter = char::from(b'f' + u8::try_from(index).unwrap_or(20).min(20));
            format!(
                "{prefix}{}{letter}",
                &id[..tap::MAX_NAME_LEN - prefix.len() - 1]
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostnames_are_names_the_kernel_and_etc_hosts_take() {
        assert_eq!(parse_hostname("web-1.local").unwrap(), "web-1.local");
        assert!(parse_hostname(&"a".repeat(64)).is_ok());
        assert!(parse_hostname(&"a".repeat(65))
            .unwrap_err()
            .contains("at most 64"));
        for bad in ["", "a b", "x\n1.2.3.4 evil", "a/b"] {
            assert!(parse_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn search_domains_and_resolver_options_are_checked() {
        for good in [".", "example.com", "corp.example.", "a-1.b2"] {
            assert_eq!(parse_dns_search(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "-a.com",
            "a..com",
            "a b",
            "ex_ample.com",
            &"a".repeat(64),
        ] {
            assert!(parse_dns_search(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_dns_option("ndots:2").as_deref(), Ok("ndots:2"));
        assert!(parse_dns_option("ndots 2").is_err());
        // A library caller's options are checked too.
        let injected = NetworkOptions {
            dns_options: vec!["edns0\nnameserver 6.6.6.6".into()],
            ..NetworkOptions::default()
        };
        assert!(injected.check_resolver().is_err());
        assert!(parse_dns_option("").is_err());
    }

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

        fn published_ports(&self) -> Result<Vec<PortMapping>> {
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
        let id = "0123456789abcdef".repeat(4);
        let name = tap_name(&id, 0);
        assert_eq!(name, "htap0123456789a");
        assert_eq!(name.len(), tap::MAX_NAME_LEN);
        assert_eq!(tap_name(&id, 1), "htap0123456789g");
        assert_eq!(tap_name(&id, 7).len(), tap::MAX_NAME_LEN);
    }

    #[test]
    fn records_of_an_older_hull_keep_their_one_endpoint() {
        let old = r#"{"endpoint":{"network":"bridge","address":"10.89.0.2","mac":"02:68:0a:59:00:02"},
                      "ports":[],"dns":[],"extra_hosts":[]}"#;
        let network: ContainerNetwork = serde_json::from_str(old).unwrap();
        assert_eq!(network.endpoints.len(), 1);
        assert_eq!(network.primary().unwrap().network, "bridge");
        let again: ContainerNetwork =
            serde_json::from_str(&serde_json::to_string(&network).unwrap()).unwrap();
        assert_eq!(again, network);
    }

    #[test]
    fn a_container_joins_several_networks_or_none_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().to_owned());
        NetworkStore::open(&root)
            .create("back", &NewNetwork::default())
            .unwrap();
        let options = NetworkOptions {
            networks: vec!["bridge".into(), "back".into()],
            ip: Some(Ipv4Addr::new(10, 89, 0, 9)),
            ..NetworkOptions::default()
        };
        let network = create(&root, &NoRecords, "c", "c", &options, &[]).unwrap();
        let addresses: Vec<_> = network.endpoints.iter().map(|e| e.address).collect();
        assert_eq!(
            addresses,
            [Ipv4Addr::new(10, 89, 0, 9), Ipv4Addr::new(10, 90, 0, 2)]
        );
        assert_eq!(network.on("back").unwrap().network, "back");
        // A network that is not there: the other's lease goes back.
        let missing = NetworkOptions {
            networks: vec!["bridge".into(), "nowhere".into()],
            ..NetworkOptions::default()
        };
        assert!(create(&root, &NoRecords, "d", "d", &missing, &[]).is_err());
        let leases = NetworkStore::open(&root).leases("bridge").unwrap();
        assert!(leases.values().all(|holder| holder.container != "d"));
        for bad in [vec!["none", "bridge"], vec!["back", "back"]] {
            let options = NetworkOptions {
                networks: bad.iter().map(|n| n.to_string()).collect(),
                ..NetworkOptions::default()
            };
            assert!(
                create(&root, &NoRecords, "e", "e", &options, &[]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn network_none_has_no_endpoint_and_refuses_ports() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().to_owned());
        let flags = NetworkOptions {
            networks: vec![NO_NETWORK.into()],
            ..NetworkOptions::default()
        };
        let network = create(&root, &NoRecords, "c", "c", &flags, &["80/tcp".into()]).unwrap();
        assert_eq!(network.primary(), None);
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
            networks: vec![DEFAULT_NETWORK.into()],
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
        let endpoint = first.primary().cloned().unwrap();
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
            second.primary().unwrap().address,
            Ipv4Addr::new(10, 89, 0, 3)
        );
        release(&root, "a", &first).unwrap();
        let third = create(&root, &NoRecords, "c", "c", &flags, &[]).unwrap();
        assert_eq!(third.primary().unwrap().address, endpoint.address);
    }
}
