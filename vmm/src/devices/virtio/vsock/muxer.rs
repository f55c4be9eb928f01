//! The host side of the device ("hybrid vsock", as in Firecracker): maps
//! guest vsock connections onto host unix streams.
//!
//! - Guest-initiated: a REQUEST to host port P connects to `<uds_path>_P`.
//! - Host-initiated: a client connects to `<uds_path>`, writes
//!   `CONNECT <port>\n`, and once the guest accepts reads `OK <local_port>\n`.
//!
//! The muxer owns an epoll set over the listener, the handshaking clients and
//! every connection's stream. The device worker watches the epoll fd itself
//! and calls [`Muxer::process_events`] when it is readable.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use super::connection::{ConnKey, Connection};
use super::packet::{Op, PacketHeader, TxPacket, HOST_CID, TYPE_STREAM};

/// Most connections a guest may have at once, either way (Firecracker's
/// muxer has a similar bound). A guest REQUEST beyond it is refused with RST;
/// a host client beyond it is disconnected. With [`HOST_BUF_ALLOC`] per
/// connection, this also bounds the guest data buffered for slow host
/// sockets to 256 MiB.
///
/// [`HOST_BUF_ALLOC`]: super::connection::HOST_BUF_ALLOC
pub const MAX_CONNECTIONS: usize = 1024;
/// Most host clients allowed to sit in the `CONNECT` handshake at once.
const MAX_HANDSHAKING_CLIENTS: usize = 64;
/// Longest accepted `CONNECT <port>\n` line.
const MAX_CONNECT_LINE: usize = 32;
/// Most connection-less RSTs queued for the guest; beyond that, a flooding
/// guest's packets go unanswered.
const MAX_CONTROL_PACKETS: usize = 1024;
/// Host-initiated connections take local ports from here upwards, away from
/// the well-known ports guests connect to.
pub(crate) const FIRST_LOCAL_PORT: u32 = 1 << 30;

/// A connection plus the muxer's bookkeeping for it.
struct Entry {
    conn: Connection,
    /// Interest currently registered with epoll (empty: not registered).
    registered: EventSet,
    /// The key is in `rx_ready`.
    rx_scheduled: bool,
}

/// A host client that has connected to `<uds_path>` and not yet sent its
/// `CONNECT` line.
struct HandshakingClient {
    stream: UnixStream,
    line: Vec<u8>,
}

/// Relays vsock connections between the guest and host unix sockets.
pub struct Muxer {
    guest_cid: u64,
    uds_path: PathBuf,
    listener: UnixListener,
    epoll: Epoll,
    conns: HashMap<ConnKey, Entry>,
    /// Stream fd of every connection, to route epoll events.
    conn_fds: HashMap<RawFd, ConnKey>,
    clients: HashMap<RawFd, HandshakingClient>,
    /// Packets owed to the guest that belong to no connection (RSTs).
    control_rx: VecDeque<PacketHeader>,
    /// Connections with packets owed to the guest, served round-robin.
    rx_ready: VecDeque<ConnKey>,
    next_local_port: u32,
    /// Connections beyond this many are refused.
    max_connections: usize,
}

impl Muxer {
    /// Serves host-initiated connections on `listener` (bound to
    /// `uds_path`, non-blocking) for the guest with `guest_cid`, with at
    /// most `max_connections` connections open at once.
    pub fn new(
        guest_cid: u64,
        uds_path: PathBuf,
        listener: UnixListener,
        max_connections: usize,
    ) -> io::Result<Self> {
        let epoll = Epoll::new()?;
        let fd = listener.as_raw_fd();
        epoll.ctl(
            ControlOperation::Add,
            fd,
            EpollEvent::new(EventSet::IN, fd as u64),
        )?;
        Ok(Muxer {
            guest_cid,
            uds_path,
            listener,
            epoll,
            conns: HashMap::new(),
            conn_fds: HashMap::new(),
            clients: HashMap::new(),
            control_rx: VecDeque::new(),
            rx_ready: VecDeque::new(),
            next_local_port: FIRST_LOCAL_PORT,
            max_connections,
        })
    }

    /// Handles a packet the guest sent.
    pub fn handle_guest_packet(&mut self, pkt: &TxPacket) {
        let hdr = &pkt.hdr;
        if hdr.src_cid != self.guest_cid || hdr.dst_cid != HOST_CID {
            log::debug!(
                "vsock: dropping packet from cid {} to cid {}",
                hdr.src_cid,
                hdr.dst_cid
            );
            return;
        }
        let key = ConnKey {
            local_port: hdr.dst_port,
            peer_port: hdr.src_port,
        };
        let op = hdr.op();
        if hdr.type_ != TYPE_STREAM || op.is_none() {
            log::debug!("vsock: bad packet type {} op {}", hdr.type_, hdr.op);
            match self.conns.get_mut(&key) {
                Some(entry) => entry.conn.reset(),
                None if op != Some(Op::Rst) => self.queue_control_rst(hdr),
                None => {}
            }
            self.refresh(key);
            return;
        }
        match (self.conns.get_mut(&key), op) {
            (Some(entry), _) => entry.conn.on_guest_packet(hdr, &pkt.payload),
            (None, Some(Op::Request)) => self.connect_to_host_listener(key, hdr),
            (None, Some(Op::Rst)) => {}
            (None, _) => self.queue_control_rst(hdr),
        }
        self.refresh(key);
    }

    /// True if [`Muxer::next_rx_packet`] may produce a packet.
    pub fn has_rx_work(&self) -> bool {
        !self.control_rx.is_empty() || !self.rx_ready.is_empty()
    }

    /// The next packet for the guest: its header and how many bytes of
    /// `payload_buf` (filled here) it carries. Each scheduled connection
    /// gets one chance per call, so a connection that cannot make progress
    /// with this buffer (say, data but no payload room) cannot spin us.
    pub fn next_rx_packet(&mut self, payload_buf: &mut [u8]) -> Option<(PacketHeader, usize)> {
        if let Some(hdr) = self.control_rx.pop_front() {
            return Some((hdr, 0));
        }
        for _ in 0..self.rx_ready.len() {
            let Some(key) = self.rx_ready.pop_front() else {
                break;
            };
            let Some(entry) = self.conns.get_mut(&key) else {
                continue;
            };
            entry.rx_scheduled = false;
            let packet = entry.conn.next_rx_packet(payload_buf);
            self.refresh(key);
            if packet.is_some() {
                return packet;
            }
        }
        None
    }

    /// Handles everything ready in the muxer's epoll set.
    pub fn process_events(&mut self) {
        let mut events = [EpollEvent::default(); 64];
        let count = match self.epoll.wait(0, &mut events) {
            Ok(count) => count,
            Err(e) => {
                if e.kind() != ErrorKind::Interrupted {
                    log::error!("vsock: muxer epoll_wait: {e}");
                }
                return;
            }
        };
        for event in &events[..count] {
            let fd = event.data() as RawFd;
            let set = event.event_set();
            if fd == self.listener.as_raw_fd() {
                self.accept_host_clients();
            } else if self.clients.contains_key(&fd) {
                self.read_connect_line(fd);
            } else if let Some(&key) = self.conn_fds.get(&fd) {
                if let Some(entry) = self.conns.get_mut(&key) {
                    entry.conn.on_stream_event(set);
                }
                self.refresh(key);
            }
        }
    }

    /// The earliest connection deadline, for the worker's wait timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.values().filter_map(|e| e.conn.deadline()).min()
    }

    /// Resets the connections whose deadline has passed.
    pub fn handle_deadlines(&mut self, now: Instant) {
        let expired: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, e)| e.conn.deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(entry) = self.conns.get_mut(&key) {
                entry.conn.check_deadline(now);
            }
            self.refresh(key);
        }
    }

    /// Brings the muxer's view of a connection up to date after anything
    /// happened to it: drops it once closed, otherwise re-registers its
    /// stream interest and schedules it for RX.
    fn refresh(&mut self, key: ConnKey) {
        let Some(entry) = self.conns.get_mut(&key) else {
            return;
        };
        if entry.conn.is_closed() {
            self.remove(key);
            return;
        }
        let fd = entry.conn.stream().as_raw_fd();
        let desired = entry.conn.interest();
        if let Err(e) = update_interest(&self.epoll, fd, &mut entry.registered, desired) {
            log::warn!("vsock: cannot watch stream of {key:?}: {e}");
            entry.conn.reset();
        }
        if !entry.rx_scheduled && entry.conn.has_rx_work() {
            entry.rx_scheduled = true;
            self.rx_ready.push_back(key);
        }
    }

    fn insert(&mut self, key: ConnKey, conn: Connection) {
        self.conn_fds.insert(conn.stream().as_raw_fd(), key);
        self.conns.insert(
            key,
            Entry {
                conn,
                registered: EventSet::empty(),
                rx_scheduled: false,
            },
        );
        self.refresh(key);
    }

    /// Drops a connection. Closing its stream also removes it from epoll.
    fn remove(&mut self, key: ConnKey) {
        if let Some(entry) = self.conns.remove(&key) {
            self.conn_fds.remove(&entry.conn.stream().as_raw_fd());
            log::debug!("vsock: connection {key:?} closed");
        }
    }

    fn queue_control_rst(&mut self, to: &PacketHeader) {
        if self.control_rx.len() >= MAX_CONTROL_PACKETS {
            log::warn!("vsock: too many pending RSTs, dropping one");
            return;
        }
        self.control_rx.push_back(PacketHeader {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: to.dst_port,
            dst_port: to.src_port,
            type_: TYPE_STREAM,
            op: Op::Rst as u16,
            ..PacketHeader::default()
        });
    }

    /// Guest REQUEST for host port `key.local_port`: connect to
    /// `<uds_path>_<port>`, or refuse with RST if nothing listens there.
    fn connect_to_host_listener(&mut self, key: ConnKey, request: &PacketHeader) {
        if self.at_connection_limit() {
            log::warn!(
                "vsock: guest has {} connections, refusing {key:?}",
                self.conns.len()
            );
            self.queue_control_rst(request);
            return;
        }
        let path = port_socket_path(&self.uds_path, key.local_port);
        match connect_nonblocking(&path) {
            Ok(stream) => {
                log::debug!("vsock: guest connected to {}", path.display());
                let conn = Connection::guest_initiated(key, self.guest_cid, stream, request);
                self.insert(key, conn);
            }
            Err(e) => {
                log::debug!("vsock: guest connect to {}: {e}", path.display());
                self.queue_control_rst(request);
            }
        }
    }

    fn accept_host_clients(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("vsock: accept on {}: {e}", self.uds_path.display());
                    return;
                }
            };
            if self.clients.len() >= MAX_HANDSHAKING_CLIENTS {
                log::warn!("vsock: too many host clients in handshake, refusing one");
                continue;
            }
            let fd = stream.as_raw_fd();
            let registered = stream.set_nonblocking(true).and_then(|()| {
                self.epoll.ctl(
                    ControlOperation::Add,
                    fd,
                    EpollEvent::new(EventSet::IN, fd as u64),
                )
            });
            match registered {
                Ok(()) => {
                    self.clients.insert(
                        fd,
                        HandshakingClient {
                            stream,
                            line: Vec::new(),
                        },
                    );
                }
                Err(e) => log::warn!("vsock: cannot watch host client: {e}"),
            }
        }
    }

    /// Reads a handshaking client's `CONNECT <port>\n` one byte at a time,
    /// so that no byte meant for the guest is consumed here.
    fn read_connect_line(&mut self, fd: RawFd) {
        let Some(client) = self.clients.get_mut(&fd) else {
            return;
        };
        let mut byte = [0u8; 1];
        let port = loop {
            match client.stream.read(&mut byte) {
                Ok(0) => break Err("closed before CONNECT".to_string()),
                Ok(_) if byte[0] == b'\n' => break parse_connect_line(&client.line),
                Ok(_) if client.line.len() >= MAX_CONNECT_LINE => {
                    break Err("CONNECT line too long".to_string())
                }
                Ok(_) => client.line.push(byte[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => break Err(e.to_string()),
            }
        };
        let Some(client) = self.clients.remove(&fd) else {
            return;
        };
        // The stream is watched again, with a connection's interest, once
        // the connection exists.
        if let Err(e) = self
            .epoll
            .ctl(ControlOperation::Delete, fd, EpollEvent::default())
        {
            log::warn!("vsock: cannot unwatch host client: {e}");
            return;
        }
        let peer_port = match port {
            Ok(port) => port,
            Err(e) => {
                log::debug!("vsock: host client dropped: {e}");
                return;
            }
        };
        if self.at_connection_limit() {
            log::warn!(
                "vsock: guest has {} connections, refusing host client for port {peer_port}",
                self.conns.len()
            );
            return;
        }
        let Some(local_port) = self.allocate_local_port(peer_port) else {
            log::warn!("vsock: no free local port for guest port {peer_port}");
            return;
        };
        let key = ConnKey {
            local_port,
            peer_port,
        };
        log::debug!("vsock: host connecting to guest port {peer_port} as {local_port}");
        self.insert(
            key,
            Connection::host_initiated(key, self.guest_cid, client.stream),
        );
    }

    fn at_connection_limit(&self) -> bool {
        self.conns.len() >= self.max_connections
    }

    fn allocate_local_port(&mut self, peer_port: u32) -> Option<u32> {
        // Bounded: at most one probe per existing connection can collide.
        for _ in 0..=self.conns.len() {
            let port = self.next_local_port;
            self.next_local_port = port.checked_add(1).unwrap_or(FIRST_LOCAL_PORT);
            let key = ConnKey {
                local_port: port,
                peer_port,
            };
            if !self.conns.contains_key(&key) {
                return Some(port);
            }
        }
        None
    }
}

/// Registers, modifies or removes `fd` in `epoll` so its interest becomes
/// `desired`; `registered` tracks what epoll currently has.
fn update_interest(
    epoll: &Epoll,
    fd: RawFd,
    registered: &mut EventSet,
    desired: EventSet,
) -> io::Result<()> {
    if *registered == desired {
        return Ok(());
    }
    let op = if registered.is_empty() {
        ControlOperation::Add
    } else if desired.is_empty() {
        ControlOperation::Delete
    } else {
        ControlOperation::Modify
    };
    epoll.ctl(op, fd, EpollEvent::new(desired, fd as u64))?;
    *registered = desired;
    Ok(())
}

/// `<uds_path>_<port>`: where host listeners for guest connections live.
fn port_socket_path(uds_path: &Path, port: u32) -> PathBuf {
    let mut path = OsString::from(uds_path.as_os_str());
    path.push(format!("_{port}"));
    PathBuf::from(path)
}

/// Connects to a unix listener without ever blocking the worker: a listener
/// whose backlog is full refuses the connection instead.
pub(crate) fn connect_nonblocking(path: &Path) -> io::Result<UnixStream> {
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(UnixStream::from(fd))
}

/// Parses `CONNECT <port>` (the line without its newline).
fn parse_connect_line(line: &[u8]) -> Result<u32, String> {
    let text = std::str::from_utf8(line).map_err(|_| "CONNECT line is not UTF-8".to_string())?;
    text.trim_end_matches('\r')
        .strip_prefix("CONNECT ")
        .and_then(|port| port.trim().parse().ok())
        .ok_or_else(|| format!("bad CONNECT line {text:?}"))
}

impl AsRawFd for Muxer {
    /// The muxer's epoll fd: readable when a host socket needs attention.
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_lines() {
        assert_eq!(parse_connect_line(b"CONNECT 52"), Ok(52));
        assert_eq!(parse_connect_line(b"CONNECT 4294967295\r"), Ok(u32::MAX));
        assert!(parse_connect_line(b"CONNECT").is_err());
        assert!(parse_connect_line(b"CONNECT -1").is_err());
        assert!(parse_connect_line(b"connect 52").is_err());
        assert!(parse_connect_line(b"CONNECT 4294967296").is_err());
        assert!(parse_connect_line(&[0xff, 0xfe]).is_err());
    }

    const GUEST_CID: u64 = 3;

    fn guest_packet(op: Op, src_port: u32, dst_port: u32) -> TxPacket {
        TxPacket {
            hdr: PacketHeader {
                src_cid: GUEST_CID,
                dst_cid: HOST_CID,
                src_port,
                dst_port,
                type_: TYPE_STREAM,
                op: op as u16,
                buf_alloc: 4096,
                ..PacketHeader::default()
            },
            payload: Vec::new(),
        }
    }

    /// (guest port, op) of every packet the muxer has for the guest.
    fn drain_rx(muxer: &mut Muxer) -> Vec<(u32, Option<Op>)> {
        let mut buf = [0u8; 4096];
        std::iter::from_fn(|| muxer.next_rx_packet(&mut buf))
            .map(|(hdr, _)| (hdr.dst_port, hdr.op()))
            .collect()
    }

    #[test]
    fn connections_beyond_the_limit_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uds_path = dir.path().join("v.sock");
        let listener = UnixListener::bind(&uds_path).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let _port_listener = UnixListener::bind(port_socket_path(&uds_path, 1024)).expect("bind");
        let mut muxer = Muxer::new(GUEST_CID, uds_path.clone(), listener, 2).expect("muxer");

        for guest_port in [5000, 5001, 5002] {
            muxer.handle_guest_packet(&guest_packet(Op::Request, guest_port, 1024));
        }
        assert_eq!(
            drain_rx(&mut muxer),
            [
                (5002, Some(Op::Rst)),
                (5000, Some(Op::Response)),
                (5001, Some(Op::Response)),
            ]
        );

        // A host client is disconnected too, without a REQUEST to the guest.
        let mut client = UnixStream::connect(&uds_path).expect("connect");
        std::io::Write::write_all(&mut client, b"CONNECT 52\n").expect("write");
        muxer.process_events(); // accepts the client
        muxer.process_events(); // reads its CONNECT line
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        assert_eq!(client.read(&mut [0u8; 16]).expect("read"), 0, "EOF");
        assert_eq!(drain_rx(&mut muxer), []);

        // Closing a connection makes room for a new one.
        muxer.handle_guest_packet(&guest_packet(Op::Rst, 5000, 1024));
        muxer.handle_guest_packet(&guest_packet(Op::Request, 5003, 1024));
        assert_eq!(drain_rx(&mut muxer), [(5003, Some(Op::Response))]);
    }

    #[test]
    fn port_socket_path_appends_port() {
        assert_eq!(
            port_socket_path(Path::new("/run/x/vsock.sock"), 1024),
            PathBuf::from("/run/x/vsock.sock_1024")
        );
    }
}
