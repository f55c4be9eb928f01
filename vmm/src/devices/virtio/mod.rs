//! Virtio devices over the MMIO transport (virtio 1.x, "modern" only).
//!
//! A device implements [`VirtioDevice`]; [`mmio::MmioTransport`] exposes it to
//! the guest as a virtio-mmio register window and, when the driver sets
//! DRIVER_OK, hands the configured queues to [`VirtioDevice::activate`]. From
//! then on the device owns its queues and serves them from its own worker
//! thread, woken by the per-queue ioeventfds, and signals the guest through
//! [`Interrupt`].

pub mod block;
pub mod fs;
pub mod mmio;
pub mod net;
pub mod vsock;
mod worker_thread;

pub use worker_thread::WorkerSlot;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

/// Device IDs from the virtio specification, section 5.
pub mod device_type {
    pub const NET: u32 = 1;
    pub const BLOCK: u32 = 2;
    pub const VSOCK: u32 = 19;
    pub const FS: u32 = 26;
}

/// VIRTIO_F_VERSION_1: every hull device is a modern device.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Bits of the virtio-mmio InterruptStatus register.
pub const INTERRUPT_USED_RING: u32 = 1;
pub const INTERRUPT_CONFIG_CHANGE: u32 = 2;

/// The guest memory type shared by the VMM and all devices.
pub type GuestMemory = GuestMemoryMmap<()>;

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("device expected {expected} queues, driver configured {got}")]
    QueueCount { expected: usize, got: usize },
    #[error("cannot start device worker: {0}")]
    Worker(#[source] std::io::Error),
    #[error("device backend failed: {0}")]
    Backend(String),
}

/// Raises the device's interrupt line. Shared between the transport (which
/// reads and acknowledges InterruptStatus) and the device worker.
pub struct Interrupt {
    status: AtomicU32,
    irqfd: EventFd,
}

impl Interrupt {
    /// `irqfd` must already be registered with KVM for the device's GSI.
    pub fn new(irqfd: EventFd) -> Arc<Self> {
        Arc::new(Self {
            status: AtomicU32::new(0),
            irqfd,
        })
    }

    /// Sets `reason` (INTERRUPT_USED_RING or INTERRUPT_CONFIG_CHANGE) in
    /// InterruptStatus and injects the interrupt.
    pub fn trigger(&self, reason: u32) -> std::io::Result<()> {
        self.status.fetch_or(reason, Ordering::SeqCst);
        self.irqfd.write(1)
    }

    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// InterruptACK: clears the acknowledged bits.
    pub fn acknowledge(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// The eventfd KVM listens on, for registering it as an irqfd.
    pub fn irqfd(&self) -> &EventFd {
        &self.irqfd
    }
}

/// Copies the bytes of a device's configuration space `space` at `offset`
/// into `data`; a read that does not fit leaves `data` untouched.
pub fn read_config_space(space: &[u8], offset: u64, data: &mut [u8]) {
    let range = usize::try_from(offset)
        .ok()
        .and_then(|start| Some(start..start.checked_add(data.len())?));
    if let Some(source) = range.and_then(|range| space.get(range)) {
        data.copy_from_slice(source);
    }
}

/// A queue handed to a device at activation, with the eventfd the guest's
/// notifications for it arrive on (registered with KVM as an ioeventfd).
pub struct ActiveQueue {
    pub queue: Queue,
    pub notify: EventFd,
}

/// A virtio device's behaviour, independent of the transport.
pub trait VirtioDevice: Send {
    /// Device ID from the virtio spec (see [`device_type`]).
    fn device_type(&self) -> u32;

    /// Maximum size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];

    /// Feature bits the device offers, including [`VIRTIO_F_VERSION_1`].
    fn features(&self) -> u64;

    /// Reads from the device-specific configuration space. Out-of-range
    /// reads leave `data` untouched.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// Writes to the device-specific configuration space. Most devices
    /// ignore this.
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    /// Starts the device with the driver's negotiated `features` and its
    /// configured queues, to which the transport has already applied
    /// VIRTIO_RING_F_EVENT_IDX, serving them on `worker`'s thread. Called
    /// once, when the driver sets DRIVER_OK.
    fn activate(
        &mut self,
        mem: GuestMemory,
        features: u64,
        interrupt: Arc<Interrupt>,
        queues: Vec<ActiveQueue>,
        worker: WorkerSlot,
    ) -> Result<(), ActivateError>;
}
