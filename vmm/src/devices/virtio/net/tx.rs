//! TX: each chain on the TX queue is one frame, vnet header first, in the
//! chain's device-readable buffers. It goes to the tap with one vectored
//! write straight from guest memory. Frames are never retried: a malformed
//! chain, or a frame the tap has no room for, is dropped, as a NIC drops
//! what it cannot send; the chain is returned either way.

use std::io;

use virtio_queue::DescriptorChain;

use super::tap::TapIo;
use super::tx_frame::TxFrame;
use crate::devices::virtio::GuestMemory;

/// Sends the frame in `chain` to `tap`, or drops it.
pub(crate) fn transmit<T: TapIo>(
    tap: &mut T,
    mem: &GuestMemory,
    chain: DescriptorChain<&GuestMemory>,
) {
    let head = chain.head_index();
    let frame = match TxFrame::gather(mem, chain) {
        Ok(frame) => frame,
        Err(why) => {
            log::warn!("virtio-net: dropped malformed TX chain {head}: {why}");
            return;
        }
    };
    loop {
        match tap.write_frame(&frame) {
            Ok(written) if written == frame.len() => return,
            Ok(written) => {
                log::warn!(
                    "virtio-net: the tap took {written} of a {}-byte frame",
                    frame.len()
                );
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::ENOBUFS) =>
            {
                log::debug!("virtio-net: the tap is full; dropped a TX frame");
                return;
            }
            Err(e) => {
                log::warn!("virtio-net: dropped a TX frame the tap refused: {e}");
                return;
            }
        }
    }
}
