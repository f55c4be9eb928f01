//! The virtio-net device model: feature bits, configuration space, queues.

use std::mem::offset_of;
use std::sync::Arc;

use virtio_bindings::virtio_net::{
    virtio_net_config, VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_ECN,
    VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_HOST_ECN,
    VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF,
    VIRTIO_NET_F_STATUS, VIRTIO_NET_S_LINK_UP,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::QueueT;

use super::tap::{offload_flags, Tap, TapIo};
use super::worker;
use crate::devices::virtio::worker_thread::WorkerThread;
use crate::devices::virtio::{
    device_type, read_config_space, ActivateError, ActiveQueue, GuestMemory, Interrupt,
    VirtioDevice, WorkerSlot, VIRTIO_F_VERSION_1,
};

/// The RX queue (0) and the TX queue (1).
const QUEUE_MAX_SIZES: [u16; 2] = [256; 2];

/// The configuration space fields the offered features define: `mac` and
/// `status`.
const CONFIG_SPACE_LEN: usize = offset_of!(virtio_net_config, max_virtqueue_pairs);

/// Features offered on top of VIRTIO_F_VERSION_1: the ring features, the
/// MAC and link status, and every checksum and TCP segmentation offload
/// the tap passes through in both directions.
const FEATURE_BITS: [u32; 13] = [
    VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
    VIRTIO_NET_F_MAC,
    VIRTIO_NET_F_STATUS,
    VIRTIO_NET_F_CSUM,
    VIRTIO_NET_F_GUEST_CSUM,
    VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_GUEST_ECN,
    VIRTIO_NET_F_HOST_TSO4,
    VIRTIO_NET_F_HOST_TSO6,
    VIRTIO_NET_F_HOST_ECN,
    VIRTIO_NET_F_MRG_RXBUF,
];

/// A virtio-net device whose host side is `T`, normally a [`Tap`]. Its
/// link is always up.
pub struct Net<T: TapIo = Tap> {
    config_space: [u8; CONFIG_SPACE_LEN],
    /// Moves to the worker on activation.
    tap: Option<T>,
    /// Set once the driver has activated the device.
    worker: Option<WorkerThread>,
}

impl<T: TapIo> Net<T> {
    /// A device with the guest MAC address `mac`, bridged to `tap`.
    pub fn new(tap: T, mac: [u8; 6]) -> Self {
        let mut config_space = [0u8; CONFIG_SPACE_LEN];
        config_space[offset_of!(virtio_net_config, mac)..][..6].copy_from_slice(&mac);
        config_space[offset_of!(virtio_net_config, status)..][..2]
            .copy_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
        Net {
            config_space,
            tap: Some(tap),
            worker: None,
        }
    }
}

impl<T: TapIo> VirtioDevice for Net<T> {
    fn device_type(&self) -> u32 {
        device_type::NET
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_MAX_SIZES
    }

    fn features(&self) -> u64 {
        FEATURE_BITS
            .iter()
            .fold(VIRTIO_F_VERSION_1, |features, bit| features | 1 << bit)
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_space(&self.config_space, offset, data);
    }

    fn activate(
        &mut self,
        mem: GuestMemory,
        features: u64,
        interrupt: Arc<Interrupt>,
        queues: Vec<ActiveQueue>,
        worker: WorkerSlot,
    ) -> Result<(), ActivateError> {
        if self.worker.is_some() {
            return Err(ActivateError::Backend(
                "virtio-net device is already active".into(),
            ));
        }
        let [mut rx, mut tx]: [ActiveQueue; 2] =
            queues
                .try_into()
                .map_err(|queues: Vec<ActiveQueue>| ActivateError::QueueCount {
                    expected: QUEUE_MAX_SIZES.len(),
                    got: queues.len(),
                })?;
        let mut tap = self.tap.take().ok_or_else(|| {
            ActivateError::Backend("the tap was lost when the worker failed to start".into())
        })?;
        let offload = offload_flags(features);
        if let Err(e) = tap.set_offload(offload) {
            self.tap = Some(tap);
            return Err(ActivateError::Backend(format!(
                "cannot set the tap's offloads to {offload:#x}: {e}"
            )));
        }
        let event_idx = features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        rx.queue.set_event_idx(event_idx);
        tx.queue.set_event_idx(event_idx);
        let mergeable = features & (1 << VIRTIO_NET_F_MRG_RXBUF) != 0;
        let worker = worker::spawn(mem, interrupt, rx, tx, tap, mergeable, worker)
            .map_err(ActivateError::Worker)?;
        self.worker = Some(worker);
        Ok(())
    }
}
