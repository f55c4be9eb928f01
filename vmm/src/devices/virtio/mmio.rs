//! virtio-mmio transport, version 2 ("modern") register layout.
//!
//! [`MmioTransport`] is the guest-visible register window of one
//! [`VirtioDevice`]: it negotiates features, collects the driver's queue
//! configuration and, when the driver sets DRIVER_OK with every queue
//! valid, hands the queues to [`VirtioDevice::activate`] exactly once.
//!
//! Queue notifications normally never reach this code: each queue's
//! [`notify event`](MmioTransport::queue_notify_events) is registered with
//! KVM as an ioeventfd on QueueNotify. A notification that does arrive here
//! is forwarded to the same eventfd.

use std::sync::Arc;

use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
};
use virtio_bindings::virtio_mmio::*;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

use super::{ActiveQueue, GuestMemory, Interrupt, VirtioDevice, WorkerSlot, VIRTIO_F_VERSION_1};
use crate::devices::bus::BusDevice;

/// "virt" in little endian.
const MAGIC_VALUE: u32 = 0x7472_6976;
/// Version 2: the virtio 1.x register layout.
const MMIO_VERSION: u32 = 2;
/// "HULL" in little endian; the spec leaves the vendor ID to the device.
const VENDOR_ID: u32 = 0x4c4c_5548;

#[derive(Debug, thiserror::Error)]
pub enum MmioError {
    #[error(
        "device type {device_type}: invalid maximum size {max_size} for queue {index}: {source:?}"
    )]
    QueueSize {
        device_type: u32,
        index: usize,
        max_size: u16,
        source: virtio_queue::Error,
    },
    #[error("cannot create queue notification eventfd: {0}")]
    EventFd(#[source] std::io::Error),
}

/// The register window of one virtio device.
pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    mem: GuestMemory,
    interrupt: Arc<Interrupt>,
    queues: Vec<Queue>,
    queue_events: Vec<EventFd>,
    queue_select: u32,
    device_features_select: u32,
    driver_features_select: u32,
    driver_features: u64,
    status: u32,
    activated: bool,
    /// The device's worker thread until activation hands it over.
    worker: Option<WorkerSlot>,
}

impl MmioTransport {
    /// Wraps `device`, whose queues `worker` will serve. `interrupt`'s
    /// eventfd must be registered with KVM as the irqfd of the GSI the guest
    /// is told about.
    pub fn new(
        device: Box<dyn VirtioDevice>,
        mem: GuestMemory,
        interrupt: Arc<Interrupt>,
        worker: WorkerSlot,
    ) -> Result<Self, MmioError> {
        let device_type = device.device_type();
        let queues = device
            .queue_max_sizes()
            .iter()
            .enumerate()
            .map(|(index, &max_size)| {
                Queue::new(max_size).map_err(|source| MmioError::QueueSize {
                    device_type,
                    index,
                    max_size,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let queue_events = queues
            .iter()
            .map(|_| EventFd::new(libc::EFD_NONBLOCK).map_err(MmioError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            device,
            mem,
            interrupt,
            queues,
            queue_events,
            queue_select: 0,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            status: 0,
            activated: false,
            worker: Some(worker),
        })
    }

    /// Each queue's index and notification eventfd, to register as an
    /// ioeventfd on QueueNotify with the index as datamatch.
    pub fn queue_notify_events(&self) -> impl Iterator<Item = (u32, &EventFd)> {
        self.queue_events
            .iter()
            .enumerate()
            .map(|(index, event)| (index as u32, event))
    }

    /// The device's interrupt line.
    pub fn interrupt(&self) -> &Arc<Interrupt> {
        &self.interrupt
    }

    fn selected_queue(&self) -> Option<&Queue> {
        self.queues.get(self.queue_select as usize)
    }

    /// The selected queue, if the driver may still configure it.
    fn configurable_queue(&mut self) -> Option<&mut Queue> {
        if self.activated {
            return None;
        }
        self.queues
            .get_mut(self.queue_select as usize)
            .filter(|q| !q.ready())
    }

    fn read_register(&self, offset: u32) -> u32 {
        let features = self.device.features();
        match offset {
            VIRTIO_MMIO_MAGIC_VALUE => MAGIC_VALUE,
            VIRTIO_MMIO_VERSION => MMIO_VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.device.device_type(),
            VIRTIO_MMIO_VENDOR_ID => VENDOR_ID,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_select {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => self.selected_queue().map_or(0, |q| q.max_size().into()),
            VIRTIO_MMIO_QUEUE_READY => self.selected_queue().map_or(0, |q| q.ready().into()),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt.status(),
            VIRTIO_MMIO_STATUS => self.status,
            // No shared memory regions: their length reads as all ones.
            VIRTIO_MMIO_SHM_LEN_LOW | VIRTIO_MMIO_SHM_LEN_HIGH => u32::MAX,
            VIRTIO_MMIO_SHM_BASE_LOW | VIRTIO_MMIO_SHM_BASE_HIGH => u32::MAX,
            // Device configuration never changes behind the driver's back.
            VIRTIO_MMIO_CONFIG_GENERATION => 0,
            _ => {
                log::debug!("virtio-mmio: read of unknown register {offset:#x}");
                0
            }
        }
    }

    fn write_register(&mut self, offset: u32, value: u32) {
        match offset {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_select = value,
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_select = value,
            VIRTIO_MMIO_DRIVER_FEATURES => self.write_driver_features(value),
            VIRTIO_MMIO_QUEUE_SEL => self.queue_select = value,
            VIRTIO_MMIO_QUEUE_NUM => {
                if let Some(q) = self.configurable_queue() {
                    // Sizes that are not powers of two up to the maximum
                    // are refused by the queue; is_valid then fails.
                    q.set_size(value as u16);
                }
            }
            VIRTIO_MMIO_QUEUE_READY => {
                if !self.activated {
                    if let Some(q) = self.queues.get_mut(self.queue_select as usize) {
                        q.set_ready(value == 1);
                    }
                }
            }
            VIRTIO_MMIO_QUEUE_DESC_LOW => {
                self.with_queue(|q| q.set_desc_table_address(Some(value), None))
            }
            VIRTIO_MMIO_QUEUE_DESC_HIGH => {
                self.with_queue(|q| q.set_desc_table_address(None, Some(value)))
            }
            VIRTIO_MMIO_QUEUE_AVAIL_LOW => {
                self.with_queue(|q| q.set_avail_ring_address(Some(value), None))
            }
            VIRTIO_MMIO_QUEUE_AVAIL_HIGH => {
                self.with_queue(|q| q.set_avail_ring_address(None, Some(value)))
            }
            VIRTIO_MMIO_QUEUE_USED_LOW => {
                self.with_queue(|q| q.set_used_ring_address(Some(value), None))
            }
            VIRTIO_MMIO_QUEUE_USED_HIGH => {
                self.with_queue(|q| q.set_used_ring_address(None, Some(value)))
            }
            VIRTIO_MMIO_QUEUE_NOTIFY => {
                if let Some(event) = self.queue_events.get(value as usize) {
                    if let Err(e) = event.write(1) {
                        log::warn!(
                            "virtio-mmio: cannot forward notification of queue {value}: {e}"
                        );
                    }
                }
            }
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt.acknowledge(value),
            VIRTIO_MMIO_STATUS => self.write_status(value),
            VIRTIO_MMIO_SHM_SEL => {}
            _ => log::debug!("virtio-mmio: write of unknown register {offset:#x}"),
        }
    }

    fn with_queue(&mut self, set: impl FnOnce(&mut Queue)) {
        if let Some(q) = self.configurable_queue() {
            set(q);
        }
    }

    fn write_driver_features(&mut self, value: u32) {
        if self.status & VIRTIO_CONFIG_S_FEATURES_OK != 0 {
            log::debug!("virtio-mmio: driver features written after FEATURES_OK; ignored");
            return;
        }
        let value = u64::from(value);
        match self.driver_features_select {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | value,
            1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (value << 32),
            _ => {}
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let newly_set = value & !self.status;
        let mut status = value;
        if newly_set & VIRTIO_CONFIG_S_FEATURES_OK != 0 && !self.features_acceptable() {
            // Leaving FEATURES_OK clear tells the driver we refuse.
            status &= !VIRTIO_CONFIG_S_FEATURES_OK;
        }
        if newly_set & VIRTIO_CONFIG_S_DRIVER_OK != 0 && !self.activated {
            if status & VIRTIO_CONFIG_S_FEATURES_OK == 0 {
                log::warn!("virtio-mmio: DRIVER_OK without FEATURES_OK; device not started");
                status |= VIRTIO_CONFIG_S_NEEDS_RESET;
            } else if let Err(reason) = self.activate() {
                log::error!(
                    "virtio-mmio: cannot start device type {}: {reason}",
                    self.device.device_type()
                );
                status |= VIRTIO_CONFIG_S_NEEDS_RESET;
            }
        }
        self.status = status;
    }

    /// The driver accepted only offered features, including VERSION_1.
    fn features_acceptable(&self) -> bool {
        let offered = self.device.features();
        self.driver_features & !offered == 0 && self.driver_features & VIRTIO_F_VERSION_1 != 0
    }

    fn activate(&mut self) -> Result<(), String> {
        if let Some(index) = self.queues.iter().position(|q| !q.is_valid(&self.mem)) {
            return Err(format!("queue {index} is not ready or not valid"));
        }
        let event_idx = self.driver_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let queues = self
            .queues
            .iter()
            .zip(&self.queue_events)
            .map(|(queue, event)| {
                // The transport keeps its copy for register reads; the
                // device gets its own, built from the same state.
                let mut queue = Queue::try_from(queue.state())
                    .map_err(|e| format!("cannot copy queue: {e:?}"))?;
                queue.set_event_idx(event_idx);
                let notify = event
                    .try_clone()
                    .map_err(|e| format!("cannot clone queue eventfd: {e}"))?;
                Ok(ActiveQueue { queue, notify })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let worker = self
            .worker
            .take()
            .ok_or("the device's worker was lost in an earlier activation")?;
        self.device
            .activate(
                self.mem.clone(),
                self.driver_features,
                self.interrupt.clone(),
                queues,
                worker,
            )
            .map_err(|e| e.to_string())?;
        self.activated = true;
        Ok(())
    }

    /// Device reset (status 0). A started device keeps serving its queues
    /// until the VM ends: devices cannot be stopped and restarted.
    fn reset(&mut self) {
        if self.activated {
            log::warn!(
                "virtio-mmio: driver reset device type {} after it started; the device keeps running",
                self.device.device_type()
            );
            self.status = VIRTIO_CONFIG_S_NEEDS_RESET;
            return;
        }
        for queue in &mut self.queues {
            queue.reset();
        }
        self.queue_select = 0;
        self.device_features_select = 0;
        self.driver_features_select = 0;
        self.driver_features = 0;
        self.status = 0;
        self.interrupt.acknowledge(u32::MAX);
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= u64::from(VIRTIO_MMIO_CONFIG) {
            data.fill(0);
            self.device
                .read_config(offset - u64::from(VIRTIO_MMIO_CONFIG), data);
            return;
        }
        match (u32::try_from(offset), <&mut [u8; 4]>::try_from(data)) {
            (Ok(offset), Ok(bytes)) => *bytes = self.read_register(offset).to_le_bytes(),
            (_, Err(_)) => log::debug!("virtio-mmio: non 32-bit register read at {offset:#x}"),
            _ => {}
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= u64::from(VIRTIO_MMIO_CONFIG) {
            self.device
                .write_config(offset - u64::from(VIRTIO_MMIO_CONFIG), data);
            return;
        }
        match (u32::try_from(offset), <[u8; 4]>::try_from(data)) {
            (Ok(offset), Ok(bytes)) => self.write_register(offset, u32::from_le_bytes(bytes)),
            _ => log::debug!("virtio-mmio: non 32-bit register write at {offset:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use virtio_bindings::virtio_config::{VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER};
    use vm_memory::GuestAddress;

    use super::*;
    use crate::devices::virtio::{ActivateError, INTERRUPT_CONFIG_CHANGE, INTERRUPT_USED_RING};

    const FAKE_FEATURES: u64 = VIRTIO_F_VERSION_1 | 0b101;

    #[derive(Default)]
    struct Activation {
        count: usize,
        features: u64,
        queue_sizes: Vec<u16>,
        event_idx: Vec<bool>,
    }

    struct FakeDevice {
        activations: Arc<Mutex<Activation>>,
        config: Vec<u8>,
    }

    impl VirtioDevice for FakeDevice {
        fn device_type(&self) -> u32 {
            19
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &[256, 64]
        }
        fn features(&self) -> u64 {
            FAKE_FEATURES
        }
        fn read_config(&self, offset: u64, data: &mut [u8]) {
            let start = offset as usize;
            if let Some(src) = self.config.get(start..start + data.len()) {
                data.copy_from_slice(src);
            }
        }
        fn write_config(&mut self, offset: u64, data: &[u8]) {
            let start = offset as usize;
            if let Some(dst) = self.config.get_mut(start..start + data.len()) {
                dst.copy_from_slice(data);
            }
        }
        fn activate(
            &mut self,
            _mem: GuestMemory,
            features: u64,
            _interrupt: Arc<Interrupt>,
            queues: Vec<ActiveQueue>,
            _worker: WorkerSlot,
        ) -> Result<(), ActivateError> {
            let mut a = self.activations.lock().unwrap();
            a.count += 1;
            a.features = features;
            a.queue_sizes = queues.iter().map(|q| q.queue.size()).collect();
            a.event_idx = queues.iter().map(|q| q.queue.event_idx_enabled()).collect();
            Ok(())
        }
    }

    struct Fixture {
        transport: MmioTransport,
        activations: Arc<Mutex<Activation>>,
    }

    impl Fixture {
        fn new() -> Self {
            let activations = Arc::new(Mutex::new(Activation::default()));
            let device = FakeDevice {
                activations: activations.clone(),
                config: vec![1, 2, 3, 4, 5, 6, 7, 8],
            };
            let mem = GuestMemory::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
            let interrupt = Interrupt::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
            let transport = MmioTransport::new(
                Box::new(device),
                mem,
                interrupt,
                WorkerSlot::spawn("test", None).unwrap(),
            )
            .unwrap();
            Self {
                transport,
                activations,
            }
        }

        fn read(&mut self, offset: u32) -> u32 {
            let mut data = [0u8; 4];
            self.transport.read(u64::from(offset), &mut data);
            u32::from_le_bytes(data)
        }

        fn write(&mut self, offset: u32, value: u32) {
            self.transport
                .write(u64::from(offset), &value.to_le_bytes());
        }

        fn negotiate(&mut self, features: u64) {
            self.write(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
            self.write(
                VIRTIO_MMIO_STATUS,
                VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
            );
            self.write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
            self.write(VIRTIO_MMIO_DRIVER_FEATURES, features as u32);
            self.write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
            self.write(VIRTIO_MMIO_DRIVER_FEATURES, (features >> 32) as u32);
            self.write(
                VIRTIO_MMIO_STATUS,
                VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
            );
        }

        fn configure_queue(&mut self, index: u32, size: u32, base: u32) {
            self.write(VIRTIO_MMIO_QUEUE_SEL, index);
            self.write(VIRTIO_MMIO_QUEUE_NUM, size);
            self.write(VIRTIO_MMIO_QUEUE_DESC_LOW, base);
            self.write(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
            self.write(VIRTIO_MMIO_QUEUE_AVAIL_LOW, base + 0x1000);
            self.write(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
            self.write(VIRTIO_MMIO_QUEUE_USED_LOW, base + 0x2000);
            self.write(VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
            self.write(VIRTIO_MMIO_QUEUE_READY, 1);
        }

        fn driver_ok(&mut self) {
            let status = self.read(VIRTIO_MMIO_STATUS);
            self.write(VIRTIO_MMIO_STATUS, status | VIRTIO_CONFIG_S_DRIVER_OK);
        }
    }

    #[test]
    fn identifies_as_a_modern_device() {
        let mut f = Fixture::new();
        assert_eq!(f.read(VIRTIO_MMIO_MAGIC_VALUE), 0x7472_6976);
        assert_eq!(f.read(VIRTIO_MMIO_VERSION), 2);
        assert_eq!(f.read(VIRTIO_MMIO_DEVICE_ID), 19);
        assert_eq!(f.read(VIRTIO_MMIO_VENDOR_ID), VENDOR_ID);
    }

    #[test]
    fn device_features_are_paged_by_select() {
        let mut f = Fixture::new();
        f.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
        assert_eq!(f.read(VIRTIO_MMIO_DEVICE_FEATURES), 0b101);
        f.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
        assert_eq!(f.read(VIRTIO_MMIO_DEVICE_FEATURES), 1);
        f.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
        assert_eq!(f.read(VIRTIO_MMIO_DEVICE_FEATURES), 0);
    }

    #[test]
    fn features_ok_is_refused_for_unoffered_or_legacy_features() {
        let mut f = Fixture::new();
        f.negotiate(VIRTIO_F_VERSION_1 | 0b010);
        assert_eq!(f.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);

        let mut f = Fixture::new();
        f.negotiate(0b001);
        assert_eq!(f.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);

        let mut f = Fixture::new();
        f.negotiate(VIRTIO_F_VERSION_1 | 0b001);
        assert_ne!(f.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
    }

    #[test]
    fn queue_registers_configure_the_selected_queue() {
        let mut f = Fixture::new();
        f.write(VIRTIO_MMIO_QUEUE_SEL, 1);
        assert_eq!(f.read(VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
        f.write(VIRTIO_MMIO_QUEUE_SEL, 0);
        assert_eq!(f.read(VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
        f.write(VIRTIO_MMIO_QUEUE_SEL, 7);
        assert_eq!(f.read(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);

        f.configure_queue(1, 32, 0x4_0000);
        assert_eq!(f.read(VIRTIO_MMIO_QUEUE_READY), 1);
        let q = &f.transport.queues[1];
        assert_eq!(q.size(), 32);
        assert_eq!(q.desc_table(), 0x4_0000);
        assert_eq!(q.avail_ring(), 0x4_1000);
        assert_eq!(q.used_ring(), 0x4_2000);

        // A ready queue is frozen.
        f.write(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x8_0000);
        assert_eq!(f.transport.queues[1].desc_table(), 0x4_0000);
    }

    #[test]
    fn activates_once_on_driver_ok_with_all_queues_valid() {
        let mut f = Fixture::new();
        let features = VIRTIO_F_VERSION_1 | 0b100;
        f.negotiate(features);
        f.configure_queue(0, 128, 0x1_0000);
        f.driver_ok();
        // Queue 1 is not configured: no activation, device needs reset.
        assert_eq!(f.activations.lock().unwrap().count, 0);
        assert_ne!(f.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);

        let mut f = Fixture::new();
        f.negotiate(features);
        f.configure_queue(0, 128, 0x1_0000);
        f.configure_queue(1, 64, 0x2_0000);
        assert_eq!(f.activations.lock().unwrap().count, 0);
        f.driver_ok();
        f.driver_ok();
        let a = f.activations.lock().unwrap();
        assert_eq!(a.count, 1);
        assert_eq!(a.features, features);
        assert_eq!(a.queue_sizes, vec![128, 64]);
        assert_eq!(a.event_idx, vec![false, false]);
        drop(a);
        assert_eq!(f.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    }

    #[test]
    fn queues_outside_guest_memory_are_refused() {
        let mut f = Fixture::new();
        f.negotiate(VIRTIO_F_VERSION_1);
        f.configure_queue(0, 128, 0x1_0000);
        f.configure_queue(1, 64, 0x20_0000);
        f.driver_ok();
        assert_eq!(f.activations.lock().unwrap().count, 0);
    }

    #[test]
    fn interrupt_status_and_ack_go_through_the_interrupt() {
        let mut f = Fixture::new();
        f.transport
            .interrupt()
            .trigger(INTERRUPT_USED_RING)
            .unwrap();
        f.transport
            .interrupt()
            .trigger(INTERRUPT_CONFIG_CHANGE)
            .unwrap();
        assert_eq!(f.read(VIRTIO_MMIO_INTERRUPT_STATUS), 3);
        f.write(VIRTIO_MMIO_INTERRUPT_ACK, 1);
        assert_eq!(f.read(VIRTIO_MMIO_INTERRUPT_STATUS), 2);
        assert_eq!(f.transport.interrupt().irqfd().read().unwrap(), 2);
    }

    #[test]
    fn notify_writes_reach_the_queue_eventfd() {
        let mut f = Fixture::new();
        f.write(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
        f.write(VIRTIO_MMIO_QUEUE_NOTIFY, 9);
        let events: Vec<_> = f.transport.queue_notify_events().collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].0, 0);
        assert!(events[0].1.read().is_err());
        assert_eq!(events[1].1.read().unwrap(), 1);
    }

    #[test]
    fn config_space_is_delegated_to_the_device() {
        let mut f = Fixture::new();
        let mut data = [0u8; 2];
        f.transport.read(0x102, &mut data);
        assert_eq!(data, [3, 4]);
        f.transport.write(0x100, &[9]);
        let mut data = [0u8; 1];
        f.transport.read(0x100, &mut data);
        assert_eq!(data, [9]);
        // Beyond the device's config: zeros.
        let mut data = [0xffu8; 4];
        f.transport.read(0x200, &mut data);
        assert_eq!(data, [0; 4]);
    }

    #[test]
    fn bad_offsets_and_widths_are_harmless() {
        let mut f = Fixture::new();
        let mut byte = [0xaau8];
        f.transport.read(0, &mut byte);
        assert_eq!(byte, [0xaa]);
        f.transport.write(VIRTIO_MMIO_STATUS as u64, &[1]);
        assert_eq!(f.read(VIRTIO_MMIO_STATUS), 0);
        assert_eq!(f.read(0x0fc - 0x10), 0);
        f.write(0x0e0, 0xdead_beef);
        f.write(VIRTIO_MMIO_QUEUE_SEL, 99);
        f.write(VIRTIO_MMIO_QUEUE_NUM, 16);
        f.write(VIRTIO_MMIO_QUEUE_READY, 1);
        assert_eq!(f.read(VIRTIO_MMIO_QUEUE_READY), 0);
        assert_eq!(f.read(VIRTIO_MMIO_MAGIC_VALUE), MAGIC_VALUE);
    }

    #[test]
    fn reset_before_activation_clears_negotiation() {
        let mut f = Fixture::new();
        f.negotiate(VIRTIO_F_VERSION_1);
        f.configure_queue(0, 128, 0x1_0000);
        f.write(VIRTIO_MMIO_STATUS, 0);
        assert_eq!(f.read(VIRTIO_MMIO_STATUS), 0);
        f.write(VIRTIO_MMIO_QUEUE_SEL, 0);
        assert_eq!(f.read(VIRTIO_MMIO_QUEUE_READY), 0);
        assert_eq!(f.transport.driver_features, 0);
    }
}
