//! A mock virtio-fs driver: guest memory with two split queues, an
//! activated [`Fs`] whose worker serves them, and helpers to post descriptor
//! chains and collect the used elements.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use virtio_bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::devices::virtio::fs::Fs;
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, VirtioDevice};

pub const HIPRIO: usize = 0;
pub const REQUEST: usize = 1;

pub const MEM_SIZE: u64 = 0x200_0000;
const QUEUE_SIZE: u16 = 64;
const QUEUE_ADDRS: [u64; 2] = [0x0, 0x1_0000];
/// Request and reply buffers are bump-allocated from here.
const BUFFERS_START: u64 = 0x10_0000;

const TIMEOUT: Duration = Duration::from_secs(10);

/// One descriptor as the driver writes it.
#[derive(Clone, Copy)]
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
pub struct Used {
    pub head: u32,
    pub len: u32,
}

pub struct Driver {
    mem: &'static GuestMemory,
    queues: [MockSplitQueue<'static, GuestMemory>; 2],
    notify: [EventFd; 2],
    interrupt: Arc<Interrupt>,
    /// Next free descriptor table slot, per queue.
    next_desc: [u16; 2],
    next_buffer: u64,
    /// Used elements already collected, per queue.
    used_seen: [u16; 2],
    // Dropped last: stops the worker while the memory it uses still exists.
    device: Fs,
}

impl Driver {
    /// Activates a device sharing `dir`, negotiating `features`.
    pub fn new(dir: &Path, read_only: bool, features: u64) -> Driver {
        Self::with_device(
            Fs::new("hullroot", dir, read_only).expect("create device"),
            features,
        )
    }

    /// Activates `device`, negotiating `features`.
    pub fn with_device(mut device: Fs, features: u64) -> Driver {
        // The mock queues borrow the memory for the whole test; leaking one
        // small mapping per test keeps the borrow simple.
        let mem: &'static GuestMemory = Box::leak(Box::new(
            GuestMemory::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap(),
        ));
        let queues =
            QUEUE_ADDRS.map(|addr| MockSplitQueue::create(mem, GuestAddress(addr), QUEUE_SIZE));
        let notify = [(); 2].map(|_| EventFd::new(EFD_NONBLOCK).unwrap());
        let interrupt = Interrupt::new(EventFd::new(EFD_NONBLOCK).unwrap());
        // As the transport does: the device gets its queues with
        // VIRTIO_RING_F_EVENT_IDX already applied.
        let event_idx = features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let active = queues
            .iter()
            .zip(&notify)
            .map(|(mock, fd)| {
                let mut queue = mock.create_queue::<Queue>().unwrap();
                queue.set_event_idx(event_idx);
                ActiveQueue {
                    queue,
                    notify: fd.try_clone().unwrap(),
                }
            })
            .collect();
        device
            .activate(
                mem.clone(),
                features,
                Arc::clone(&interrupt),
                active,
                crate::devices::virtio::WorkerSlot::spawn("test", None).unwrap(),
            )
            .expect("activate");
        Driver {
            mem,
            queues,
            notify,
            interrupt,
            next_desc: [0; 2],
            next_buffer: BUFFERS_START,
            used_seen: [0; 2],
            device,
        }
    }

    pub fn mem(&self) -> &GuestMemory {
        self.mem
    }

    /// Copies `data` into a fresh guest buffer and returns its address.
    pub fn buffer_with(&mut self, data: &[u8]) -> u64 {
        let addr = self.buffer(data.len() as u32);
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
        addr
    }

    /// Allocates a zeroed guest buffer of `len` bytes.
    pub fn buffer(&mut self, len: u32) -> u64 {
        let addr = self.next_buffer;
        self.next_buffer = (addr + u64::from(len) + 0xf) & !0xf;
        assert!(self.next_buffer < MEM_SIZE, "test buffers exhausted");
        self.mem
            .write_slice(&vec![0; len as usize], GuestAddress(addr))
            .unwrap();
        addr
    }

    /// Writes `descs` as one chain in consecutive table slots, linked with
    /// NEXT, and returns the head index. Posting is separate so tests can
    /// post several chains, or a bogus head, before notifying.
    pub fn write_chain(&mut self, queue: usize, descs: &[Desc]) -> u16 {
        let len = descs.len() as u16;
        assert!(len <= QUEUE_SIZE);
        // Slots are reused from the start once the table end is reached;
        // chains posted earlier have been returned by then.
        let head = match self.next_desc[queue] {
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
        self.write_descs(queue, head, &chain);
        self.next_desc[queue] = head + len;
        head
    }

    /// Writes `descs` verbatim at table slots `first..`.
    pub fn write_descs(&self, queue: usize, first: u16, descs: &[Desc]) {
        for (i, desc) in descs.iter().enumerate() {
            let raw =
                RawDescriptor::from(Descriptor::new(desc.addr, desc.len, desc.flags, desc.next));
            self.queues[queue]
                .desc_table()
                .store(first + i as u16, raw)
                .unwrap();
        }
    }

    /// Puts `head` on the available ring.
    pub fn post(&self, queue: usize, head: u16) {
        let avail = self.queues[queue].avail();
        let idx = avail.idx().load();
        avail
            .ring()
            .ref_at(usize::from(idx % QUEUE_SIZE))
            .unwrap()
            .store(head);
        avail.idx().store(idx.wrapping_add(1));
    }

    /// Sets the available index directly, as a buggy or hostile driver might.
    pub fn set_avail_idx(&self, queue: usize, idx: u16) {
        self.queues[queue].avail().idx().store(idx);
    }

    /// Sets `used_event` (VIRTIO_RING_F_EVENT_IDX): interrupt me once the
    /// used index passes `idx`.
    pub fn set_used_event(&self, queue: usize, idx: u16) {
        let addr = self.queues[queue].avail_addr().0 + 4 + 2 * u64::from(QUEUE_SIZE);
        self.mem.write_obj(idx, GuestAddress(addr)).unwrap();
    }

    pub fn kick(&self, queue: usize) {
        self.notify[queue].write(1).unwrap();
    }

    /// Waits until the device has returned `count` more chains on `queue`
    /// and returns them in order.
    pub fn wait_used(&mut self, queue: usize, count: u16) -> Vec<Used> {
        let used = self.queues[queue].used();
        let target = self.used_seen[queue].wrapping_add(count);
        let deadline = Instant::now() + TIMEOUT;
        while used.idx().load() != target {
            assert!(
                Instant::now() < deadline,
                "queue {queue}: device returned {} of {count} chains",
                used.idx().load().wrapping_sub(self.used_seen[queue])
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let elems = (0..count)
            .map(|i| {
                let slot = self.used_seen[queue].wrapping_add(i) % QUEUE_SIZE;
                let elem = used.ring().ref_at(usize::from(slot)).unwrap().load();
                Used {
                    head: elem.id(),
                    len: elem.len(),
                }
            })
            .collect();
        self.used_seen[queue] = target;
        elems
    }

    /// The used index as the device last published it.
    pub fn used_idx(&self, queue: usize) -> u16 {
        self.queues[queue].used().idx().load()
    }

    /// Waits for an interrupt and returns how many were raised since the
    /// last call.
    pub fn wait_interrupts(&self) -> u64 {
        let mut fd = libc::pollfd {
            fd: self.interrupt.irqfd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fd` is a valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut fd, 1, TIMEOUT.as_millis() as i32) };
        assert_eq!(ready, 1, "no interrupt within {TIMEOUT:?}");
        self.interrupt.irqfd().read().unwrap()
    }

    /// Interrupts raised since the last read, without waiting.
    pub fn pending_interrupts(&self) -> u64 {
        self.interrupt.irqfd().read().unwrap_or(0)
    }

    pub fn device_mut(&mut self) -> &mut Fs {
        &mut self.device
    }
}
