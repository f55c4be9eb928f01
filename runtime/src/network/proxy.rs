//! The userland proxy behind published ports: the process that holds a
//! container's VM listens on each host port and relays every TCP
//! connection and UDP flow to the container's address on the bridge, so a
//! port is reachable on 127.0.0.1 and on every address of the host alike.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result};

use super::ports::{PortMapping, Protocol};

/// How long connecting to the container may take before the client's
/// connection is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A UDP flow with no traffic for this long is forgotten.
const UDP_FLOW_IDLE: Duration = Duration::from_secs(60);
/// How often blocked UDP receives look at the stop flag.
const UDP_POLL: Duration = Duration::from_millis(500);
/// How long a failing accept(2) (out of file descriptors, say) waits before
/// trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(500);
/// Largest UDP datagram.
const MAX_DATAGRAM: usize = 65_535;

/// Relays the published ports while it lives; dropping it closes every
/// port and relayed connection, and returns once the host ports are free.
pub struct PortProxy {
    stop: Arc<AtomicBool>,
    tcp_listeners: Vec<TcpListener>,
    /// The threads holding the host ports.
    servers: Vec<JoinHandle<()>>,
    relays: Arc<Relays>,
}

/// What the proxy's threads have open beyond the host ports.
#[derive(Default)]
struct Relays {
    /// Both sides of each relayed TCP connection, by number.
    connections: Mutex<HashMap<u64, [TcpStream; 2]>>,
    next_connection: AtomicU64,
    /// The UDP flows' reply threads, which hold the published socket.
    udp_flows: Mutex<Vec<JoinHandle<()>>>,
}

impl PortProxy {
    /// Binds every host port of `mappings` (all or none), then relays each
    /// to `container` in the background.
    pub fn start(mappings: &[PortMapping], container: Ipv4Addr) -> Result<PortProxy> {
        let mut tcp = Vec::new();
        let mut udp = Vec::new();
        for mapping in mappings {
            let address = mapping.bind_address();
            match mapping.protocol {
                Protocol::Tcp => tcp.push((
                    TcpListener::bind(address).map_err(|e| mapping.bind_error(e))?,
                    mapping,
                )),
                Protocol::Udp => udp.push((
                    UdpSocket::bind(address).map_err(|e| mapping.bind_error(e))?,
                    mapping,
                )),
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let relays = Arc::new(Relays::default());
        let mut tcp_listeners = Vec::new();
        let mut servers = Vec::new();
        for (listener, mapping) in tcp {
            let target = SocketAddrV4::new(container, mapping.container_port);
            tcp_listeners.push(listener.try_clone().context("cannot share a listener")?);
            let (stop, relays) = (Arc::clone(&stop), Arc::clone(&relays));
            servers.push(spawn(
                format!("proxy-tcp-{}", mapping.host_port),
                move || serve_tcp(&listener, target, &stop, &relays),
            )?);
        }
        for (socket, mapping) in udp {
            let target = SocketAddrV4::new(container, mapping.container_port);
            socket
                .set_read_timeout(Some(UDP_POLL))
                .context("cannot configure a UDP socket")?;
            let (stop, relays) = (Arc::clone(&stop), Arc::clone(&relays));
            servers.push(spawn(
                format!("proxy-udp-{}", mapping.host_port),
                move || serve_udp(socket, target, &stop, &relays),
            )?);
        }
        Ok(PortProxy {
            stop,
            tcp_listeners,
            servers,
            relays,
        })
    }
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for listener in &self.tcp_listeners {
            // SAFETY: shutdown(2) on a socket this proxy owns; it wakes the
            // thread blocked in accept(2), which then sees the stop flag.
            unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
        }
        // Connections to a container that is gone would wait forever.
        for connection in lock(&self.relays.connections).values() {
            for stream in connection {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // UDP servers and flows see the flag within one poll interval; the
        // host port is free once the last of them has ended.
        for server in self.servers.drain(..) {
            let _ = server.join();
        }
        for flow in std::mem::take(&mut *lock(&self.relays.udp_flows)) {
            let _ = flow.join();
        }
    }
}

/// Locks `mutex`, whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name)
        .spawn(body)
        .context("cannot start a port proxy thread")
}

fn serve_tcp(
    listener: &TcpListener,
    target: SocketAddrV4,
    stop: &AtomicBool,
    relays: &Arc<Relays>,
) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((client, _)) => {
                let relays = Arc::clone(relays);
                let relay = move || {
                    if let Err(e) = relay_tcp(client, target, &relays) {
                        tracing::debug!("proxy to {target}: {e}");
                    }
                };
                if let Err(e) = spawn(format!("proxy-conn-{}", target.port()), relay).map(drop) {
                    tracing::warn!("{e:#}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!("proxy to {target}: accept failed: {e}");
                thread::sleep(ACCEPT_RETRY);
            }
        }
    }
}

/// Copies both ways until both sides have closed; each end of file is
/// passed on as a half-close.
fn relay_tcp(client: TcpStream, target: SocketAddrV4, relays: &Relays) -> io::Result<()> {
    let upstream = TcpStream::connect_timeout(&SocketAddr::V4(target), CONNECT_TIMEOUT)?;
    for stream in [&client, &upstream] {
        stream.set_nodelay(true)?;
    }
    let number = relays.next_connection.fetch_add(1, Ordering::Relaxed);
    lock(&relays.connections).insert(number, [client.try_clone()?, upstream.try_clone()?]);
    let relayed = relay_both_ways(client, upstream, target);
    lock(&relays.connections).remove(&number);
    relayed
}

fn relay_both_ways(client: TcpStream, upstream: TcpStream, target: SocketAddrV4) -> io::Result<()> {
    let (mut client_read, mut upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let inbound = thread::Builder::new()
        .name(format!("proxy-in-{}", target.port()))
        .spawn(move || {
            let _ = io::copy(&mut client_read, &mut upstream_write);
            let _ = upstream_write.shutdown(Shutdown::Write);
        })?;
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = inbound.join();
    Ok(())
}

/// Each client address gets its own socket towards the container, so
/// replies find their way back; a flow idle for [`UDP_FLOW_IDLE`] ends.
fn serve_udp(socket: UdpSocket, target: SocketAddrV4, stop: &Arc<AtomicBool>, relays: &Relays) {
    let socket = Arc::new(socket);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buffer = vec![0; MAX_DATAGRAM];
    while !stop.load(Ordering::SeqCst) {
        let (len, client) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("proxy to {target}/udp: {e}");
                thread::sleep(UDP_POLL);
                continue;
            }
        };
        let flow = match udp_flow(&socket, &flows, client, target, stop, relays) {
            Ok(flow) => flow,
            Err(e) => {
                tracing::warn!("proxy to {target}/udp: {e}");
                continue;
            }
        };
        if let Err(e) = flow.send(&buffer[..len]) {
            tracing::debug!("proxy to {target}/udp: {e}");
        }
    }
}

/// The socket of `client`'s flow, made (with its reply thread) on its
/// first datagram.
fn udp_flow(
    socket: &Arc<UdpSocket>,
    flows: &Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
    client: SocketAddr,
    target: SocketAddrV4,
    stop: &Arc<AtomicBool>,
    relays: &Relays,
) -> io::Result<Arc<UdpSocket>> {
    let mut table = lock(flows);
    if let Some(flow) = table.get(&client) {
        return Ok(Arc::clone(flow));
    }
    let flow = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    flow.connect(target)?;
    flow.set_read_timeout(Some(UDP_POLL))?;
    let flow = Arc::new(flow);
    table.insert(client, Arc::clone(&flow));
    let (socket, flows, stop, replies) = (
        Arc::clone(socket),
        Arc::clone(flows),
        Arc::clone(stop),
        Arc::clone(&flow),
    );
    let reply_thread = thread::Builder::new()
        .name(format!("proxy-udp-flow-{}", target.port()))
        .spawn(move || {
            relay_udp_replies(&replies, &socket, client, &stop);
            lock(&flows).remove(&client);
        })?;
    let mut threads = lock(&relays.udp_flows);
    threads.retain(|thread| !thread.is_finished());
    threads.push(reply_thread);
    Ok(flow)
}

fn relay_udp_replies(flow: &UdpSocket, socket: &UdpSocket, client: SocketAddr, stop: &AtomicBool) {
    let mut buffer = vec![0; MAX_DATAGRAM];
    let mut idle = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) && idle < UDP_FLOW_IDLE {
        match flow.recv(&mut buffer) {
            Ok(len) => {
                idle = Duration::ZERO;
                if let Err(e) = socket.send_to(&buffer[..len], client) {
                    tracing::debug!("proxy reply to {client}: {e}");
                }
            }
            Err(e) if is_timeout(&e) => idle += UDP_POLL,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // An ICMP port unreachable from the container: no listener yet.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => idle += UDP_POLL,
            Err(e) => {
                tracing::debug!("proxy flow of {client}: {e}");
                return;
            }
        }
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn mapping(protocol: Protocol, container_port: u16) -> PortMapping {
        let wanted = PortMapping {
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: 0,
            container_port,
            protocol,
        };
        super::super::ports::reserve_all(&[wanted]).unwrap()[0]
    }

    #[test]
    fn tcp_connections_are_relayed_both_ways_with_half_close() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let published = mapping(Protocol::Tcp, port);
        let _proxy = PortProxy::start(&[published], Ipv4Addr::LOCALHOST).unwrap();
        let echo = thread::spawn(move || {
            let (mut conn, _) = server.accept().unwrap();
            let mut request = String::new();
            conn.read_to_string(&mut request).unwrap();
            conn.write_all(request.to_uppercase().as_bytes()).unwrap();
        });
        let mut client = TcpStream::connect(("127.0.0.1", published.host_port)).unwrap();
        client.write_all(b"hello through the proxy").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "HELLO THROUGH THE PROXY");
        echo.join().unwrap();
    }

    #[test]
    fn udp_datagrams_are_relayed_and_answered_per_client() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let published = mapping(Protocol::Udp, port);
        let _proxy = PortProxy::start(&[published], Ipv4Addr::LOCALHOST).unwrap();
        thread::spawn(move || {
            let mut buffer = [0; 64];
            loop {
                let (len, from) = server.recv_from(&mut buffer).unwrap();
                let reply = [b"re:".as_slice(), &buffer[..len]].concat();
                server.send_to(&reply, from).unwrap();
            }
        });
        for name in ["a", "b"] {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            client
                .send_to(name.as_bytes(), ("127.0.0.1", published.host_port))
                .unwrap();
            let mut buffer = [0; 64];
            let len = client.recv(&mut buffer).unwrap();
            assert_eq!(&buffer[..len], format!("re:{name}").as_bytes());
        }
    }

    #[test]
    fn dropping_the_proxy_frees_a_udp_port_with_flows_and_ends_idle_connections() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp = mapping(Protocol::Udp, server.local_addr().unwrap().port());
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = mapping(Protocol::Tcp, backend.local_addr().unwrap().port());
        let proxy = PortProxy::start(&[udp, tcp], Ipv4Addr::LOCALHOST).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"x", ("127.0.0.1", udp.host_port)).unwrap();
        let mut buffer = [0; 8];
        server.recv_from(&mut buffer).unwrap();
        let mut idle = TcpStream::connect(("127.0.0.1", tcp.host_port)).unwrap();
        let _upstream = backend.accept().unwrap();
        // The relay registers the connection once it reached the backend.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lock(&proxy.relays.connections).is_empty() {
            assert!(std::time::Instant::now() < deadline, "never relayed");
            thread::sleep(Duration::from_millis(10));
        }
        drop(proxy);
        assert!(UdpSocket::bind(("127.0.0.1", udp.host_port)).is_ok());
        idle.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            idle.read(&mut buffer).unwrap(),
            0,
            "the idle client was not closed"
        );
    }

    #[test]
    fn a_taken_port_fails_the_whole_start_and_dropping_frees_the_ports() {
        let published = mapping(Protocol::Tcp, 80);
        let proxy = PortProxy::start(&[published], Ipv4Addr::LOCALHOST).unwrap();
        let err = PortProxy::start(&[published], Ipv4Addr::LOCALHOST)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("is already in use"), "{err}");
        drop(proxy);
        let again = PortProxy::start(&[published], Ipv4Addr::LOCALHOST);
        assert!(
            again.is_ok(),
            "the port stayed bound after the proxy was dropped"
        );
    }
}
