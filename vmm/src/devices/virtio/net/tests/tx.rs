//! TX: frames from the guest reach the tap whole, in order; malformed
//! chains and frames the tap cannot take are dropped; every chain returns.

use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

use super::driver::{Desc, Harness, MEM_SIZE};
use super::frame;
use crate::devices::virtio::net::MAX_BUFFER_LEN;
use crate::devices::virtio::VIRTIO_F_VERSION_1;

#[test]
fn a_frame_split_across_descriptors_reaches_the_tap_whole() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1);
    let sent = frame(1500, 1);
    // The header on its own, then the payload in two unequal pieces.
    let descs: Vec<Desc> = [0..12, 12..100, 100..sent.len()]
        .into_iter()
        .map(|range| {
            let piece = &sent[range];
            Desc::readable(h.buffer_with(piece), piece.len() as u32)
        })
        .collect();
    assert_eq!(h.transmit(&descs).len, 0);
    assert_eq!(h.tap_recv(), sent);
    assert_eq!(h.interrupts(), 1);

    // The header split too, and a buffer of nothing.
    let sent = frame(60, 2);
    let descs = [
        Desc::readable(h.buffer_with(&sent[..5]), 5),
        Desc::readable(h.buffer_with(&sent[5..20]), 15),
        Desc::readable(h.buffer(0, 0), 0),
        Desc::readable(h.buffer_with(&sent[20..]), sent.len() as u32 - 20),
    ];
    h.transmit(&descs);
    assert_eq!(h.tap_recv(), sent);
}

#[test]
fn frames_up_to_64_kib_pass_in_order() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1);
    let largest = frame(MAX_BUFFER_LEN - 12, 3);
    let small = frame(42, 4);
    for sent in [&largest, &small, &largest] {
        h.transmit_frame(sent);
    }
    assert_eq!(h.tap_recv(), largest);
    assert_eq!(h.tap_recv(), small);
    assert_eq!(h.tap_recv(), largest);
}

#[test]
fn malformed_tx_chains_are_returned_and_dropped() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1);
    type Shape = fn(&mut Harness) -> Vec<Desc>;
    let shapes: [(&str, Shape); 5] = [
        ("device-writable buffer", |h| {
            let header = h.buffer_with(&frame(0, 0));
            vec![
                Desc::readable(header, 12),
                Desc::writable(h.buffer(100, 0), 100),
            ]
        }),
        ("longer than 64 KiB and headers", |h| {
            let len = MAX_BUFFER_LEN as u32 + 1;
            vec![Desc::readable(h.buffer(len, 0), len)]
        }),
        ("two buffers adding up to too long", |h| {
            let len = MAX_BUFFER_LEN as u32 / 2 + 1;
            let first = Desc::readable(h.buffer(len, 0), len);
            vec![first, Desc::readable(h.buffer(len, 0), len)]
        }),
        ("shorter than the vnet header", |h| {
            vec![Desc::readable(h.buffer(11, 0), 11)]
        }),
        ("outside guest memory", |h| {
            let header = h.buffer_with(&frame(0, 0));
            vec![Desc::readable(header, 12), Desc::readable(MEM_SIZE - 8, 64)]
        }),
    ];
    for (seed, (name, shape)) in (10..).zip(shapes) {
        let descs = shape(&mut h);
        assert_eq!(h.transmit(&descs).len, 0, "{name}");
        // Frames leave in order: had the malformed one been sent, it
        // would come first.
        let good = frame(100, seed);
        h.transmit_frame(&good);
        assert_eq!(h.tap_recv(), good, "{name}");
    }
}

#[test]
fn frames_the_tap_has_no_room_for_are_dropped() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1);
    // The host reads nothing while 64 large frames go out: the socket
    // fills up long before, and the worker must drop rather than block.
    let sent = frame(60_000, 5);
    let addr = h.buffer_with(&sent);
    let heads: Vec<u16> = (0..64)
        .map(|_| h.tx.write_chain(&[Desc::readable(addr, sent.len() as u32)]))
        .collect();
    h.tx.post(&heads);
    let used = h.tx.wait_used(64);
    assert!(used.iter().all(|u| u.len == 0));
    let arrived = h.tap_drain();
    assert!(
        !arrived.is_empty() && arrived.len() < 64,
        "{}",
        arrived.len()
    );
    assert!(arrived.iter().all(|f| *f == sent));

    let good = frame(100, 6);
    h.transmit_frame(&good);
    assert_eq!(h.tap_recv(), good);
}

#[test]
fn event_idx_suppresses_tx_interrupts_until_used_event() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX);
    // Interrupt me when the used index passes 1, i.e. for the second.
    h.tx.set_used_event(1);
    h.transmit_frame(&frame(10, 7));
    assert_eq!(h.interrupts(), 0);
    h.transmit_frame(&frame(10, 8));
    assert_eq!(h.interrupts(), 1);
    assert_eq!(h.tap_recv(), frame(10, 7));
    assert_eq!(h.tap_recv(), frame(10, 8));
}
