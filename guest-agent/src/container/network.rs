//! The machine's network, set up once before the container's process
//! starts: loopback always, and a virtio-net interface for each network the
//! host put the container on, with its address (and, on the first, the
//! default route). The container
//! shares the machine's network namespace: the machine is the sandbox.

use std::net::Ipv4Addr;

use anyhow::Context;
use hull_netlink::Netlink;
use hull_protocol::{InterfaceSpec, NetworkSpec};

const LOOPBACK: &str = "lo";

/// Brings up loopback and, as `spec` says, the machine's network
/// interfaces.
pub fn configure(spec: &NetworkSpec) -> anyhow::Result<()> {
    let mut netlink = Netlink::open()?;
    netlink.set_up(LOOPBACK)?;
    for interface in &spec.interfaces {
        configure_interface(&mut netlink, interface)?;
    }
    Ok(())
}

fn configure_interface(netlink: &mut Netlink, spec: &InterfaceSpec) -> anyhow::Result<()> {
    let name = interface_with_mac(&spec.mac)?;
    // Router advertisements from another machine on the bridge must not
    // give this one addresses or routes.
    let accept_ra = format!("/proc/sys/net/ipv6/conf/{name}/accept_ra");
    std::fs::write(&accept_ra, "0").with_context(|| format!("writing {accept_ra}"))?;
    netlink.add_address(&name, spec.address, spec.prefix_len)?;
    netlink.set_up(&name)?;
    if spec.gateway != Ipv4Addr::UNSPECIFIED {
        netlink.add_default_route(spec.gateway)?;
    }
    Ok(())
}

/// The name of the interface whose MAC address is `mac`.
fn interface_with_mac(mac: &str) -> anyhow::Result<String> {
    let entries = std::fs::read_dir("/sys/class/net").context("listing /sys/class/net")?;
    for entry in entries {
        let entry = entry.context("listing /sys/class/net")?;
        let address = std::fs::read_to_string(entry.path().join("address")).unwrap_or_default();
        if address.trim() == mac {
            return entry
                .file_name()
                .into_string()
                .map_err(|name| anyhow::anyhow!("interface name {name:?} is not UTF-8"));
        }
    }
    anyhow::bail!("the machine has no network interface with MAC address {mac}")
}
