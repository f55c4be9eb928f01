//! A container's tap: a non-persistent tap device on the host, attached to
//! its network's bridge. Its file descriptor goes to the VMM, and the
//! kernel deletes the tap when the last descriptor closes, so a VM that
//! ends in any way leaves no tap behind.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{Context, Result};
use hull_netlink::Netlink;

/// What the names of hull's taps start with.
pub const NAME_PREFIX: &str = "htap";
/// The kernel's limit on interface names, without the NUL.
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// Creates the tap `name` (a frame-per-read tap with virtio-net headers,
/// as the VMM's virtio-net device expects), attaches it to `bridge` and
/// brings it up. The tap exists as long as the returned descriptor.
pub fn create(name: &str, bridge: &str, netlink: &mut Netlink) -> Result<OwnedFd> {
    anyhow::ensure!(
        !name.is_empty() && name.len() <= MAX_NAME_LEN,
        "tap name {name:?} is not 1 to {MAX_NAME_LEN} bytes"
    );
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("cannot open /dev/net/tun: container networking needs the tun module")?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
    // SAFETY: TUNSETIFF reads (and updates) one ifreq, which outlives the
    // call; the fd is an open /dev/net/tun.
    let result = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut request) };
    if result < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot create tap {name}"));
    }
    netlink.attach_to_bridge(name, bridge)?;
    Ok(OwnedFd::from(tun))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tap_joins_its_bridge_and_goes_away_with_its_descriptor() {
        let mut netlink = Netlink::open().unwrap();
        let bridge = "hulltest-br2";
        netlink.delete_link(bridge).unwrap();
        netlink.create_bridge(bridge).unwrap();
        let tap = create("hulltest-tap0", bridge, &mut netlink).unwrap();
        let master = std::fs::read_link("/sys/class/net/hulltest-tap0/master").unwrap();
        assert_eq!(master.file_name().unwrap(), bridge);
        drop(tap);
        assert_eq!(Netlink::link_index("hulltest-tap0"), None);
        netlink.delete_link(bridge).unwrap();
        let err = create("a-name-far-too-long", bridge, &mut netlink).unwrap_err();
        assert!(err.to_string().contains("is not 1 to 15 bytes"), "{err}");
    }
}
