//! The few rtnetlink requests hull makes, as blocking calls: bridges and
//! taps on the host, the container's interface inside the guest.
//!
//! Messages come from `rtnetlink`'s builders; [`Netlink`] sends each on a
//! plain netlink socket and waits for the kernel's acknowledgement, so
//! neither side needs an async runtime.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{AddressMessageBuilder, LinkBridge, LinkUnspec, RouteMessageBuilder};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket: {0}")]
    Open(#[source] io::Error),
    #[error("no network interface named {0}")]
    NoSuchLink(String),
    #[error("cannot {what}: {source}")]
    Request {
        what: String,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, NetlinkError>;

/// A route netlink socket.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

/// Big enough for any acknowledgement, which echoes the request.
const RECEIVE_BUFFER: usize = 64 * 1024;

impl Netlink {
    pub fn open() -> Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Open)?;
        socket.bind_auto().map_err(NetlinkError::Open)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Open)?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// The index of the interface `name`, if there is one.
    pub fn link_index(name: &str) -> Option<u32> {
        nix::net::if_::if_nametoindex(name).ok()
    }

    fn existing_link(name: &str) -> Result<u32> {
        Self::link_index(name).ok_or_else(|| NetlinkError::NoSuchLink(name.to_owned()))
    }

    /// Creates the bridge `name`, down and without addresses. Returns
    /// whether it was created: `false` if an interface of that name exists.
    pub fn create_bridge(&mut self, name: &str) -> Result<bool> {
        let message = LinkBridge::new(name).build();
        match self.request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("create bridge {name}"),
        ) {
            Ok(()) => Ok(true),
            Err(NetlinkError::Request { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the interface `name`; one that is already gone is fine.
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let Some(index) = Self::link_index(name) else {
            return Ok(());
        };
        let message = LinkUnspec::new_with_index(index).build();
        match self.request(RouteNetlinkMessage::DelLink(message), 0, || {
            format!("delete interface {name}")
        }) {
            Err(NetlinkError::Request { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Brings the interface `name` up.
    pub fn set_up(&mut self, name: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(Self::existing_link(name)?)
            .up()
            .build();
        self.request(RouteNetlinkMessage::SetLink(message), 0, || {
            format!("bring {name} up")
        })
    }

    /// Makes `link` a port of `bridge` and brings it up.
    pub fn attach_to_bridge(&mut self, link: &str, bridge: &str) -> Result<()> {
        let bridge_index = Self::existing_link(bridge)?;
        let message = LinkUnspec::new_with_index(Self::existing_link(link)?)
            .controller(bridge_index)
            .up()
            .build();
        self.request(RouteNetlinkMessage::SetLink(message), 0, || {
            format!("attach {link} to bridge {bridge}")
        })
    }

    /// Adds `address/prefix_len` to `link`; an address it already has is
    /// fine.
    pub fn add_address(&mut self, link: &str, address: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let message = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(Self::existing_link(link)?)
            .address(address, prefix_len)
            .build();
        match self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("add address {address}/{prefix_len} to {link}"),
        ) {
            Err(NetlinkError::Request { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Routes everything not on a local network through `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let message = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.request(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("add a default route through {gateway}"),
        )
    }

    /// Sends `message` and waits for the kernel's answer to it.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: impl Fn() -> String,
    ) -> Result<()> {
        let failed = |source| NetlinkError::Request {
            what: what(),
            source,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut request = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        self.socket.send(&bytes, 0).map_err(failed)?;

        let mut buffer = vec![0; RECEIVE_BUFFER];
        loop {
            let received = self.socket.recv(&mut &mut buffer[..], 0).map_err(failed)?;
            let mut offset = 0;
            while offset < received {
                let reply =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[offset..received])
                        .map_err(|e| {
                        failed(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                    })?;
                let length = reply.header.length as usize;
                if reply.header.sequence_number == self.sequence {
                    if let NetlinkPayload::Error(error) = reply.payload {
                        return match error.code {
                            None => Ok(()),
                            Some(_) => Err(failed(error.to_io())),
                        };
                    }
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests run as root (as hull does); each uses its own interface names.
    #[test]
    fn bridges_are_created_once_addressed_brought_up_and_deleted() {
        let mut netlink = Netlink::open().unwrap();
        let name = "hulltest-br0";
        netlink.delete_link(name).unwrap();
        assert!(netlink.create_bridge(name).unwrap());
        assert!(!netlink.create_bridge(name).unwrap());
        netlink
            .add_address(name, Ipv4Addr::new(10, 254, 0, 1), 24)
            .unwrap();
        netlink
            .add_address(name, Ipv4Addr::new(10, 254, 0, 1), 24)
            .unwrap();
        netlink.set_up(name).unwrap();
        let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags")).unwrap();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
        assert_ne!(flags & libc::IFF_UP as u32, 0, "{name} is not up");
        netlink.delete_link(name).unwrap();
        assert_eq!(Netlink::link_index(name), None);
        netlink.delete_link(name).unwrap();
    }

    #[test]
    fn requests_about_missing_interfaces_name_them() {
        let mut netlink = Netlink::open().unwrap();
        let err = netlink.set_up("hulltest-none").unwrap_err();
        assert_eq!(err.to_string(), "no network interface named hulltest-none");
        let err = netlink.attach_to_bridge("lo", "hulltest-none").unwrap_err();
        assert!(matches!(err, NetlinkError::NoSuchLink(_)), "{err}");
    }

    #[test]
    fn kernel_refusals_carry_the_request_and_errno() {
        let mut netlink = Netlink::open().unwrap();
        // lo cannot be a bridge port.
        let name = "hulltest-br1";
        netlink.delete_link(name).unwrap();
        netlink.create_bridge(name).unwrap();
        let err = netlink.attach_to_bridge("lo", name).unwrap_err();
        netlink.delete_link(name).unwrap();
        let NetlinkError::Request { what, source } = err else {
            panic!("unexpected error {err}");
        };
        assert_eq!(what, format!("attach lo to bridge {name}"));
        assert!(source.raw_os_error().is_some(), "{source}");
    }
}
