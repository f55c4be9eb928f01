//! The userland proxy behind published ports: the process that holds a
//! container's VM listens on each host port and relays every TCP
//! connection and UDP flow to the container's address on the bridge, so a
//! port is reachable on 127.0.0.1 and on every address of the host alike.
//!
//! One thread serves every port of the container, event-driven (a
//! single-threaded tokio runtime): a relayed connection costs its two
//! sockets and a task, not threads. What a flood of clients can take is
//! bounded, so that the process keeps file descriptors and time for its
//! other work (the network's name server, `attach`, `exec`):
//!
//! - [`tcp`]: at most [`tcp::MAX_CONNECTIONS`] connections at once over all
//!   the container's TCP ports. A new one waits for a free place, or takes
//!   that of the connection idle the longest once it has been idle
//!   [`tcp::EVICTABLE_AFTER`]; while there is room, no connection is cut
//!   for idling (database pools and terminals keep theirs).
//! - [`udp`]: at most [`udp::MAX_FLOWS`] client flows (each with its own
//!   socket towards the container, so replies find their client); a flow
//!   idle for [`udp::FLOW_IDLE`] ends, and when all are taken a new client
//!   replaces the least recently active one.

mod tcp;
mod udp;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::oneshot;

use super::ports::{PortMapping, Protocol};

/// Relays the published ports while it lives; dropping it closes every
/// port and relayed connection, and returns once the host ports are free.
pub struct PortProxy {
    /// Dropped to stop the proxy's thread.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PortProxy {
    /// Binds every host port of `mappings` (all or none), then relays each
    /// to `container` in the background.
    pub fn start(mappings: &[PortMapping], container: Ipv4Addr) -> Result<PortProxy> {
        let mut tcp = Vec::new();
        let mut udp = Vec::new();
        for mapping in mappings {
            let address = mapping.bind_address();
            let target = SocketAddrV4::new(container, mapping.container_port);
            match mapping.protocol {
                Protocol::Tcp => tcp.push((
                    TcpListener::bind(address).map_err(|e| mapping.bind_error(e))?,
                    target,
                )),
                Protocol::Udp => udp.push((
                    UdpSocket::bind(address).map_err(|e| mapping.bind_error(e))?,
                    target,
                )),
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the port proxy's event loop")?;
        // The sockets join the runtime's event loop here, so that a failure
        // is this call's.
        let (tcp, udp) = {
            let _context = runtime.enter();
            let tcp = tcp
                .into_iter()
                .map(|(listener, target)| Ok((tcp::listener(listener)?, target)))
                .collect::<Result<Vec<_>>>()?;
            let udp = udp
                .into_iter()
                .map(|(socket, target)| Ok((udp::socket(socket)?, target)))
                .collect::<Result<Vec<_>>>()?;
            (tcp, udp)
        };
        let (stop, stopped) = oneshot::channel();
        let serve = move || {
            runtime.block_on(async move {
                let connections = tcp::Connections::new(tcp::Limits::DEFAULT);
                for (listener, target) in tcp {
                    tokio::spawn(tcp::serve(listener, target, connections.clone()));
                }
                let flows = udp::Flows::new(udp::MAX_FLOWS);
                for (socket, target) in udp {
                    tokio::spawn(udp::serve(socket, target, flows.clone()));
                }
                // Sent never: the sender's drop ends the wait.
                let _ = stopped.await;
            });
            // Ends every task, closing the ports and relayed connections.
            drop(runtime);
        };
        let thread = thread::Builder::new()
            .name("port-proxy".into())
            .spawn(serve)
            .context("cannot start the port proxy's thread")?;
        Ok(PortProxy {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// When a relay last moved data.
struct Activity {
    /// Milliseconds since the epoch of [`since_epoch`].
    last: AtomicU64,
}

impl Activity {
    /// Activity now.
    fn new() -> Activity {
        Activity {
            last: AtomicU64::new(since_epoch()),
        }
    }

    fn touch(&self) {
        self.last.store(since_epoch(), Ordering::Relaxed);
    }

    /// How long since the last activity.
    fn idle(&self) -> Duration {
        Duration::from_millis(since_epoch().saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// Milliseconds since this process first asked.
fn since_epoch() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Locks `mutex`, whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};

    use super::*;

    fn mapping(protocol: Protocol, container_port: u16) -> PortMapping {
        let wanted = super::super::ports::PortRequest {
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: 0,
            last_host_port: 0,
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
        // The relay is up once it reached the backend.
        let _upstream = backend.accept().unwrap();
        drop(proxy);
        assert!(UdpSocket::bind(("127.0.0.1", udp.host_port)).is_ok());
        assert!(TcpListener::bind(("127.0.0.1", tcp.host_port)).is_ok());
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

    #[test]
    fn one_thread_relays_many_connections() {
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let published = mapping(Protocol::Tcp, backend.local_addr().unwrap().port());
        let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
        let before = threads();
        let _proxy = PortProxy::start(&[published], Ipv4Addr::LOCALHOST).unwrap();
        let mut held = Vec::new();
        for _ in 0..50 {
            held.push(TcpStream::connect(("127.0.0.1", published.host_port)).unwrap());
            held.push(backend.accept().unwrap().0);
        }
        // 100 with a thread per direction; another test running alongside
        // may have a few.
        assert!(threads() < before + 40, "{} threads", threads() - before);
    }
}
