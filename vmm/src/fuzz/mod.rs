//! Fuzz targets for what a guest's driver hands the VMM: each a plain
//! `fn(&[u8])` that must not panic whatever the bytes, and asserts what
//! must hold of any input. They need no VM: a target lays its input out
//! in a small guest memory as a driver would ([`guest`]) and hands it to
//! the device's own code, or (the vsock muxer) plays the guest's packets
//! and the host's sockets around it.
//!
//! - [`vsock_tx_packet`]: a vsock TX chain, read by `vsock::packet`;
//! - [`vsock_muxer_sequences`]: guest packets, host clients and host
//!   stream traffic in any order, through `vsock::muxer` and its
//!   connections, with what the guest may get of it checked;
//! - [`virtio_fs_requests`], [`virtio_fs_writable_requests`]: FUSE
//!   requests served by `fs::worker::serve_chain` on read-only shares and
//!   on writable ones (a volume, a single-file bind), with a directory
//!   beside the share that must not change;
//! - [`virtio_blk_requests`]: a request served by `block::request` on a
//!   small sparse disk image, never written past its end;
//! - [`virtio_net_tx`], [`virtio_net_rx`]: a TX chain sent to a stand-in
//!   tap by `net::tx`, and a frame from it delivered into RX chains by
//!   `net::rx`;
//! - [`virtio_mmio_registers`]: register reads and writes against the
//!   virtio-mmio transport of a virtio-blk device, queue setup and
//!   activation included.
//!
//! They run two ways: `cargo test -p hull-vmm` on the checked-in corpus
//! (`vmm/fuzz/corpus/<target>/`) and a bounded number of mutations of it,
//! and under libFuzzer for long runs from the `vmm/fuzz` crate (not part
//! of the workspace; see `vmm/fuzz/README.md`), which enables this module
//! with the `fuzzing` feature.

mod block;
mod fs;
mod guest;
mod mmio;
mod net;
#[cfg(test)]
mod test_support;
mod vsock;
mod vsock_muxer;

pub use block::virtio_blk_requests;
pub use fs::{virtio_fs_requests, virtio_fs_writable_requests};
pub use mmio::virtio_mmio_registers;
pub use net::{virtio_net_rx, virtio_net_tx};
pub use vsock::vsock_tx_packet;
pub use vsock_muxer::vsock_muxer_sequences;
