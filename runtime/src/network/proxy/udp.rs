//! Published UDP ports: each client address is a flow with its own socket
//! towards the container, so that replies find their way back.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::{lock, Activity};

/// Client flows at once, over all of a container's UDP ports (a file
/// descriptor each).
pub const MAX_FLOWS: usize = 128;
/// A flow with no traffic either way for this long ends.
pub const FLOW_IDLE: Duration = Duration::from_secs(60);
/// Largest UDP datagram.
const MAX_DATAGRAM: usize = 65_535;
/// How long a failing receive waits before trying again.
const RECEIVE_RETRY: Duration = Duration::from_millis(100);

/// `socket`, for the proxy's event loop (whose context the caller is in).
pub fn socket(socket: std::net::UdpSocket) -> Result<UdpSocket> {
    socket
        .set_nonblocking(true)
        .and_then(|()| UdpSocket::from_std(socket))
        .context("cannot watch a published UDP port")
}

/// A flow's key: the published socket's port and the client's address.
type Key = (u16, SocketAddr);

/// The client flows of the UDP ports of one proxy.
pub struct Flows {
    max: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    flows: HashMap<Key, Flow>,
    next_id: u64,
}

struct Flow {
    id: u64,
    /// Connected to the container.
    socket: Arc<UdpSocket>,
    activity: Arc<Activity>,
    /// Ends its reply task.
    abort: AbortHandle,
}

impl Flows {
    pub fn new(max: usize) -> Arc<Flows> {
        Arc::new(Flows {
            max,
            open: Mutex::default(),
        })
    }

    /// The socket and activity of `client`'s flow on `published`, made
    /// (with its reply task) on its first datagram, in place of the least
    /// recently active flow if all are taken.
    fn flow(
        self: &Arc<Self>,
        published: &Arc<UdpSocket>,
        key: Key,
        target: SocketAddrV4,
    ) -> io::Result<(Arc<UdpSocket>, Arc<Activity>)> {
        let mut open = lock(&self.open);
        if let Some(flow) = open.flows.get(&key) {
            return Ok((Arc::clone(&flow.socket), Arc::clone(&flow.activity)));
        }
        if open.flows.len() >= self.max {
            let idlest = open
                .flows
                .iter()
                .max_by_key(|(_, flow)| (flow.activity.idle(), std::cmp::Reverse(flow.id)))
                .map(|(key, _)| *key);
            if let Some(flow) = idlest.and_then(|key| open.flows.remove(&key)) {
                tracing::debug!("port proxy: UDP flows full, ending the least active");
                // Its task ends when the event loop next runs, not under
                // this lock, which its end takes.
                flow.abort.abort();
            }
        }
        let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect(target)?;
        socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        let activity = Arc::new(Activity::new());
        let id = open.next_id;
        open.next_id += 1;
        let end = FlowEnd {
            flows: Arc::clone(self),
            key,
            id,
        };
        let replies = tokio::spawn(relay_replies(
            Arc::clone(&socket),
            Arc::clone(published),
            key.1,
            Arc::clone(&activity),
            end,
        ));
        open.flows.insert(
            key,
            Flow {
                id,
                socket: Arc::clone(&socket),
                activity: Arc::clone(&activity),
                abort: replies.abort_handle(),
            },
        );
        Ok((socket, activity))
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        lock(&self.open).flows.len()
    }
}

/// Forgets its flow when its reply task ends, however it ends (unless a
/// newer flow of the same client has replaced it).
struct FlowEnd {
    flows: Arc<Flows>,
    key: Key,
    id: u64,
}

impl Drop for FlowEnd {
    fn drop(&mut self) {
        let mut open = lock(&self.flows.open);
        if open
            .flows
            .get(&self.key)
            .is_some_and(|flow| flow.id == self.id)
        {
            open.flows.remove(&self.key);
        }
    }
}

/// Relays each datagram to `socket` to `target` through its client's flow.
pub async fn serve(socket: UdpSocket, target: SocketAddrV4, flows: Arc<Flows>) {
    let socket = Arc::new(socket);
    let port = socket.local_addr().map_or(0, |address| address.port());
    let mut buffer = vec![0; MAX_DATAGRAM];
    loop {
        let (len, client) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!("proxy to {target}/udp: {e}");
                tokio::time::sleep(RECEIVE_RETRY).await;
                continue;
            }
        };
        let (flow, activity) = match flows.flow(&socket, (port, client), target) {
            Ok(flow) => flow,
            Err(e) => {
                tracing::warn!("proxy to {target}/udp: {e}");
                continue;
            }
        };
        activity.touch();
        // Waits only while the socket's buffer is full (a fresh socket has
        // no readiness known yet, so try_send(2) would refuse).
        if let Err(e) = flow.send(&buffer[..len]).await {
            tracing::debug!("proxy to {target}/udp: {e}");
        }
    }
}

/// Relays the container's replies on `flow` to `client` from `published`
/// until the flow has been idle for [`FLOW_IDLE`].
async fn relay_replies(
    flow: Arc<UdpSocket>,
    published: Arc<UdpSocket>,
    client: SocketAddr,
    activity: Arc<Activity>,
    _end: FlowEnd,
) {
    let mut buffer = vec![0; MAX_DATAGRAM];
    loop {
        let Some(left) = FLOW_IDLE.checked_sub(activity.idle()) else {
            return;
        };
        match tokio::time::timeout(left, flow.recv(&mut buffer)).await {
            Err(_) => {}
            Ok(Ok(len)) => {
                activity.touch();
                if let Err(e) = published.send_to(&buffer[..len], client).await {
                    tracing::debug!("proxy reply to {client}: {e}");
                }
            }
            // An ICMP port unreachable from the container: no listener yet.
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Ok(Err(e)) => {
                tracing::debug!("proxy flow of {client}: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_client_replaces_the_least_active_flow_when_all_are_taken() {
        let backend = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(target) = backend.local_addr().unwrap() else {
            unreachable!()
        };
        std::thread::spawn(move || {
            let mut buffer = [0; 64];
            while let Ok((len, from)) = backend.recv_from(&mut buffer) {
                let _ = backend.send_to(&buffer[..len], from);
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let published = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let address = published.local_addr().unwrap();
            let flows = Flows::new(2);
            tokio::spawn(serve(
                socket(published).unwrap(),
                target,
                Arc::clone(&flows),
            ));
            let mut clients = Vec::new();
            for name in [b"a", b"b", b"c"] {
                let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                client.send_to(name, address).await.unwrap();
                let mut reply = [0; 8];
                let len = tokio::time::timeout(Duration::from_secs(10), client.recv(&mut reply))
                    .await
                    .expect("no reply")
                    .unwrap();
                assert_eq!(&reply[..len], name);
                clients.push(client);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(flows.count(), 2);
            let keys: Vec<SocketAddr> = lock(&flows.open).flows.keys().map(|k| k.1).collect();
            let first = clients[0].local_addr().unwrap();
            assert!(!keys.contains(&first), "the least active flow was kept");
        });
    }
}
