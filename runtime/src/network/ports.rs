//! Published ports: `-p [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]` and
//! `-P`, parsed and shown as Docker does.

use std::fmt;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A container port and where it is published on the host. A host port
/// of 0 is picked by the kernel when the container is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address it is published on (0.0.0.0: all).
    pub host_ip: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl PortMapping {
    /// Parses one `-p` value.
    pub fn parse(value: &str) -> Result<PortMapping> {
        let bad = || {
            format!(
                "-p {value}: expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], \
                 e.g. 8080:80 or 127.0.0.1:5353:53/udp"
            )
        };
        let (ports, protocol) = match value.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some(_) => bail!(bad()),
            None => (value, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [container] => (None, None, *container),
            [host, container] => (None, Some(*host), *container),
            [ip, host, container] => (Some(*ip), Some(*host).filter(|p| !p.is_empty()), *container),
            _ => bail!(bad()),
        };
        let port = |text: &str, zero_ok: bool| -> Result<u16> {
            match text.parse::<u16>() {
                Ok(0) if !zero_ok => bail!(bad()),
                Ok(port) => Ok(port),
                Err(_) if text.contains('-') => {
                    bail!("-p {value}: port ranges are not supported; publish each port")
                }
                Err(_) => bail!(bad()),
            }
        };
        let host_ip = match host_ip {
            None | Some("") => Ipv4Addr::UNSPECIFIED,
            Some(ip) => ip
                .parse()
                .with_context(|| format!("-p {value}: {ip} is not an IPv4 address of this host"))?,
        };
        Ok(PortMapping {
            host_ip,
            host_port: host_port.map(|p| port(p, true)).transpose()?.unwrap_or(0),
            container_port: port(container_port, false)?,
            protocol,
        })
    }

    /// The mapping of `-P` for an image's `EXPOSE` entry (`80/tcp`, `53/udp`,
    /// `8080`), on a port the kernel picks.
    pub fn exposed(entry: &str) -> Result<PortMapping> {
        let mapping = PortMapping::parse(entry)
            .with_context(|| format!("the image exposes {entry:?}, which is not a port"))?;
        if mapping.host_port != 0 || mapping.host_ip != Ipv4Addr::UNSPECIFIED {
            bail!("the image exposes {entry:?}, which is not a port");
        }
        Ok(mapping)
    }

    /// `80/tcp`, the container side as `hull port` names it.
    pub fn container_side(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }

    /// Where the host side is bound: its address, or every address inside
    /// the hull machine, whose QEMU forwards the host's own address and port
    /// to the machine's.
    pub fn bind_address(&self) -> (Ipv4Addr, u16) {
        match crate::host::inside_hull_machine() {
            true => (Ipv4Addr::UNSPECIFIED, self.host_port),
            false => (self.host_ip, self.host_port),
        }
    }

    /// Binds the host side to check it is free; a host port of 0 becomes
    /// the one the kernel picked. The port is held while the socket lives.
    fn reserve(self) -> Result<(PortMapping, OwnedFd)> {
        let address = self.bind_address();
        let (port, reservation) = match self.protocol {
            Protocol::Tcp => TcpListener::bind(address)
                .and_then(|l| Ok((l.local_addr()?.port(), OwnedFd::from(l)))),
            Protocol::Udp => UdpSocket::bind(address)
                .and_then(|s| Ok((s.local_addr()?.port(), OwnedFd::from(s)))),
        }
        .map_err(|e| self.bind_error(e))?;
        let mapping = PortMapping {
            host_port: port,
            ..self
        };
        Ok((mapping, reservation))
    }

    /// The one-line error for a host side that cannot be bound.
    pub fn bind_error(&self, error: std::io::Error) -> anyhow::Error {
        match error.kind() {
            std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "cannot publish {}: host port {}:{}/{} is already in use; choose another with -p",
                self.container_side(),
                self.host_ip,
                self.host_port,
                self.protocol
            ),
            std::io::ErrorKind::AddrNotAvailable => anyhow::anyhow!(
                "cannot publish {}: {} is not an address of this host",
                self.container_side(),
                self.host_ip
            ),
            _ => anyhow::anyhow!(
                "cannot publish {} on host port {}:{}/{}: {error}",
                self.container_side(),
                self.host_ip,
                self.host_port,
                self.protocol
            ),
        }
    }

    /// Fails with one line naming the first of `mappings` whose host port
    /// (a given one; 0 is picked when published) is taken on this host, or
    /// given twice.
    pub fn check_free(mappings: &[PortMapping]) -> crate::Result<()> {
        let given: Vec<PortMapping> = mappings
            .iter()
            .filter(|mapping| mapping.host_port != 0)
            .copied()
            .collect();
        Ok(reserve_all(&given).map(drop)?)
    }
}

/// Checks that every host side of `mappings` is free and distinct, all at
/// once (so two picked ports cannot collide), and fixes each host port of 0
/// to the one the kernel picked. The ports are free again on return.
pub fn reserve_all(mappings: &[PortMapping]) -> Result<Vec<PortMapping>> {
    let mut reserved = Vec::new();
    let mut held = Vec::new();
    for (index, mapping) in mappings.iter().enumerate() {
        let twice = mappings[..index].iter().any(|earlier| {
            earlier.host_port != 0
                && earlier.host_port == mapping.host_port
                && earlier.protocol == mapping.protocol
                && (earlier.host_ip == mapping.host_ip
                    || earlier.host_ip.is_unspecified()
                    || mapping.host_ip.is_unspecified())
        });
        if twice {
            bail!(
                "-p: host port {}/{} is published twice",
                mapping.host_port,
                mapping.protocol
            );
        }
        let (mapping, reservation) = mapping.reserve()?;
        reserved.push(mapping);
        held.push(reservation);
    }
    Ok(reserved)
}

impl fmt::Display for PortMapping {
    /// As `docker ps` shows it: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}",
            self.host_ip,
            self.host_port,
            self.container_side()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(ip: [u8; 4], host: u16, container: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: Ipv4Addr::from(ip),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn publish_values_parse_like_docker() {
        use Protocol::*;
        let cases = [
            ("80", mapping([0; 4], 0, 80, Tcp)),
            ("8080:80", mapping([0; 4], 8080, 80, Tcp)),
            ("8080:80/tcp", mapping([0; 4], 8080, 80, Tcp)),
            ("5353:53/udp", mapping([0; 4], 5353, 53, Udp)),
            ("127.0.0.1:8080:80", mapping([127, 0, 0, 1], 8080, 80, Tcp)),
            ("127.0.0.1::80", mapping([127, 0, 0, 1], 0, 80, Tcp)),
            (":8080:80", mapping([0; 4], 8080, 80, Tcp)),
        ];
        for (value, expected) in cases {
            assert_eq!(PortMapping::parse(value).unwrap(), expected, "{value}");
        }
    }

    #[test]
    fn bad_publish_values_name_the_value_and_the_form() {
        for value in [
            "",
            "x",
            "0",
            "80/sctp",
            "1:2:3:4",
            "70000",
            "localhost:80:80",
        ] {
            let err = PortMapping::parse(value).unwrap_err().to_string();
            assert!(err.starts_with(&format!("-p {value}:")), "{value}: {err}");
        }
        let err = PortMapping::parse("8000-8010:80").unwrap_err().to_string();
        assert!(err.contains("ranges are not supported"), "{err}");
    }

    #[test]
    fn exposed_entries_get_a_kernel_picked_port() {
        assert_eq!(
            PortMapping::exposed("53/udp").unwrap(),
            mapping([0; 4], 0, 53, Protocol::Udp)
        );
        assert!(PortMapping::exposed("8080:80").is_err());
    }

    #[test]
    fn mappings_show_as_docker_ps_does() {
        let m = mapping([127, 0, 0, 1], 8080, 80, Protocol::Tcp);
        assert_eq!(m.to_string(), "127.0.0.1:8080->80/tcp");
        assert_eq!(m.container_side(), "80/tcp");
    }

    #[test]
    fn reserving_fixes_distinct_free_ports_and_names_a_taken_one() {
        let picked = reserve_all(&[
            mapping([127, 0, 0, 1], 0, 80, Protocol::Tcp),
            mapping([127, 0, 0, 1], 0, 81, Protocol::Tcp),
            mapping([127, 0, 0, 1], 0, 53, Protocol::Udp),
        ])
        .unwrap();
        assert!(picked.iter().all(|m| m.host_port != 0));
        assert_ne!(picked[0].host_port, picked[1].host_port);
        let twice = [
            mapping([0; 4], 8080, 80, Protocol::Tcp),
            mapping([127, 0, 0, 1], 8080, 81, Protocol::Tcp),
        ];
        let err = reserve_all(&twice).unwrap_err().to_string();
        assert_eq!(err, "-p: host port 8080/tcp is published twice");
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = reserve_all(&[mapping([127, 0, 0, 1], port, 80, Protocol::Tcp)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "cannot publish 80/tcp: host port 127.0.0.1:{port}/tcp is already in use; \
                 choose another with -p"
            )
        );
    }
}
