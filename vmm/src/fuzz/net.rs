//! virtio-net: a TX chain sent by `net::tx::transmit`, and a frame from
//! the tap delivered into RX chains by `net::rx::Receiver`, with a unix
//! datagram socket pair standing in for the tap (one datagram, one frame).

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;

use nix::sys::socket::{setsockopt, sockopt};
use virtio_queue::{DescriptorChain, QueueT};
use vm_memory::{Address, Bytes};

use super::guest::{
    guest_memory, laid_out_chain, ready_queue, used_entries, write_buffers, QUEUE_SIZE, TABLE_LEN,
    USED_RING,
};
use crate::devices::virtio::net::rx::{Delivery, Receiver};
use crate::devices::virtio::net::tx::transmit;
use crate::devices::virtio::net::{TapIo, TxFrame, MAX_BUFFER_LEN, VNET_HDR_LEN};
use crate::devices::virtio::GuestMemory;

/// Sends the TX chain `data` lays out (as [`super::vsock_tx_packet`]'s
/// input does) to a tap. The tap gets one frame, exactly the bytes of the
/// chain's buffers in order, if the chain holds a vnet header and at most
/// 65562 bytes, all readable by the device; else nothing.
pub fn virtio_net_tx(data: &[u8]) {
    let (mut tap, host) = fake_tap();
    let mem = guest_memory();
    let chain = laid_out_chain(&mem, data);
    let expected = TxFrame::gather(&mem, chain.clone())
        .ok()
        .map(|_| chain_bytes(&mem, chain.clone()));
    transmit(&mut tap, &mem, chain);
    let sent = receive(&host);
    if let Some(frame) = &sent {
        assert!(
            (VNET_HDR_LEN..=MAX_BUFFER_LEN).contains(&frame.len()),
            "a {}-byte frame",
            frame.len()
        );
    }
    assert!(sent == expected, "the frame sent is not the chain's bytes");
    assert_eq!(receive(&host), None, "a second frame");
}

/// The bytes of `chain`'s buffers, in order.
fn chain_bytes(mem: &GuestMemory, chain: DescriptorChain<&GuestMemory>) -> Vec<u8> {
    chain
        .flat_map(|desc| {
            let mut bytes = vec![0; desc.len() as usize];
            mem.read_slice(&mut bytes, desc.addr())
                .expect("a buffer the device read");
            bytes
        })
        .collect()
}

/// The next frame on the host's end of the tap, if any.
fn receive(host: &UnixDatagram) -> Option<Vec<u8>> {
    let mut frame = vec![0; MAX_BUFFER_LEN + 1];
    match host.recv(&mut frame) {
        Ok(len) => {
            frame.truncate(len);
            Some(frame)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("the tap's host end: {e}"),
    }
}

/// Delivers a frame from the tap into RX chains: the input is a mode byte
/// (bit 0: VIRTIO_NET_F_MRG_RXBUF), the frame's length (u32, cut to
/// 65562), the number of chains offered (at most 16) and their heads (a
/// byte each), then 256 bytes of descriptor table and the bytes at
/// 0x10000. The frame goes whole into one chain (or, mergeable, into
/// consecutive ones), or into none; used lengths add up to the frame's or
/// to nothing; a frame still pending waits for more buffers.
pub fn virtio_net_rx(data: &[u8]) {
    let Some(input) = RxInput::parse(data) else {
        return;
    };
    let (mut tap, host) = fake_tap();
    let frame: Vec<u8> = (0..input.frame_len).map(|i| (i % 251) as u8).collect();
    host.send(&frame).expect("a frame for the tap");
    let mut receiver = Receiver::new(input.mergeable);
    let pending = receiver.read_from(&mut tap).expect("the tap's frame");
    assert_eq!(pending, input.frame_len >= VNET_HDR_LEN, "a frame read");

    let mem = guest_memory();
    write_buffers(&mem, input.buffers);
    let mut queue = ready_queue(&mem, input.table, &input.heads);
    let delivery = match receiver.deliver(&mut queue, &mem) {
        Ok(delivery) => delivery,
        // Rings a driver broke: the worker stops serving the queue.
        Err(_) => return,
    };
    assert_eq!(receiver.has_pending(), delivery == Delivery::Waiting);
    if buffers_over_used_ring(&input) {
        // The frame may have overwritten what the device put there.
        return;
    }
    let used = used_entries(&mem);
    assert!(used.len() <= input.heads.len(), "{used:?}");
    let total: u64 = used.iter().map(|&(_, len)| u64::from(len)).sum();
    assert!(
        total == 0 || (pending && total == input.frame_len as u64),
        "{total} bytes used of a {}-byte frame: {used:?}",
        input.frame_len
    );
    let filled = used.iter().filter(|&&(_, len)| len > 0).count();
    assert!(input.mergeable || filled <= 1, "{used:?}");
}

/// Whether a device-writable buffer of a chain `input` offers lies over
/// the used ring: a driver may do that, and the frame then lands on the
/// ring the target reads the used lengths from.
fn buffers_over_used_ring(input: &RxInput<'_>) -> bool {
    let mem = guest_memory();
    write_buffers(&mem, input.buffers);
    let mut queue = ready_queue(&mem, input.table, &input.heads);
    let ring_end = USED_RING + 4 + 8 * u64::from(QUEUE_SIZE);
    let mut over = false;
    while let Some(chain) = queue.pop_descriptor_chain(&mem) {
        over |= chain.filter(|desc| desc.is_write_only()).any(|desc| {
            let start = desc.addr().raw_value();
            start < ring_end && start.saturating_add(u64::from(desc.len())) > USED_RING
        });
    }
    over
}

/// An input of [`virtio_net_rx`].
struct RxInput<'a> {
    mergeable: bool,
    frame_len: usize,
    heads: Vec<u16>,
    table: &'a [u8],
    buffers: &'a [u8],
}

impl<'a> RxInput<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        let (&mode, rest) = data.split_first()?;
        let (len, rest) = rest.split_first_chunk::<4>()?;
        let (&count, rest) = rest.split_first()?;
        let count = usize::from(count).min(16).min(rest.len());
        let (heads, rest) = rest.split_at(count);
        let (table, buffers) = rest.split_at(rest.len().min(TABLE_LEN));
        Some(RxInput {
            mergeable: mode & 1 == 1,
            frame_len: (u32::from_le_bytes(*len) as usize).min(MAX_BUFFER_LEN),
            heads: heads.iter().map(|&head| u16::from(head)).collect(),
            table,
            buffers,
        })
    }
}

/// The device's end of a datagram socket pair, and the host's end; both
/// non-blocking, with room for the largest frame.
fn fake_tap() -> (FakeTap, UnixDatagram) {
    let (device, host) = UnixDatagram::pair().expect("a socket pair");
    for end in [&device, &host] {
        end.set_nonblocking(true).expect("a non-blocking socket");
        setsockopt(end, sockopt::SndBuf, &(256 << 10)).expect("a send buffer");
        setsockopt(end, sockopt::RcvBuf, &(256 << 10)).expect("a receive buffer");
    }
    (FakeTap(device), host)
}

struct FakeTap(UnixDatagram);

impl AsRawFd for FakeTap {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl TapIo for FakeTap {
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }

    fn write_frame(&mut self, frame: &TxFrame<'_>) -> io::Result<usize> {
        frame.write_to(self.0.as_fd())
    }

    fn set_offload(&mut self, _flags: u32) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::GuestAddress;

    use super::*;
    use crate::fuzz::guest::BUFFERS;
    use crate::fuzz::test_support::{run, seed, MUTATIONS};

    #[test]
    fn virtio_net_tx_corpus_and_mutations() {
        run("virtio_net_tx", virtio_net_tx, MUTATIONS);
    }

    #[test]
    fn virtio_net_rx_corpus_and_mutations() {
        run("virtio_net_rx", virtio_net_rx, MUTATIONS);
    }

    /// The frame the tap gets from the TX seed `name`, if any.
    fn sent(name: &str) -> Option<Vec<u8>> {
        let (mut tap, host) = fake_tap();
        let mem = guest_memory();
        let chain = laid_out_chain(&mem, &seed("virtio_net_tx", name));
        transmit(&mut tap, &mem, chain);
        receive(&host)
    }

    /// The TX seeds reach the device: frames in one and two descriptors
    /// go out whole, malformed chains are dropped.
    #[test]
    fn tx_seeds_reach_the_tap() {
        let one = sent("one-descriptor").expect("a frame");
        assert_eq!(one.len(), 12 + 60);
        assert_eq!(sent("two-descriptors"), Some(one));
        assert_eq!(
            sent("largest").map(|frame| frame.len()),
            Some(MAX_BUFFER_LEN)
        );
        for name in ["too-long", "header-only-short", "device-writable"] {
            assert_eq!(sent(name), None, "{name}");
        }
    }

    /// The used ring and the guest memory at 0x10000 after the RX seed
    /// `name`.
    fn received(name: &str) -> (Vec<(u32, u32)>, Vec<u8>) {
        let input = seed("virtio_net_rx", name);
        let input = RxInput::parse(&input).unwrap();
        let (mut tap, host) = fake_tap();
        let frame: Vec<u8> = (0..input.frame_len).map(|i| (i % 251) as u8).collect();
        host.send(&frame).unwrap();
        let mut receiver = Receiver::new(input.mergeable);
        receiver.read_from(&mut tap).unwrap();
        let mem = guest_memory();
        write_buffers(&mem, input.buffers);
        let mut queue = ready_queue(&mem, input.table, &input.heads);
        receiver.deliver(&mut queue, &mem).unwrap();
        let mut buffers = vec![0; 0x2000];
        mem.read_slice(&mut buffers, GuestAddress(BUFFERS)).unwrap();
        (used_entries(&mem), buffers)
    }

    /// The RX seeds reach the device: a frame into one buffer, across
    /// mergeable buffers, and unusable buffers handed back empty.
    #[test]
    fn rx_seeds_reach_the_guest() {
        let (used, buffers) = received("one-buffer");
        assert_eq!(used, [(0, 100)]);
        // `num_buffers` is 1; the rest is the frame.
        assert_eq!(buffers[10..12], [1, 0]);
        assert_eq!(
            buffers[12..100],
            (12..100).map(|i| i as u8).collect::<Vec<_>>()
        );
        let (used, buffers) = received("mergeable");
        assert_eq!(used, [(0, 64), (1, 36)]);
        assert_eq!(buffers[10..12], [2, 0]);
        let (used, _) = received("unusable");
        assert_eq!(used, [(0, 0), (1, 100)]);
        // A zero-length buffer (outside guest memory, too) in the middle
        // of a chain: the frame goes on past it, whole.
        let (used, buffers) = received("zero-length-buffer");
        assert_eq!(used, [(0, 3000)]);
        let frame: Vec<u8> = (12..3000).map(|i| (i % 251) as u8).collect();
        assert_eq!(buffers[0x1000..0x1000 + frame.len()], frame);
    }
}
