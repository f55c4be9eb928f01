//! RX: frames read from the tap, copied into the buffers the driver posts
//! on the RX queue.
//!
//! One frame is read at a time into a host buffer. It stays pending until
//! enough guest buffers are there to take it whole: with
//! VIRTIO_NET_F_MRG_RXBUF as many chains as it needs, each filled in turn,
//! the count written to `num_buffers` in the header; without it, one chain
//! (and `num_buffers` 1). A frame that can never fit is dropped.
//!
//! Chains are taken off the available ring into a local list as they are
//! needed, and all of them at once, so the ring is empty when the device
//! waits for more and the driver's next buffer notifies it, with or
//! without VIRTIO_RING_F_EVENT_IDX.

use std::collections::VecDeque;
use std::io;
use std::mem::offset_of;

use virtio_bindings::virtio_net::virtio_net_hdr_v1;
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory as _};

use super::tap::TapIo;
use super::{MAX_BUFFER_LEN, VNET_HDR_LEN};
use crate::devices::virtio::GuestMemory;

/// Where `num_buffers` is in the vnet header.
const NUM_BUFFERS_OFFSET: usize = offset_of!(virtio_net_hdr_v1, num_buffers);

/// Most descriptors in one RX chain. Linux posts one per mergeable buffer
/// and MAX_SKB_FRAGS + 2 per big-packet buffer.
const MAX_DESCRIPTORS: usize = 256;

/// What became of the pending frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Delivered, or dropped because no buffers could ever hold it.
    Done,
    /// Still pending: the driver has not posted enough buffers yet.
    Waiting,
}

/// One chain the driver posted: its device-writable buffers.
struct RxBuffer {
    head: u16,
    segments: Vec<(GuestAddress, usize)>,
    len: usize,
}

impl RxBuffer {
    /// The buffers of `chain`, or why the chain cannot take a frame.
    fn parse(
        mem: &GuestMemory,
        chain: DescriptorChain<&GuestMemory>,
    ) -> Result<Self, &'static str> {
        let head = chain.head_index();
        let mut segments = Vec::new();
        let mut len = 0;
        for desc in chain {
            if segments.len() == MAX_DESCRIPTORS {
                return Err("more than 256 descriptors");
            }
            if !desc.is_write_only() {
                return Err("a device-readable descriptor");
            }
            let segment_len = desc.len() as usize;
            if !mem.check_range(desc.addr(), segment_len) {
                return Err("a buffer outside guest memory");
            }
            segments.push((desc.addr(), segment_len));
            len += segment_len;
        }
        if len < VNET_HDR_LEN {
            return Err("shorter than the vnet header");
        }
        Ok(RxBuffer {
            head,
            segments,
            len,
        })
    }
}

/// The receive side: the pending frame and the buffers taken for it.
pub(crate) struct Receiver {
    frame: Box<[u8]>,
    /// Length of the frame in `frame` awaiting delivery.
    pending: Option<usize>,
    buffers: VecDeque<RxBuffer>,
    /// VIRTIO_NET_F_MRG_RXBUF was negotiated.
    mergeable: bool,
    /// Chains went back on the used ring since [`Self::take_returned`].
    returned: bool,
}

impl Receiver {
    pub(crate) fn new(mergeable: bool) -> Self {
        Receiver {
            frame: vec![0; MAX_BUFFER_LEN].into_boxed_slice(),
            pending: None,
            buffers: VecDeque::new(),
            mergeable,
            returned: false,
        }
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether chains went back on the used ring since the last call.
    pub(super) fn take_returned(&mut self) -> bool {
        std::mem::take(&mut self.returned)
    }

    /// Reads the next frame from `tap` into the pending slot, which must
    /// be free. Returns false when the tap has no frame waiting.
    pub(crate) fn read_from<T: TapIo>(&mut self, tap: &mut T) -> io::Result<bool> {
        loop {
            match tap.read_frame(&mut self.frame) {
                Ok(len) if len < VNET_HDR_LEN => {
                    log::warn!(
                        "virtio-net: dropped a {len}-byte frame from the tap: no vnet header"
                    );
                }
                Ok(len) => {
                    self.pending = Some(len);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Copies the pending frame, if any, into the driver's buffers.
    pub(crate) fn deliver(
        &mut self,
        queue: &mut Queue,
        mem: &GuestMemory,
    ) -> Result<Delivery, virtio_queue::Error> {
        let Some(len) = self.pending else {
            return Ok(Delivery::Done);
        };
        if self.buffers_for(len).is_none() {
            self.take_buffers(queue, mem)?;
        }
        let Some(count) = self.buffers_for(len) else {
            if self.may_wait(queue.size()) {
                return Ok(Delivery::Waiting);
            }
            log::warn!(
                "virtio-net: dropped a {len}-byte frame: the guest's RX buffers cannot hold it"
            );
            self.pending = None;
            return Ok(Delivery::Done);
        };
        self.frame[NUM_BUFFERS_OFFSET..VNET_HDR_LEN].copy_from_slice(&count.to_le_bytes());
        let mut rest = &self.frame[..len];
        for buffer in self.buffers.drain(..usize::from(count)) {
            let mut written = 0;
            for &(addr, segment_len) in &buffer.segments {
                if rest.is_empty() {
                    break;
                }
                // A zero-length buffer takes nothing: the frame goes on
                // in the next one.
                let n = segment_len.min(rest.len());
                if n == 0 {
                    continue;
                }
                if let Err(e) = mem.write_slice(&rest[..n], addr) {
                    log::warn!("virtio-net: RX chain {}: {e}", buffer.head);
                    break;
                }
                rest = &rest[n..];
                written += n;
            }
            // At most MAX_BUFFER_LEN bytes.
            let written = u32::try_from(written).unwrap_or(u32::MAX);
            self.returned |= give_back(queue, mem, buffer.head, written)?;
        }
        self.pending = None;
        Ok(Delivery::Done)
    }

    /// How many of the taken buffers a frame of `len` bytes fills, if they
    /// are enough for it.
    fn buffers_for(&self, len: usize) -> Option<u16> {
        if !self.mergeable {
            return self
                .buffers
                .front()
                .filter(|buffer| buffer.len >= len)
                .map(|_| 1);
        }
        let mut room = 0;
        // At most the queue size, a u16, of buffers are taken.
        for (count, buffer) in (1..=u16::MAX).zip(&self.buffers) {
            room += buffer.len;
            if room >= len {
                return Some(count);
            }
        }
        None
    }

    /// Whether more buffers could still make room for a frame that does
    /// not fit the taken ones. Without mergeable buffers only the next
    /// buffer counts; with them, as many as the queue holds.
    fn may_wait(&self, queue_size: u16) -> bool {
        if self.mergeable {
            self.buffers.len() < usize::from(queue_size)
        } else {
            self.buffers.is_empty()
        }
    }

    /// Takes every chain on the available ring, up to the queue size, and
    /// leaves notifications enabled: the driver's next buffer notifies.
    /// Chains that cannot take a frame go straight back, unused.
    fn take_buffers(
        &mut self,
        queue: &mut Queue,
        mem: &GuestMemory,
    ) -> Result<(), virtio_queue::Error> {
        let limit = usize::from(queue.size());
        loop {
            queue.disable_notification(mem)?;
            while self.buffers.len() < limit {
                let Some(chain) = queue.iter(mem)?.next() else {
                    break;
                };
                let head = chain.head_index();
                match RxBuffer::parse(mem, chain) {
                    Ok(buffer) => self.buffers.push_back(buffer),
                    Err(why) => {
                        log::warn!("virtio-net: returned unusable RX chain {head}: {why}");
                        self.returned |= give_back(queue, mem, head, 0)?;
                    }
                }
            }
            if self.buffers.len() >= limit {
                return Ok(());
            }
            // Re-enabling notifications reports chains that raced in.
            if !queue.enable_notification(mem)? {
                return Ok(());
            }
        }
    }
}

/// Puts `head` on the used ring with `len` bytes written. Returns whether
/// it went there: a head index past the queue end names no chain to
/// return, and the driver loses only its own entry.
fn give_back(
    queue: &mut Queue,
    mem: &GuestMemory,
    head: u16,
    len: u32,
) -> Result<bool, virtio_queue::Error> {
    match queue.add_used(mem, head, len) {
        Ok(()) => Ok(true),
        Err(virtio_queue::Error::InvalidDescriptorIndex) => {
            log::warn!("virtio-net: dropped RX chain with invalid head index {head}");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
