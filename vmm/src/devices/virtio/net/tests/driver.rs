//! A mock virtio-net driver: guest memory with the RX and TX split queues,
//! an activated [`Net`] on a [`FakeTap`] whose worker serves them, and
//! helpers to post buffers, send and receive frames on both sides.
//!
//! Like a Linux driver, it notifies the device only when the device asks
//! to be notified (VIRTIO_RING_F_EVENT_IDX's `avail_event`, or the used
//! ring's NO_NOTIFY flag), so a device that forgets to ask hangs a test.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virtio_bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, VRING_USED_F_NO_NOTIFY,
};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::FakeTap;
use crate::devices::virtio::net::Net;
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, VirtioDevice};

pub const MEM_SIZE: u64 = 0x400_0000;
pub const QUEUE_SIZE: u16 = 256;
const RX_QUEUE_ADDR: u64 = 0;
const TX_QUEUE_ADDR: u64 = 0x1_0000;
/// Buffers are bump-allocated from here.
const BUFFERS_START: u64 = 0x10_0000;
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long "nothing happens" is watched for.
pub const QUIET: Duration = Duration::from_millis(200);

/// One descriptor as the driver writes it.
#[derive(Clone, Copy, Debug)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
}

impl Desc {
    pub fn readable(addr: u64, len: u32) -> Self {
        Desc {
            addr,
            len,
            flags: 0,
        }
    }

    pub fn writable(addr: u64, len: u32) -> Self {
        Desc {
            addr,
            len,
            flags: VRING_DESC_F_WRITE as u16,
        }
    }
}

/// The device's answer to one chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Used {
    pub head: u32,
    pub len: u32,
}

/// One split queue, from the driver's side.
pub struct DriverQueue {
    mem: &'static GuestMemory,
    mock: MockSplitQueue<'static, GuestMemory>,
    notify: EventFd,
    event_idx: bool,
    next_desc: u16,
    used_seen: u16,
}

impl DriverQueue {
    fn new(mem: &'static GuestMemory, base: u64, event_idx: bool) -> (Self, ActiveQueue) {
        let mock = MockSplitQueue::create(mem, GuestAddress(base), QUEUE_SIZE);
        let notify = EventFd::new(EFD_NONBLOCK).unwrap();
        let active = ActiveQueue {
            queue: mock.create_queue::<Queue>().unwrap(),
            notify: notify.try_clone().unwrap(),
        };
        let queue = DriverQueue {
            mem,
            mock,
            notify,
            event_idx,
            next_desc: 0,
            used_seen: 0,
        };
        (queue, active)
    }

    /// Writes `descs` as one chain in consecutive table slots, linked with
    /// NEXT, and returns the head index.
    pub fn write_chain(&mut self, descs: &[Desc]) -> u16 {
        let len = descs.len() as u16;
        assert!(len <= QUEUE_SIZE);
        // Slots are reused from the start once the table end is reached;
        // chains posted earlier have been returned by then.
        let head = match self.next_desc {
            next if next + len <= QUEUE_SIZE => next,
            _ => 0,
        };
        for (i, desc) in descs.iter().enumerate() {
            let index = head + i as u16;
            let last = i + 1 == descs.len();
            let (flags, next) = if last {
                (desc.flags, 0)
            } else {
                (desc.flags | VRING_DESC_F_NEXT as u16, index + 1)
            };
            let raw = RawDescriptor::from(Descriptor::new(desc.addr, desc.len, flags, next));
            self.mock.desc_table().store(index, raw).unwrap();
        }
        self.next_desc = head + len;
        head
    }

    /// Puts `heads` on the available ring and notifies the device if it
    /// asked to be.
    pub fn post(&self, heads: &[u16]) {
        let avail = self.mock.avail();
        let old = avail.idx().load();
        for (i, &head) in heads.iter().enumerate() {
            let slot = old.wrapping_add(i as u16) % QUEUE_SIZE;
            avail.ring().ref_at(usize::from(slot)).unwrap().store(head);
        }
        let new = old.wrapping_add(heads.len() as u16);
        fence(Ordering::SeqCst);
        avail.idx().store(new);
        // The index must be visible before the device's wishes are read.
        fence(Ordering::SeqCst);
        if self.device_wants_notification(old, new) {
            self.notify.write(1).unwrap();
        }
    }

    /// Posts `descs` as one chain and returns its head.
    pub fn add(&mut self, descs: &[Desc]) -> u16 {
        let head = self.write_chain(descs);
        self.post(&[head]);
        head
    }

    fn device_wants_notification(&self, old: u16, new: u16) -> bool {
        let used = self.mock.used_addr().0;
        if self.event_idx {
            // `avail_event` follows the used ring's elements.
            let event: u16 = self
                .mem
                .read_obj(GuestAddress(used + 4 + 8 * u64::from(QUEUE_SIZE)))
                .unwrap();
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            let flags: u16 = self.mem.read_obj(GuestAddress(used)).unwrap();
            flags & VRING_USED_F_NO_NOTIFY as u16 == 0
        }
    }

    /// How many chains the device has returned and [`Self::wait_used`]
    /// has not collected yet.
    pub fn used_pending(&self) -> u16 {
        self.mock.used().idx().load().wrapping_sub(self.used_seen)
    }

    /// Waits until the device has returned `count` more chains and returns
    /// them in order.
    pub fn wait_used(&mut self, count: u16) -> Vec<Used> {
        let deadline = Instant::now() + TIMEOUT;
        while self.used_pending() < count {
            assert!(
                Instant::now() < deadline,
                "device returned {} of {count} chains",
                self.used_pending()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let used = self.mock.used();
        let elems = (0..count)
            .map(|i| {
                let slot = self.used_seen.wrapping_add(i) % QUEUE_SIZE;
                let elem = used.ring().ref_at(usize::from(slot)).unwrap().load();
                Used {
                    head: elem.id(),
                    len: elem.len(),
                }
            })
            .collect();
        self.used_seen = self.used_seen.wrapping_add(count);
        elems
    }

    /// Sets `used_event` (VIRTIO_RING_F_EVENT_IDX): interrupt me once the
    /// used index passes `idx`.
    pub fn set_used_event(&self, idx: u16) {
        let addr = self.mock.avail_addr().0 + 4 + 2 * u64::from(QUEUE_SIZE);
        self.mem.write_obj(idx, GuestAddress(addr)).unwrap();
    }
}

pub struct Harness {
    mem: &'static GuestMemory,
    pub rx: DriverQueue,
    pub tx: DriverQueue,
    interrupt: Arc<Interrupt>,
    /// The host's end of the fake tap.
    host: UnixDatagram,
    offloads: Arc<Mutex<Vec<u32>>>,
    next_buffer: u64,
    // Dropped last: stops the worker while the memory it uses still exists.
    _device: Net<FakeTap>,
}

impl Harness {
    /// Activates a device on a fake tap, negotiating `features`.
    pub fn new(features: u64) -> Harness {
        let (tap, host, offloads) = FakeTap::new();
        let mut device = Net::new(tap, [2, 0, 0, 0, 0, 1]);
        // The mock queues borrow the memory for the whole test; leaking one
        // mapping per test keeps the borrow simple.
        let mem: &'static GuestMemory = Box::leak(Box::new(
            GuestMemory::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap(),
        ));
        let event_idx = features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let (rx, rx_active) = DriverQueue::new(mem, RX_QUEUE_ADDR, event_idx);
        let (tx, tx_active) = DriverQueue::new(mem, TX_QUEUE_ADDR, event_idx);
        let interrupt = Interrupt::new(EventFd::new(EFD_NONBLOCK).unwrap());
        device
            .activate(
                mem.clone(),
                features,
                Arc::clone(&interrupt),
                vec![rx_active, tx_active],
                crate::devices::virtio::WorkerSlot::spawn("test", None).unwrap(),
            )
            .expect("activate");
        Harness {
            mem,
            rx,
            tx,
            interrupt,
            host,
            offloads,
            next_buffer: BUFFERS_START,
            _device: device,
        }
    }

    /// Allocates a guest buffer of `len` bytes, each set to `fill`.
    pub fn buffer(&mut self, len: u32, fill: u8) -> u64 {
        let addr = self.next_buffer;
        self.next_buffer = (addr + u64::from(len) + 0xf) & !0xf;
        assert!(self.next_buffer < MEM_SIZE, "test buffers exhausted");
        self.mem
            .write_slice(&vec![fill; len as usize], GuestAddress(addr))
            .unwrap();
        addr
    }

    /// Copies `data` into a fresh guest buffer and returns its address.
    pub fn buffer_with(&mut self, data: &[u8]) -> u64 {
        let addr = self.buffer(data.len() as u32, 0);
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
        addr
    }

    pub fn read_guest(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut data = vec![0; len];
        self.mem.read_slice(&mut data, GuestAddress(addr)).unwrap();
        data
    }

    /// Posts `descs` on TX and waits for the chain to come back.
    pub fn transmit(&mut self, descs: &[Desc]) -> Used {
        let head = self.tx.add(descs);
        let used = self.tx.wait_used(1).remove(0);
        assert_eq!(used.head, u32::from(head));
        used
    }

    /// Transmits `frame` from one readable buffer.
    pub fn transmit_frame(&mut self, frame: &[u8]) -> Used {
        let addr = self.buffer_with(frame);
        self.transmit(&[Desc::readable(addr, frame.len() as u32)])
    }

    /// Posts `count` RX chains of one `len`-byte writable buffer each and
    /// returns their heads and addresses.
    pub fn post_rx_buffers(&mut self, count: usize, len: u32) -> Vec<(u16, u64)> {
        let buffers: Vec<(u16, u64)> = (0..count)
            .map(|_| {
                let addr = self.buffer(len, 0xaa);
                (self.rx.write_chain(&[Desc::writable(addr, len)]), addr)
            })
            .collect();
        let heads: Vec<u16> = buffers.iter().map(|&(head, _)| head).collect();
        self.rx.post(&heads);
        buffers
    }

    /// The host sends `frame` to the guest.
    pub fn tap_send(&self, frame: &[u8]) {
        self.host.send(frame).unwrap();
    }

    /// The next frame the device wrote to the tap.
    pub fn tap_recv(&self) -> Vec<u8> {
        self.host.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = vec![0; 1 << 17];
        let len = self.host.recv(&mut buf).expect("a frame on the tap");
        buf.truncate(len);
        buf
    }

    /// Every frame waiting on the tap, without waiting for more.
    pub fn tap_drain(&self) -> Vec<Vec<u8>> {
        self.host.set_nonblocking(true).unwrap();
        let mut frames = Vec::new();
        let mut buf = vec![0; 1 << 17];
        loop {
            match self.host.recv(&mut buf) {
                Ok(len) => frames.push(buf[..len].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading the tap: {e}"),
            }
        }
        self.host.set_nonblocking(false).unwrap();
        frames
    }

    /// The offload flags the device set on the tap, in order.
    pub fn offloads(&self) -> Vec<u32> {
        self.offloads.lock().unwrap().clone()
    }

    /// Interrupts raised since the last call, without waiting.
    pub fn interrupts(&self) -> u64 {
        self.interrupt.irqfd().read().unwrap_or(0)
    }
}
