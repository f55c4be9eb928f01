//! A network's name server, on its gateway's port 53/udp: it answers the
//! names of the containers running on the network (name, aliases, short
//! ID) and forwards every other question to the upstream servers, from the
//! host's own network namespace, so a host resolver on loopback works too.
//!
//! Every process holding a VM on the network runs one, all bound to the same
//! address with `SO_REUSEPORT`; they answer alike, from the network's
//! leases, and the name server lives exactly as long as one of them.
//! Questions from outside the network's subnet are ignored: a container on
//! another network must not learn this one's names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};

use super::store::Subnet;

/// The DNS port.
pub const PORT: u16 = 53;
/// How long answers about containers may be cached: they come and go.
const TTL_SECS: u32 = 10;
/// How long an upstream server has to answer a forwarded question.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Forwarded questions in flight at once; more are dropped (the client
/// asks again), so a container cannot make this process spawn threads
/// without bound.
const MAX_FORWARDS: usize = 32;
/// How often the serving thread looks whether it should end.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The largest DNS message over UDP with EDNS.
const MAX_MESSAGE: usize = 4096;

/// Which address a container name has, if a running container has it,
/// for the client at the given address on the network.
pub type Directory = dyn Fn(&str, Ipv4Addr) -> Option<Ipv4Addr> + Send + Sync;

/// A running name server; it stops when dropped.
pub struct NameServer {
    stopped: Arc<AtomicBool>,
}

impl NameServer {
    /// Serves `subnet`'s clients on `gateway`:53 from `directory`,
    /// forwarding to `upstream`.
    pub fn start(
        gateway: Ipv4Addr,
        subnet: Subnet,
        directory: Box<Directory>,
        upstream: Vec<SocketAddr>,
    ) -> Result<NameServer> {
        let socket = bind_shared(SocketAddrV4::new(gateway, PORT))
            .with_context(|| format!("cannot serve DNS on {gateway}:{PORT}"))?;
        socket.set_read_timeout(Some(POLL_INTERVAL))?;
        let stopped = Arc::new(AtomicBool::new(false));
        let server = Server {
            socket,
            subnet,
            directory,
            upstream: Arc::new(upstream),
            forwards: Arc::default(),
        };
        let stop = stopped.clone();
        thread::Builder::new()
            .name("dns".into())
            .spawn(move || server.serve(&stop))
            .context("cannot start the DNS thread")?;
        Ok(NameServer { stopped })
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// A UDP socket on `address` that other processes of this user may bind
/// too (`SO_REUSEPORT`).
fn bind_shared(address: SocketAddrV4) -> nix::Result<UdpSocket> {
    let fd: OwnedFd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(address),
    )?;
    Ok(UdpSocket::from(fd))
}

struct Server {
    socket: UdpSocket,
    subnet: Subnet,
    directory: Box<Directory>,
    upstream: Arc<Vec<SocketAddr>>,
    forwards: Arc<AtomicUsize>,
}

impl Server {
    fn serve(&self, stopped: &AtomicBool) {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        while !stopped.load(Ordering::SeqCst) {
            let Ok((len, client)) = self.socket.recv_from(&mut buffer) else {
                continue;
            };
            if let IpAddr::V4(ip) = client.ip() {
                if self.subnet.has_host(ip) {
                    self.answer(&buffer[..len], client, ip);
                }
            }
        }
    }

    /// Answers one question of the client at `asker`: ours, or forwarded.
    fn answer(&self, packet: &[u8], client: SocketAddr, asker: Ipv4Addr) {
        let directory = |name: &str| (self.directory)(name, asker);
        match reply(packet, &directory) {
            Reply::Drop => {}
            Reply::Local(response) => {
                let _ = self.socket.send_to(&response, client);
            }
            Reply::Forward { failure } => self.forward(packet.to_vec(), failure, client),
        }
    }

    /// Relays `packet` to the upstream servers in turn and their answer back
    /// to `client`, on a thread of its own; `failure` if none answers.
    fn forward(&self, packet: Vec<u8>, failure: Vec<u8>, client: SocketAddr) {
        if self.forwards.fetch_add(1, Ordering::SeqCst) >= MAX_FORWARDS {
            self.forwards.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let Ok(socket) = self.socket.try_clone() else {
            self.forwards.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        let (upstream, forwards) = (self.upstream.clone(), self.forwards.clone());
        let spawned = thread::Builder::new()
            .name("dns-forward".into())
            .spawn(move || {
                let reply = upstream
                    .iter()
                    .find_map(|server| ask_upstream(*server, &packet));
                let _ = socket.send_to(reply.as_deref().unwrap_or(&failure), client);
                forwards.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.forwards.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// What the name server does with one packet from a client.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Nothing: the packet is malformed or not a question.
    Drop,
    /// Send this answer, from the directory.
    Local(Vec<u8>),
    /// Forward the packet upstream, and send `failure` (SERVFAIL) if no
    /// upstream server answers.
    Forward { failure: Vec<u8> },
}

/// What to do with `packet`, a client's datagram, whatever its bytes:
/// the pure part of the name server, which its fuzz target drives.
pub(crate) fn reply(packet: &[u8], directory: &dyn Fn(&str) -> Option<Ipv4Addr>) -> Reply {
    let Ok(question) = Message::from_vec(packet) else {
        return Reply::Drop;
    };
    if question.metadata.message_type != MessageType::Query {
        return Reply::Drop;
    }
    if let Some(response) = local_answer(&question, directory) {
        return response.to_vec().map_or(Reply::Drop, Reply::Local);
    }
    let failure = Message::error_msg(
        question.metadata.id,
        question.metadata.op_code,
        ResponseCode::ServFail,
    );
    failure
        .to_vec()
        .map_or(Reply::Drop, |failure| Reply::Forward { failure })
}

/// The answer to `question` from `directory`, if it asks about a name
/// there: its address for A (or ANY), no records for other types.
fn local_answer(
    question: &Message,
    directory: &dyn Fn(&str) -> Option<Ipv4Addr>,
) -> Option<Message> {
    let [query] = question.queries.as_slice() else {
        return None;
    };
    if question.metadata.op_code != OpCode::Query {
        return None;
    }
    let name = query.name().to_lowercase().to_ascii();
    let address = directory(name.trim_end_matches('.'))?;
    let mut response = Message::response(question.metadata.id, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = question.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.queries = question.queries.clone();
    if matches!(query.query_type(), RecordType::A | RecordType::ANY) {
        let record = Record::from_rdata(query.name().clone(), TTL_SECS, RData::A(address.into()));
        response.answers.push(record);
    }
    Some(response)
}

/// `server`'s answer to `packet`, if it gives one in time.
fn ask_upstream(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).ok()?;
    socket.connect(server).ok()?;
    socket.set_read_timeout(Some(UPSTREAM_TIMEOUT)).ok()?;
    socket.send(packet).ok()?;
    let mut buffer = vec![0u8; MAX_MESSAGE];
    // A reply to another question (a late one of an earlier try) is not ours.
    let id = &packet[..2];
    loop {
        let len = socket.recv(&mut buffer).ok()?;
        if len >= 2 && buffer[..2] == *id {
            buffer.truncate(len);
            return Some(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn question(id: u16, name: &str, kind: RecordType) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        message.to_vec().unwrap()
    }

    fn ask(server: SocketAddr, packet: &[u8]) -> Option<Message> {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.send_to(packet, server).unwrap();
        let mut buffer = vec![0u8; MAX_MESSAGE];
        let len = client.recv(&mut buffer).ok()?;
        Some(Message::from_vec(&buffer[..len]).unwrap())
    }

    fn addresses(answer: &Message) -> Vec<Ipv4Addr> {
        answer
            .answers
            .iter()
            .filter_map(|record| match record.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    }

    /// A name server on a free loopback port, serving `subnet`'s clients.
    fn start_on_loopback(subnet: &str, upstream: Vec<SocketAddr>) -> (NameServer, SocketAddr) {
        let directory = |name: &str, _asker: Ipv4Addr| match name {
            "web" | "www" => Some(Ipv4Addr::new(10, 89, 0, 2)),
            _ => None,
        };
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = socket.local_addr().unwrap();
        socket.set_read_timeout(Some(POLL_INTERVAL)).unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let server = Server {
            socket,
            subnet: subnet.parse().unwrap(),
            directory: Box::new(directory),
            upstream: Arc::new(upstream),
            forwards: Arc::default(),
        };
        let stop = stopped.clone();
        thread::spawn(move || server.serve(&stop));
        (NameServer { stopped }, address)
    }

    #[test]
    fn container_names_are_answered_in_any_case_and_other_types_get_no_records() {
        let (_server, address) = start_on_loopback("127.0.0.0/8", Vec::new());
        let answer = ask(address, &question(7, "WEB.", RecordType::A)).unwrap();
        assert_eq!(answer.metadata.id, 7);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&answer), [Ipv4Addr::new(10, 89, 0, 2)]);
        let answer = ask(address, &question(8, "www", RecordType::AAAA)).unwrap();
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.answers.is_empty());
    }

    #[test]
    fn other_names_go_upstream_and_fail_when_no_upstream_answers() {
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        let upstream_address = upstream.local_addr().unwrap();
        thread::spawn(move || {
            let mut buffer = vec![0u8; MAX_MESSAGE];
            let (len, from) = upstream.recv_from(&mut buffer).unwrap();
            let question = Message::from_vec(&buffer[..len]).unwrap();
            let mut reply = Message::response(question.metadata.id, OpCode::Query);
            reply.queries = question.queries.clone();
            let name = question.queries[0].name().clone();
            reply.answers.push(Record::from_rdata(
                name,
                60,
                RData::A(Ipv4Addr::new(192, 0, 2, 1).into()),
            ));
            upstream.send_to(&reply.to_vec().unwrap(), from).unwrap();
        });
        let (_server, address) = start_on_loopback("127.0.0.0/8", vec![upstream_address]);
        let answer = ask(address, &question(9, "example.org.", RecordType::A)).unwrap();
        assert_eq!(answer.metadata.id, 9);
        assert_eq!(addresses(&answer), [Ipv4Addr::new(192, 0, 2, 1)]);

        let (_server, address) = start_on_loopback("127.0.0.0/8", Vec::new());
        let answer = ask(address, &question(10, "example.org.", RecordType::A)).unwrap();
        assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    }

    #[test]
    fn questions_from_outside_the_subnet_and_garbage_get_no_answer() {
        let (_server, address) = start_on_loopback("10.89.0.0/16", Vec::new());
        assert!(ask(address, &question(11, "web.", RecordType::A)).is_none());
        let (_server, address) = start_on_loopback("127.0.0.0/8", Vec::new());
        assert!(ask(address, b"\x00\x01garbage").is_none());
        assert!(ask(address, &question(12, "web.", RecordType::A)).is_some());
    }

    #[test]
    fn name_servers_share_their_address() {
        let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let first = bind_shared(address).unwrap();
        let SocketAddr::V4(bound) = first.local_addr().unwrap() else {
            unreachable!()
        };
        assert!(bind_shared(bound).is_ok());
    }
}
