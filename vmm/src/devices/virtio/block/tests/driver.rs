//! A mock virtio-blk driver: guest memory with one split queue, an
//! activated [`Block`] whose worker serves it, and helpers to post
//! requests and collect their answers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use virtio_bindings::virtio_blk::{VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::devices::virtio::block::Block;
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, VirtioDevice};

pub const MEM_SIZE: u64 = 0x400_0000;
pub const QUEUE_SIZE: u16 = 256;
/// Request buffers are bump-allocated from here.
const BUFFERS_START: u64 = 0x10_0000;
const TIMEOUT: Duration = Duration::from_secs(10);
/// What status buffers hold before the device answers.
pub const NO_STATUS: u8 = 0xff;

/// One descriptor as the driver writes it.
#[derive(Clone, Copy, Debug)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

impl Desc {
    pub fn readable(addr: u64, len: u32) -> Self {
        Desc {
            addr,
            len,
            flags: 0,
            next: 0,
        }
    }

    pub fn writable(addr: u64, len: u32) -> Self {
        Desc {
            addr,
            len,
            flags: VRING_DESC_F_WRITE as u16,
            next: 0,
        }
    }
}

/// The device's answer to one chain.
#[derive(Debug)]
pub struct Used {
    pub head: u32,
    pub len: u32,
}

pub struct Driver {
    mem: &'static GuestMemory,
    queue: MockSplitQueue<'static, GuestMemory>,
    notify: EventFd,
    interrupt: Arc<Interrupt>,
    next_desc: u16,
    next_buffer: u64,
    used_seen: u16,
    // Dropped last: stops the worker while the memory it uses still exists.
    _device: Block,
}

impl Driver {
    /// Activates a device on the image at `path`, negotiating `features`.
    pub fn new(path: &Path, read_only: bool, features: u64) -> Driver {
        let mut device = Block::new(path, read_only).expect("create device");
        // The mock queue borrows the memory for the whole test; leaking one
        // mapping per test keeps the borrow simple.
        let mem: &'static GuestMemory = Box::leak(Box::new(
            GuestMemory::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap(),
        ));
        let queue = MockSplitQueue::create(mem, GuestAddress(0), QUEUE_SIZE);
        let notify = EventFd::new(EFD_NONBLOCK).unwrap();
        let interrupt = Interrupt::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let active = ActiveQueue {
            queue: queue.create_queue::<Queue>().unwrap(),
            notify: notify.try_clone().unwrap(),
        };
        device
            .activate(
                mem.clone(),
                features,
                Arc::clone(&interrupt),
                vec![active],
                crate::devices::virtio::WorkerSlot::spawn("test", None).unwrap(),
            )
            .expect("activate");
        Driver {
            mem,
            queue,
            notify,
            interrupt,
            next_desc: 0,
            next_buffer: BUFFERS_START,
            used_seen: 0,
            _device: device,
        }
    }

    pub fn mem(&self) -> &GuestMemory {
        self.mem
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

    /// A readable request header.
    pub fn header(&mut self, request_type: u32, sector: u64) -> Desc {
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(&request_type.to_le_bytes());
        header[8..].copy_from_slice(&sector.to_le_bytes());
        Desc::readable(self.buffer_with(&header), 16)
    }

    /// A writable one-byte status buffer holding [`NO_STATUS`].
    pub fn status(&mut self) -> Desc {
        Desc::writable(self.buffer(1, NO_STATUS), 1)
    }

    /// The status byte the device wrote into `status`.
    pub fn status_of(&self, status: Desc) -> u8 {
        self.mem
            .read_obj(GuestAddress(status.addr + u64::from(status.len) - 1))
            .unwrap()
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
        let chain: Vec<Desc> = descs
            .iter()
            .enumerate()
            .map(|(i, desc)| {
                let last = i + 1 == descs.len();
                Desc {
                    flags: if last {
                        desc.flags
                    } else {
                        desc.flags | VRING_DESC_F_NEXT as u16
                    },
                    next: if last { 0 } else { head + i as u16 + 1 },
                    ..*desc
                }
            })
            .collect();
        self.write_descs(head, &chain);
        self.next_desc = head + len;
        head
    }

    /// Writes `descs` verbatim at table slots `first..`.
    pub fn write_descs(&self, first: u16, descs: &[Desc]) {
        for (i, desc) in descs.iter().enumerate() {
            let raw =
                RawDescriptor::from(Descriptor::new(desc.addr, desc.len, desc.flags, desc.next));
            self.queue
                .desc_table()
                .store(first + i as u16, raw)
                .unwrap();
        }
    }

    /// Puts `head` on the available ring.
    pub fn post(&self, head: u16) {
        let avail = self.queue.avail();
        let idx = avail.idx().load();
        avail
            .ring()
            .ref_at(usize::from(idx % QUEUE_SIZE))
            .unwrap()
            .store(head);
        avail.idx().store(idx.wrapping_add(1));
    }

    pub fn kick(&self) {
        self.notify.write(1).unwrap();
    }

    /// Waits until the device has returned `count` more chains and returns
    /// them in order.
    pub fn wait_used(&mut self, count: u16) -> Vec<Used> {
        let used = self.queue.used();
        let target = self.used_seen.wrapping_add(count);
        let deadline = Instant::now() + TIMEOUT;
        while used.idx().load() != target {
            assert!(
                Instant::now() < deadline,
                "device returned {} of {count} chains",
                used.idx().load().wrapping_sub(self.used_seen)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
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
        self.used_seen = target;
        elems
    }

    /// Posts `descs` as one chain, kicks, and waits for the answer.
    pub fn submit(&mut self, descs: &[Desc]) -> Used {
        let head = self.write_chain(descs);
        self.post(head);
        self.kick();
        let used = self.wait_used(1).remove(0);
        assert_eq!(used.head, u32::from(head));
        used
    }

    /// OUT of `data` at `sector`; returns the status.
    pub fn write_sectors(&mut self, sector: u64, data: &[u8]) -> u8 {
        let header = self.header(VIRTIO_BLK_T_OUT, sector);
        let data = Desc::readable(self.buffer_with(data), data.len() as u32);
        let status = self.status();
        let used = self.submit(&[header, data, status]);
        assert_eq!(used.len, 1, "OUT writes only the status byte");
        self.status_of(status)
    }

    /// IN of `len` bytes at `sector`, into one buffer; returns the status
    /// and the buffer's contents.
    pub fn read_sectors(&mut self, sector: u64, len: u32) -> (u8, Vec<u8>) {
        let header = self.header(VIRTIO_BLK_T_IN, sector);
        let data = Desc::writable(self.buffer(len, 0xee), len);
        let status = self.status();
        let used = self.submit(&[header, data, status]);
        let status_code = self.status_of(status);
        if status_code == 0 {
            assert_eq!(used.len, len + 1);
        }
        (status_code, self.read_guest(data.addr, len as usize))
    }

    /// GET_ID into a 20-byte buffer: the status and the buffer.
    pub fn get_id(&mut self) -> (u8, Vec<u8>) {
        let header = self.header(VIRTIO_BLK_T_GET_ID, 0);
        let data = Desc::writable(self.buffer(20, 0xee), 20);
        let status = self.status();
        let used = self.submit(&[header, data, status]);
        assert_eq!(used.len, 21);
        (self.status_of(status), self.read_guest(data.addr, 20))
    }

    /// Interrupts raised since the last call, without waiting.
    pub fn interrupts(&self) -> u64 {
        self.interrupt.irqfd().read().unwrap_or(0)
    }

    /// Sets `used_event` (VIRTIO_RING_F_EVENT_IDX): interrupt me once the
    /// used index passes `idx`.
    pub fn set_used_event(&self, idx: u16) {
        let addr = self.queue.avail_addr().0 + 4 + 2 * u64::from(QUEUE_SIZE);
        self.mem.write_obj(idx, GuestAddress(addr)).unwrap();
    }
}
