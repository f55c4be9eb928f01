//! Published TCP ports: each accepted connection is relayed to the
//! container by a task, within the proxy's [`Limits`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddrV4;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::{lock, Activity};

/// Connections relayed at once, over all of a container's TCP ports: two
/// file descriptors each, so a flood leaves the process most of a default
/// limit of 1024.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a connection must have been idle before a new one may take its
/// place when all are taken.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(30);
/// How long connecting to the container may take before the client's
/// connection is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a failing accept(2) waits before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(500);
/// What one read moves at most.
const BUFFER_SIZE: usize = 16 * 1024;

/// How many connections are relayed at once, and when one may be evicted.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max: usize,
    pub evictable_after: Duration,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max: MAX_CONNECTIONS,
        evictable_after: EVICTABLE_AFTER,
    };
}

/// `listener`, for the proxy's event loop (whose context the caller is
/// in).
pub fn listener(listener: std::net::TcpListener) -> Result<TcpListener> {
    listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
        .context("cannot watch a published TCP port")
}

/// The connections relayed by the TCP ports of one proxy.
pub struct Connections {
    limits: Limits,
    open: Mutex<Open>,
    /// Notified when a connection ends.
    freed: Notify,
}

#[derive(Default)]
struct Open {
    relays: HashMap<u64, Relay>,
    next_id: u64,
}

/// A relayed connection, as the table knows it.
struct Relay {
    activity: Arc<Activity>,
    /// Ends its task; set once the task is spawned.
    abort: Option<AbortHandle>,
}

impl Connections {
    pub fn new(limits: Limits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            open: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// Waits for a place for a new connection: a free one, or that of the
    /// connection idle the longest once it has been idle long enough,
    /// which is closed.
    async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            let mut freed = pin!(self.freed.notified());
            freed.as_mut().enable();
            let wait = {
                let mut open = lock(&self.open);
                if open.relays.len() >= self.limits.max {
                    let idlest = open
                        .relays
                        .iter()
                        .map(|(id, relay)| (*id, relay.activity.idle()))
                        .max_by_key(|(id, idle)| (*idle, std::cmp::Reverse(*id)));
                    match idlest {
                        Some((id, idle)) if idle >= self.limits.evictable_after => {
                            tracing::debug!("port proxy: full, closing a connection idle {idle:?}");
                            // Its task ends when the event loop next runs,
                            // not under this lock, which its end takes.
                            if let Some(abort) = open.relays.remove(&id).and_then(|r| r.abort) {
                                abort.abort();
                            }
                            None
                        }
                        Some((_, idle)) => Some(self.limits.evictable_after - idle),
                        None => Some(self.limits.evictable_after),
                    }
                } else {
                    None
                }
            };
            let Some(wait) = wait else {
                return self.reserve();
            };
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Records a new connection, which there is room for.
    fn reserve(self: &Arc<Self>) -> Slot {
        let mut open = lock(&self.open);
        let id = open.next_id;
        open.next_id += 1;
        let activity = Arc::new(Activity::new());
        open.relays.insert(
            id,
            Relay {
                activity: Arc::clone(&activity),
                abort: None,
            },
        );
        Slot {
            id,
            activity,
            connections: Arc::clone(self),
        }
    }

    fn set_abort(&self, id: u64, abort: AbortHandle) {
        if let Some(relay) = lock(&self.open).relays.get_mut(&id) {
            relay.abort = Some(abort);
        }
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        lock(&self.open).relays.len()
    }
}

/// A connection's place in [`Connections`], given back when dropped.
struct Slot {
    id: u64,
    activity: Arc<Activity>,
    connections: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.connections.open).relays.remove(&self.id);
        self.connections.freed.notify_one();
    }
}

/// Accepts connections on `listener` and relays each to `target`, as
/// `connections` admits them; a connection waiting for a place is the
/// only one accepted meanwhile (the others wait in the kernel's backlog).
pub async fn serve(listener: TcpListener, target: SocketAddrV4, connections: Arc<Connections>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!("proxy to {target}: accept failed: {e}");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let slot = connections.admit().await;
        let id = slot.id;
        let relay = tokio::spawn(async move {
            if let Err(e) = relay(client, target, &slot).await {
                tracing::debug!("proxy to {target}: {e}");
            }
        });
        connections.set_abort(id, relay.abort_handle());
    }
}

/// Copies both ways until both sides have closed, or either fails; each
/// end of file is passed on as a half-close.
async fn relay(mut client: TcpStream, target: SocketAddrV4, slot: &Slot) -> io::Result<()> {
    let mut upstream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))??;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    tokio::try_join!(
        copy(client_read, upstream_write, &slot.activity),
        copy(upstream_read, client_write, &slot.activity),
    )?;
    Ok(())
}

/// Copies `from` to `to` until end of file, then shuts `to` for writing.
async fn copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    activity: &Activity,
) -> io::Result<()> {
    let mut buffer = vec![0; BUFFER_SIZE];
    loop {
        let len = from.read(&mut buffer).await?;
        if len == 0 {
            return to.shutdown().await;
        }
        activity.touch();
        to.write_all(&buffer[..len]).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use super::*;

    /// Serves a proxy with `limits` in front of an echo server on a
    /// runtime of its own; returns the proxy's address and connections.
    fn proxy(limits: Limits) -> (std::net::SocketAddr, Arc<Connections>) {
        let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(target) = backend.local_addr().unwrap() else {
            unreachable!()
        };
        std::thread::spawn(move || {
            for conn in backend.incoming() {
                let mut conn = conn.unwrap();
                std::thread::spawn(move || {
                    let mut buffer = [0; 64];
                    while let Ok(len @ 1..) = conn.read(&mut buffer) {
                        let _ = conn.write_all(&buffer[..len]);
                    }
                });
            }
        });
        let published = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = published.local_addr().unwrap();
        let connections = Connections::new(limits);
        let served = Arc::clone(&connections);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                serve(listener(published).unwrap(), target, served).await;
            });
        });
        (address, connections)
    }

    /// Whether a new connection to `address` gets its echo within `wait`.
    fn echoed(address: std::net::SocketAddr, wait: Duration) -> bool {
        let mut conn = std::net::TcpStream::connect(address).unwrap();
        conn.set_read_timeout(Some(wait)).unwrap();
        conn.write_all(b"ping").unwrap();
        let mut reply = [0; 4];
        conn.read_exact(&mut reply).is_ok() && &reply == b"ping"
    }

    #[test]
    fn a_full_proxy_serves_a_new_connection_in_place_of_the_idlest() {
        let limits = Limits {
            max: 3,
            evictable_after: Duration::from_millis(1500),
        };
        let (address, connections) = proxy(limits);
        // A flood of idle connections, more than fit.
        let flood: Vec<_> = (0..6)
            .map(|_| std::net::TcpStream::connect(address).unwrap())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while connections.count() < 3 {
            assert!(Instant::now() < deadline, "the flood was not admitted");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(connections.count(), 3, "more than the limit relayed");
        // A new client is served once idle ones have made room, each
        // waiting one in the backlog taking the place of an idle one.
        let started = Instant::now();
        assert!(echoed(address, Duration::from_secs(20)));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1000),
            "served at once: {waited:?}"
        );
        assert_eq!(connections.count(), 3);
        // The first of the flood was closed to make room.
        let mut first = &flood[0];
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(first.read(&mut [0; 1]).unwrap(), 0);
    }

    #[test]
    fn busy_connections_are_not_evicted_and_ended_ones_free_their_place() {
        let limits = Limits {
            max: 1,
            evictable_after: Duration::from_millis(500),
        };
        let (address, connections) = proxy(limits);
        let mut busy = std::net::TcpStream::connect(address).unwrap();
        busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let waiting = std::thread::spawn(move || echoed(address, Duration::from_secs(10)));
        // Traffic every 100 ms keeps it from being evicted.
        for _ in 0..15 {
            busy.write_all(b"ping").unwrap();
            let mut reply = [0; 4];
            busy.read_exact(&mut reply).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!waiting.is_finished(), "a busy connection was evicted");
        drop(busy);
        assert!(waiting.join().unwrap(), "the waiting client was not served");
        let deadline = Instant::now() + Duration::from_secs(5);
        while connections.count() > 0 {
            assert!(
                Instant::now() < deadline,
                "an ended connection kept its place"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
