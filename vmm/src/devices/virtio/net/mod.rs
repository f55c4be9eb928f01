//! virtio-net on a host tap device.
//!
//! Every frame, in both directions, starts with the 12-byte
//! `virtio_net_hdr_v1` (VIRTIO_F_VERSION_1). A tap opened with
//! IFF_VNET_HDR and a vnet header size of 12 reads and writes frames with a
//! header of the same layout, so frames pass between the guest and the tap
//! untranslated: the device only fills in `num_buffers` on receive. The
//! offloads the driver accepts for received frames (checksum, TSO, ECN) are
//! enabled on the tap, so large TCP segments cross unsegmented both ways.
//!
//! - [`tap`]: the host side, [`Tap`], behind the [`TapIo`] interface.
//! - [`tx`]: frames from the guest, written to the tap in one call each.
//! - [`tx_frame`]: [`TxFrame`], one such frame, in guest memory.
//! - [`rx`]: frames from the tap, copied into the guest's RX buffers.
//! - [`worker`]: the epoll loop serving both queues and the tap.
//! - [`device`]: [`Net`], the [`VirtioDevice`](super::VirtioDevice).

mod device;
mod error;
pub(crate) mod rx;
mod tap;
pub(crate) mod tx;
mod tx_frame;
mod worker;

#[cfg(test)]
pub(crate) mod tests;

use std::mem::size_of;

use virtio_bindings::virtio_net::virtio_net_hdr_v1;

pub use device::Net;
pub use error::NetError;
pub use tap::{check_tun_fd, Tap, TapIo};
pub use tx_frame::TxFrame;

/// Length of `struct virtio_net_hdr_v1`, the header of every frame.
pub(crate) const VNET_HDR_LEN: usize = size_of::<virtio_net_hdr_v1>();

/// The largest Ethernet frame either side builds: a 64 KiB GSO packet
/// (GSO_MAX_SIZE) behind a 14-byte Ethernet header.
const MAX_FRAME_LEN: usize = (64 << 10) + 14;

/// The largest frame with its vnet header (65562 bytes): the size of the
/// RX read buffer and the limit on TX chains.
pub(crate) const MAX_BUFFER_LEN: usize = VNET_HDR_LEN + MAX_FRAME_LEN;
