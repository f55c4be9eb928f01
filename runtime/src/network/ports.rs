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

/// A container port published on a host port.
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

    /// Binds the host side; a host port of 0 becomes the one the kernel
    /// picked. The port is held while the socket lives.
    fn bind(self) -> std::io::Result<(PortMapping, OwnedFd)> {
        let address = self.bind_address();
        let (port, reservation) = match self.protocol {
            Protocol::Tcp => TcpListener::bind(address)
                .and_then(|l| Ok((l.local_addr()?.port(), OwnedFd::from(l)))),
            Protocol::Udp => UdpSocket::bind(address)
                .and_then(|s| Ok((s.local_addr()?.port(), OwnedFd::from(s)))),
        }?;
        let mapping = PortMapping {
            host_port: port,
            ..self
        };
        Ok((mapping, reservation))
    }

    /// Whether `other` is published on this one's host port.
    fn clashes_with(&self, other: &PortMapping) -> bool {
        self.host_port == other.host_port
            && self.protocol == other.protocol
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
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
}

/// The most ports one container publishes: each is a listener of its
/// monitor (and a forward of the hull machine's QEMU).
pub const MAX_PUBLISHED_PORTS: usize = 1024;

/// What a `-p` value asks for one container port: a given host port, any
/// free one of a range of them, or one the kernel picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    /// The host address to publish on (0.0.0.0: all).
    pub host_ip: Ipv4Addr,
    /// The first host port it may take; 0: one the kernel picks.
    pub host_port: u16,
    /// The last host port it may take: `host_port` but for a range.
    pub last_host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl PortRequest {
    /// Parses one `-p` value,
    /// `[HOST_IP:][HOST_PORT[-LAST]:]CONTAINER_PORT[-LAST][/tcp|udp]`, as
    /// Docker reads it: a range of container ports is published port by
    /// port on a host range as long (or on ports the kernel picks), one
    /// container port on any free port of a host range.
    pub fn parse(value: &str) -> Result<Vec<PortRequest>> {
        let bad = || {
            format!(
                "-p {value}: expected [HOST_IP:][HOST_PORT[-LAST]:]CONTAINER_PORT[-LAST][/tcp|udp], \
                 e.g. 8080:80, 127.0.0.1:5353:53/udp or 8000-8002:8000-8002"
            )
        };
        if value.starts_with('[') {
            bail!("-p {value}: hull publishes on IPv4 host addresses only");
        }
        let (ports, protocol) = match value.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some(_) => bail!(bad()),
            None => (value, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_ports, container_ports) = match parts.as_slice() {
            [container] => (None, None, *container),
            [host, container] => (None, Some(*host), *container),
            [ip, host, container] => (Some(*ip), Some(*host).filter(|p| !p.is_empty()), *container),
            _ => bail!(bad()),
        };
        // `first[-last]`; 0 (not in a range) only where `zero_ok`.
        let range = |text: &str, zero_ok: bool| -> Result<(u16, u16)> {
            let port = |text: &str| text.parse::<u16>().map_err(|_| anyhow::anyhow!(bad()));
            let (first, last) = match text.split_once('-') {
                Some((first, last)) => (port(first)?, port(last)?),
                None => (port(text)?, port(text)?),
            };
            // 0, the kernel's pick, stands alone, and only for a host port.
            let bad_zero = first == 0 && (!zero_ok || text.contains('-'));
            if bad_zero || last < first {
                bail!(bad());
            }
            Ok((first, last))
        };
        let host_ip = match host_ip {
            None | Some("") => Ipv4Addr::UNSPECIFIED,
            Some(ip) => ip
                .parse()
                .with_context(|| format!("-p {value}: {ip} is not an IPv4 address of this host"))?,
        };
        let containers = range(container_ports, false)?;
        let hosts = host_ports
            .map(|p| range(p, true))
            .transpose()?
            .unwrap_or((0, 0));
        let request = |container_port: u16, host_port: u16, last_host_port: u16| PortRequest {
            host_ip,
            host_port,
            last_host_port,
            container_port,
            protocol,
        };
        let container_count = containers.1 - containers.0;
        if container_count == 0 {
            return Ok(vec![request(containers.0, hosts.0, hosts.1)]);
        }
        if usize::from(container_count) >= MAX_PUBLISHED_PORTS {
            bail!("-p {value}: hull publishes at most {MAX_PUBLISHED_PORTS} ports of a container");
        }
        let picked = hosts.0 == 0;
        if !picked && hosts.1 - hosts.0 != container_count {
            bail!("-p {value}: the host and container port ranges differ in size");
        }
        Ok((0..=container_count)
            .map(|offset| {
                let host_port = if picked { 0 } else { hosts.0 + offset };
                request(containers.0 + offset, host_port, host_port)
            })
            .collect())
    }

    /// The request of `-P` for an image's `EXPOSE` entry (`80/tcp`,
    /// `53/udp`, `8080`): a port the kernel picks.
    pub fn exposed(entry: &str) -> Result<PortRequest> {
        let not_a_port = || anyhow::anyhow!("the image exposes {entry:?}, which is not a port");
        match PortRequest::parse(entry).map_err(|_| not_a_port())?[..] {
            [request] if request.host_port == 0 && request.host_ip.is_unspecified() => Ok(request),
            _ => Err(not_a_port()),
        }
    }

    /// The mapping of this request on host port `host_port`.
    fn on(&self, host_port: u16) -> PortMapping {
        PortMapping {
            host_ip: self.host_ip,
            host_port,
            container_port: self.container_port,
            protocol: self.protocol,
        }
    }

    /// Binds a host port this request may take: the given one, the first
    /// free one of its range that no container in `recorded` has, or one
    /// the kernel picks. The port is held while the socket lives.
    fn reserve(&self, recorded: &[PortMapping]) -> Result<(PortMapping, OwnedFd)> {
        if self.host_port == self.last_host_port {
            let mapping = self.on(self.host_port);
            return mapping.bind().map_err(|err| mapping.bind_error(err));
        }
        for port in self.host_port..=self.last_host_port {
            let mapping = self.on(port);
            if recorded.iter().any(|other| other.clashes_with(&mapping)) {
                continue;
            }
            match mapping.bind() {
                Ok(reserved) => return Ok(reserved),
                Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(err) => return Err(mapping.bind_error(err)),
            }
        }
        bail!(
            "cannot publish {}: every host port of {}:{}-{}/{} is in use; choose others with -p",
            self.on(0).container_side(),
            self.host_ip,
            self.host_port,
            self.last_host_port,
            self.protocol
        )
    }

    /// Whether this request names its host port (or range of them), not
    /// leaving it to the kernel.
    pub fn names_host_port(&self) -> bool {
        self.host_port != 0
    }

    /// Whether host port `port` is the one, or one of those, it may take.
    pub fn may_take(&self, port: u16) -> bool {
        self.names_host_port() && (self.host_port..=self.last_host_port).contains(&port)
    }

    /// Fails with one line naming the first of `requests` whose host port
    /// (a given one, or every port of a given range; 0 is picked when
    /// published) is taken on this host, or given twice.
    pub fn check_free(requests: &[PortRequest]) -> crate::Result<()> {
        let given: Vec<PortRequest> = requests
            .iter()
            .filter(|request| request.names_host_port())
            .copied()
            .collect();
        Ok(reserve_all(&given).map(drop)?)
    }
}

/// Checks that every host side of `requests` is free and distinct, all at
/// once (so two picked ports cannot collide), and fixes each host port to
/// the given one, the first free one of a range, or the one the kernel
/// picked; given ports are taken first, so that a range or the kernel
/// picks around them. The ports are free again on return.
pub fn reserve_all(requests: &[PortRequest]) -> Result<Vec<PortMapping>> {
    reserve_all_around(requests, &[])
}

/// [`reserve_all`], a range passing over the ports `recorded` for other
/// containers (made and not running, they do not hold them yet).
pub fn reserve_all_around(
    requests: &[PortRequest],
    recorded: &[PortMapping],
) -> Result<Vec<PortMapping>> {
    if requests.len() > MAX_PUBLISHED_PORTS {
        bail!(
            "-p: {} ports are more than the {MAX_PUBLISHED_PORTS} hull publishes for one container",
            requests.len()
        );
    }
    let single = |request: &PortRequest| {
        request.names_host_port() && request.host_port == request.last_host_port
    };
    // Given ports, then ranges, then the kernel's picks.
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&index| {
        let request = &requests[index];
        (!single(request), !request.names_host_port())
    });
    let mut reserved = vec![None; requests.len()];
    let mut held = Vec::new();
    for index in order {
        let request = &requests[index];
        let given = request.on(request.host_port);
        let twice = single(request)
            && requests[..index].iter().any(|earlier| {
                single(earlier) && given.clashes_with(&earlier.on(earlier.host_port))
            });
        if twice {
            bail!(
                "-p: host port {}/{} is published twice",
                request.host_port,
                request.protocol
            );
        }
        let (mapping, reservation) = request.reserve(recorded)?;
        reserved[index] = Some(mapping);
        held.push(reservation);
    }
    Ok(reserved.into_iter().flatten().collect())
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

    fn request(ip: [u8; 4], hosts: (u16, u16), container: u16, protocol: Protocol) -> PortRequest {
        PortRequest {
            host_ip: Ipv4Addr::from(ip),
            host_port: hosts.0,
            last_host_port: hosts.1,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn publish_values_parse_like_docker() {
        use Protocol::*;
        let cases = [
            ("80", vec![request([0; 4], (0, 0), 80, Tcp)]),
            ("8080:80", vec![request([0; 4], (8080, 8080), 80, Tcp)]),
            ("8080:80/tcp", vec![request([0; 4], (8080, 8080), 80, Tcp)]),
            ("5353:53/udp", vec![request([0; 4], (5353, 5353), 53, Udp)]),
            (
                "127.0.0.1:8080:80",
                vec![request([127, 0, 0, 1], (8080, 8080), 80, Tcp)],
            ),
            (
                "127.0.0.1::80",
                vec![request([127, 0, 0, 1], (0, 0), 80, Tcp)],
            ),
            (":8080:80", vec![request([0; 4], (8080, 8080), 80, Tcp)]),
            ("8000-8010:80", vec![request([0; 4], (8000, 8010), 80, Tcp)]),
            (
                "8000-8001:80-81/udp",
                vec![
                    request([0; 4], (8000, 8000), 80, Udp),
                    request([0; 4], (8001, 8001), 81, Udp),
                ],
            ),
            (
                "80-81",
                vec![
                    request([0; 4], (0, 0), 80, Tcp),
                    request([0; 4], (0, 0), 81, Tcp),
                ],
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(PortRequest::parse(value).unwrap(), expected, "{value}");
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
            "8000-8001:80-82",
            "[::1]:8080:80",
            "90-80",
            "0-5:80",
            "80-",
            "1-65535",
        ] {
            let err = PortRequest::parse(value).unwrap_err().to_string();
            assert!(err.starts_with(&format!("-p {value}:")), "{value}: {err}");
        }
        let err = PortRequest::parse("8000-8001:80-82")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("the host and container port ranges differ in size"),
            "{err}"
        );
    }

    #[test]
    fn exposed_entries_get_a_kernel_picked_port() {
        assert_eq!(
            PortRequest::exposed("53/udp").unwrap(),
            request([0; 4], (0, 0), 53, Protocol::Udp)
        );
        assert!(PortRequest::exposed("8080:80").is_err());
        assert!(PortRequest::exposed("80-81").is_err());
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
            request([127, 0, 0, 1], (0, 0), 80, Protocol::Tcp),
            request([127, 0, 0, 1], (0, 0), 81, Protocol::Tcp),
            request([127, 0, 0, 1], (0, 0), 53, Protocol::Udp),
        ])
        .unwrap();
        assert!(picked.iter().all(|m| m.host_port != 0));
        assert_ne!(picked[0].host_port, picked[1].host_port);
        let twice = [
            request([0; 4], (8080, 8080), 80, Protocol::Tcp),
            request([127, 0, 0, 1], (8080, 8080), 81, Protocol::Tcp),
        ];
        let err = reserve_all(&twice).unwrap_err().to_string();
        assert_eq!(err, "-p: host port 8080/tcp is published twice");
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = reserve_all(&[request([127, 0, 0, 1], (port, port), 80, Protocol::Tcp)])
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

    /// A port of 127.0.0.1 free now, its next one too.
    fn two_free_ports() -> u16 {
        loop {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
                return port;
            }
        }
    }

    #[test]
    fn a_range_of_host_ports_gives_its_first_free_one() {
        let port = two_free_ports();
        let range = request([127, 0, 0, 1], (port, port + 1), 80, Protocol::Tcp);
        // A given port is taken first, whatever the order: the range picks
        // around it.
        let given = request([127, 0, 0, 1], (port, port), 81, Protocol::Tcp);
        assert_eq!(
            reserve_all(&[range, given]).unwrap(),
            [
                mapping([127, 0, 0, 1], port + 1, 80, Protocol::Tcp),
                mapping([127, 0, 0, 1], port, 81, Protocol::Tcp)
            ]
        );
        let _taken = TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert_eq!(
            reserve_all(&[range]).unwrap(),
            [mapping([127, 0, 0, 1], port + 1, 80, Protocol::Tcp)]
        );
        let _also_taken = TcpListener::bind(("127.0.0.1", port + 1)).unwrap();
        let err = reserve_all(&[range]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot publish 80/tcp: every host port of 127.0.0.1:{port}-{}/tcp is in use; \
                 choose others with -p",
                port + 1
            )
        );
    }

    #[test]
    fn a_range_passes_over_ports_other_containers_have() {
        let port = two_free_ports();
        let range = request([127, 0, 0, 1], (port, port + 1), 80, Protocol::Tcp);
        let made = mapping([0; 4], port, 8080, Protocol::Tcp);
        assert_eq!(
            reserve_all_around(&[range], &[made]).unwrap(),
            [mapping([127, 0, 0, 1], port + 1, 80, Protocol::Tcp)]
        );
        let udp = mapping([0; 4], port, 53, Protocol::Udp);
        assert_eq!(
            reserve_all_around(&[range], &[udp]).unwrap(),
            [mapping([127, 0, 0, 1], port, 80, Protocol::Tcp)]
        );
    }

    #[test]
    fn more_ports_than_a_container_publishes_are_refused() {
        let many = vec![request([0; 4], (0, 0), 80, Protocol::Tcp); MAX_PUBLISHED_PORTS + 1];
        let err = reserve_all(&many).unwrap_err().to_string();
        assert!(err.contains("more than the 1024"), "{err}");
    }
}
