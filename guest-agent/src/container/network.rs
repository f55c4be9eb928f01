//! The machine's network, set up once before the container's process
//! starts: loopback always, and the virtio-net interface with its address
//! and default route when the host gave the container one. The container
//! shares the machine's network namespace: the machine is the sandbox.

use std::net::Ipv4Addr;

use anyhow::Context;
use hull_netlink::Netlink;
use hull_protocol::{InterfaceSpec, NetworkSpec};

const LOOPBACK: &str = "lo";

/// Brings up loopback and, as `spec` says, the machine's one network
/// interface.
pub fn configure(spec: &NetworkSpec) -> anyhow::Result<()> {
    let mut netlink = Netlink::open()?;
    netlink.set_up(LOOPBACK)?;
    if let Some(interface) = &spec.interface {
        configure_interface(&mut netlink, interface)?;
    }
    Ok(())
}

fn configure_interface(netlink: &mut Netlink, spec: &InterfaceSpec) -> anyhow::Result<()> {
    let name = network_interface()?;
    netlink.add_address(&name, spec.address, spec.prefix_len)?;
    netlink.set_up(&name)?;
    if spec.gateway != Ipv4Addr::UNSPECIFIED {
        netlink.add_default_route(spec.gateway)?;
    }
    Ok(())
}

/// The name of the machine's network interface: the only one besides
/// loopback (the host attaches at most one virtio-net device).
fn network_interface() -> anyhow::Result<String> {
    let entries = std::fs::read_dir("/sys/class/net").context("listing /sys/class/net")?;
    for entry in entries {
        let name = entry.context("listing /sys/class/net")?.file_name();
        if name != LOOPBACK {
            return name
                .into_string()
                .map_err(|name| anyhow::anyhow!("interface name {name:?} is not UTF-8"));
        }
    }
    anyhow::bail!("the machine has no network interface: is virtio-net missing from the kernel?")
}
