//! The device model: identity, configuration space, features, activation,
//! and the tap offloads that follow the driver's features.

use std::sync::Arc;

use virtio_bindings::virtio_net::*;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::driver::Harness;
use super::FakeTap;
use crate::devices::virtio::net::Net;
use crate::devices::virtio::{
    device_type, ActivateError, ActiveQueue, GuestMemory, Interrupt, VirtioDevice,
    VIRTIO_F_VERSION_1,
};

const MAC: [u8; 6] = [0x02, 0x68, 0x75, 0x6c, 0x6c, 0x2a];

fn bit(feature: u32) -> u64 {
    1 << feature
}

#[test]
fn config_space_holds_the_mac_and_link_up() {
    let device = Net::new(FakeTap::new().0, MAC);
    assert_eq!(device.device_type(), device_type::NET);
    assert_eq!(device.queue_max_sizes(), &[256, 256]);

    let mut config = [0u8; 8];
    device.read_config(0, &mut config);
    assert_eq!(config[..6], MAC);
    assert_eq!(
        u16::from_le_bytes([config[6], config[7]]),
        VIRTIO_NET_S_LINK_UP as u16
    );
    let mut byte = [0u8; 1];
    device.read_config(5, &mut byte);
    assert_eq!(byte, [0x2a]);
    // Past `status`, and across its end, reads leave the buffer alone.
    let mut untouched = [0xeeu8; 2];
    device.read_config(8, &mut untouched);
    device.read_config(7, &mut untouched);
    device.read_config(u64::MAX, &mut untouched);
    assert_eq!(untouched, [0xee; 2]);
}

#[test]
fn features_offer_offloads_mergeable_buffers_and_the_ring_features() {
    let device = Net::new(FakeTap::new().0, MAC);
    let expected = VIRTIO_F_VERSION_1
        | bit(VIRTIO_RING_F_EVENT_IDX)
        | bit(VIRTIO_RING_F_INDIRECT_DESC)
        | bit(VIRTIO_NET_F_MAC)
        | bit(VIRTIO_NET_F_STATUS)
        | bit(VIRTIO_NET_F_CSUM)
        | bit(VIRTIO_NET_F_GUEST_CSUM)
        | bit(VIRTIO_NET_F_GUEST_TSO4)
        | bit(VIRTIO_NET_F_GUEST_TSO6)
        | bit(VIRTIO_NET_F_GUEST_ECN)
        | bit(VIRTIO_NET_F_HOST_TSO4)
        | bit(VIRTIO_NET_F_HOST_TSO6)
        | bit(VIRTIO_NET_F_HOST_ECN)
        | bit(VIRTIO_NET_F_MRG_RXBUF);
    assert_eq!(device.features(), expected);
}

#[test]
fn tap_offloads_follow_the_acked_features() {
    let csum = bit(VIRTIO_NET_F_GUEST_CSUM);
    let tso4 = bit(VIRTIO_NET_F_GUEST_TSO4);
    let tso6 = bit(VIRTIO_NET_F_GUEST_TSO6);
    let ecn = bit(VIRTIO_NET_F_GUEST_ECN);
    let host = bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_HOST_TSO4) | bit(VIRTIO_NET_F_HOST_ECN);
    let cases = [
        (0, 0),
        (host, 0),
        (csum, libc::TUN_F_CSUM),
        (csum | tso4, libc::TUN_F_CSUM | libc::TUN_F_TSO4),
        (csum | tso6 | host, libc::TUN_F_CSUM | libc::TUN_F_TSO6),
        (
            csum | tso4 | tso6 | ecn,
            libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN,
        ),
        // TSO needs checksum offload, ECN needs TSO.
        (tso4 | tso6 | ecn, 0),
        (csum | ecn, libc::TUN_F_CSUM),
    ];
    for (features, flags) in cases {
        let h = Harness::new(VIRTIO_F_VERSION_1 | features);
        assert_eq!(h.offloads(), vec![flags], "features {features:#x}");
    }
}

#[test]
fn activation_needs_both_queues_and_happens_once() {
    let (tap, _host, offloads) = FakeTap::new();
    let mut device = Net::new(tap, MAC);
    let mem = GuestMemory::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let interrupt = Interrupt::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let queues = |count: u64| -> Vec<ActiveQueue> {
        (0..count)
            .map(|i| ActiveQueue {
                queue: MockSplitQueue::create(&mem, GuestAddress(i * 0x1_0000), 256)
                    .create_queue::<Queue>()
                    .unwrap(),
                notify: EventFd::new(EFD_NONBLOCK).unwrap(),
            })
            .collect()
    };
    let activate = |device: &mut Net<FakeTap>, count| {
        device.activate(
            mem.clone(),
            VIRTIO_F_VERSION_1,
            Arc::clone(&interrupt),
            queues(count),
            crate::devices::virtio::WorkerSlot::spawn("test", None).unwrap(),
        )
    };
    assert!(matches!(
        activate(&mut device, 1),
        Err(ActivateError::QueueCount {
            expected: 2,
            got: 1
        })
    ));
    assert!(offloads.lock().unwrap().is_empty());
    activate(&mut device, 2).unwrap();
    assert!(matches!(
        activate(&mut device, 2),
        Err(ActivateError::Backend(_))
    ));
    assert_eq!(*offloads.lock().unwrap(), vec![0]);
}
