//! Interrupts honour VIRTIO_RING_F_EVENT_IDX suppression.

use std::time::Duration;

use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

use super::driver::{Driver, REQUEST};
use super::fixture;
use super::fuse::ROOT;
use crate::devices::virtio::VIRTIO_F_VERSION_1;

#[test]
fn event_idx_suppresses_unwanted_interrupts() {
    let dir = fixture();
    let features = VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX;
    let mut driver = Driver::new(dir.path(), true, features);

    // used_event 0: interrupt once the first chain is used.
    driver.set_used_event(REQUEST, 0);
    driver.init();
    assert_eq!(driver.wait_interrupts(), 1);

    // Still used_event 0: the second chain must not interrupt.
    driver.lookup(ROOT, super::HELLO);
    assert_eq!(driver.used_idx(REQUEST), 2);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(driver.pending_interrupts(), 0);

    // used_event 2: the third chain interrupts again, and only once.
    driver.set_used_event(REQUEST, 2);
    driver.lookup(ROOT, "sub");
    assert_eq!(driver.wait_interrupts(), 1);
}

#[test]
fn without_event_idx_every_batch_interrupts() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    driver.init();
    assert_eq!(driver.wait_interrupts(), 1);
    driver.lookup(ROOT, super::HELLO);
    assert_eq!(driver.wait_interrupts(), 1);
}
