//! A network's host side: its bridge with the gateway address, IPv4
//! forwarding, and hull's NAT rules.

use std::path::Path;

use anyhow::{Context, Result};
use hull_netlink::Netlink;

use super::nat;
use super::store::{Network, NetworkStore};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Makes sure `network`'s bridge is up with its gateway address, and that
/// the host forwards and masquerades its traffic. Cheap when all is set.
pub fn ensure(network: &Network, store: &NetworkStore, netlink: &mut Netlink) -> Result<()> {
    netlink.create_bridge(&network.bridge)?;
    netlink.add_address(&network.bridge, network.gateway, network.subnet.prefix_len)?;
    // Containers must not configure the host with router advertisements.
    let accept_ra = format!("/proc/sys/net/ipv6/conf/{}/accept_ra", network.bridge);
    if Path::new(&accept_ra).exists() {
        std::fs::write(&accept_ra, "0").with_context(|| format!("cannot write {accept_ra}"))?;
    }
    netlink.set_up(&network.bridge)?;
    if std::fs::read_to_string(IP_FORWARD)
        .map(|v| v.trim() != "1")
        .unwrap_or(true)
    {
        std::fs::write(IP_FORWARD, "1")
            .with_context(|| format!("cannot enable IPv4 forwarding in {IP_FORWARD}"))?;
    }
    apply_rules(store)
}

/// Makes hull's NAT rules those of the networks whose bridges exist.
pub fn apply_rules(store: &NetworkStore) -> Result<()> {
    let mut networks = store.list()?;
    networks.retain(|network| Netlink::link_index(&network.bridge).is_some());
    nat::apply(&networks)
}
