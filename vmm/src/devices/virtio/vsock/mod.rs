//! virtio-vsock with a host unix-socket backend (Firecracker's "hybrid
//! vsock" model).
//!
//! The guest reaches host listeners at `<uds_path>_<port>` by connecting to
//! CID 2, port `<port>`; host clients reach guest listeners by connecting to
//! `<uds_path>` and writing `CONNECT <port>\n` (answered by
//! `OK <local_port>\n` once the guest accepts).
//!
//! - [`packet`]: the wire header and its transfer through descriptor chains.
//! - [`connection`]: one connection's state machine and flow control.
//! - [`muxer`]: the table of connections and the host sockets.
//! - [`worker`]: the epoll loop serving the queues.
//! - [`device`]: [`Vsock`], the [`VirtioDevice`](super::VirtioDevice).

pub(crate) mod connection;
mod device;
pub(crate) mod muxer;
pub(crate) mod packet;
mod worker;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use device::Vsock;

/// Errors creating a [`Vsock`] device.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    #[error("guest CID {0} is reserved or out of range (must be 3..2^32-1)")]
    InvalidCid(u64),
    #[error("{0} exists and is not a unix socket")]
    NotASocket(PathBuf),
    #[error("cannot remove stale socket {path}: {source}")]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
