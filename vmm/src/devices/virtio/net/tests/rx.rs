//! RX: frames from the tap land in the guest's buffers with the right
//! `num_buffers`, wait for buffers rather than being lost, and unusable
//! buffers are handed back.

use std::thread::sleep;

use virtio_bindings::virtio_net::VIRTIO_NET_F_MRG_RXBUF;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

use super::driver::{Desc, Harness, Used, QUIET};
use super::{frame, received};
use crate::devices::virtio::VIRTIO_F_VERSION_1;

const MRG_RXBUF: u64 = 1 << VIRTIO_NET_F_MRG_RXBUF;
const EVENT_IDX: u64 = 1 << VIRTIO_RING_F_EVENT_IDX;

#[test]
fn a_frame_arrives_in_one_buffer_with_num_buffers_1() {
    for features in [VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1 | MRG_RXBUF] {
        let mut h = Harness::new(features);
        let buffers = h.post_rx_buffers(2, 2048);
        let sent = frame(1000, 1);
        h.tap_send(&sent);
        let used = h.rx.wait_used(1);
        assert_eq!(
            used,
            vec![Used {
                head: u32::from(buffers[0].0),
                len: 1012
            }]
        );
        assert_eq!(h.read_guest(buffers[0].1, 1012), received(&sent, 1));
        assert_eq!(h.read_guest(buffers[0].1 + 1012, 4), [0xaa; 4]);
        assert_eq!(h.interrupts(), 1);
    }
}

#[test]
fn a_chain_of_several_buffers_takes_one_frame() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1);
    let lens = [12, 1000, 65550];
    let descs: Vec<Desc> = lens
        .iter()
        .map(|&len| Desc::writable(h.buffer(len, 0xaa), len))
        .collect();
    let head = h.rx.add(&descs);
    let sent = frame(3000, 2);
    h.tap_send(&sent);
    assert_eq!(
        h.rx.wait_used(1),
        vec![Used {
            head: u32::from(head),
            len: 3012
        }]
    );
    let mut got = h.read_guest(descs[0].addr, 12);
    got.extend(h.read_guest(descs[1].addr, 1000));
    got.extend(h.read_guest(descs[2].addr, 2000));
    assert_eq!(got, received(&sent, 1));
}

#[test]
fn a_large_frame_spans_several_mergeable_buffers() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1 | MRG_RXBUF | EVENT_IDX);
    let buffers = h.post_rx_buffers(8, 4096);
    let sent = frame(20_000, 3);
    h.tap_send(&sent);
    let used = h.rx.wait_used(5);
    let expected: Vec<Used> = buffers[..5]
        .iter()
        .zip([4096, 4096, 4096, 4096, 20_012 - 4 * 4096])
        .map(|(&(head, _), len)| Used {
            head: u32::from(head),
            len,
        })
        .collect();
    assert_eq!(used, expected);
    let got: Vec<u8> = buffers[..5]
        .iter()
        .zip(&used)
        .flat_map(|(&(_, addr), used)| h.read_guest(addr, used.len as usize))
        .collect();
    assert_eq!(got, received(&sent, 5));

    // The next frame starts in the next buffer.
    let sent = frame(100, 4);
    h.tap_send(&sent);
    assert_eq!(h.rx.wait_used(1)[0].head, u32::from(buffers[5].0));
    assert_eq!(h.read_guest(buffers[5].1, 112), received(&sent, 1));
}

#[test]
fn frames_wait_for_rx_buffers_and_none_are_lost() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1 | MRG_RXBUF | EVENT_IDX);
    let sent: Vec<Vec<u8>> = (0..3).map(|seed| frame(500, seed)).collect();
    for frame in &sent {
        h.tap_send(frame);
    }
    sleep(QUIET);
    assert_eq!(h.rx.used_pending(), 0);

    let buffers = h.post_rx_buffers(3, 1024);
    let used = h.rx.wait_used(3);
    for ((frame, &(head, addr)), used) in sent.iter().zip(&buffers).zip(&used) {
        assert_eq!(used.head, u32::from(head));
        assert_eq!(h.read_guest(addr, 512), received(frame, 1));
    }

    // A frame too big for the one buffer there waits for more.
    let big = frame(5000, 9);
    let first = h.post_rx_buffers(1, 4096);
    h.tap_send(&big);
    sleep(QUIET);
    assert_eq!(h.rx.used_pending(), 0);
    let second = h.post_rx_buffers(2, 4096);
    let used = h.rx.wait_used(2);
    assert_eq!(used[0].head, u32::from(first[0].0));
    assert_eq!(used[1].head, u32::from(second[0].0));
    let mut got = h.read_guest(first[0].1, 4096);
    got.extend(h.read_guest(second[0].1, 5012 - 4096));
    assert_eq!(got, received(&big, 2));
}

#[test]
fn without_mergeable_buffers_a_frame_waits_for_its_own_buffer() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1);
    let sent = frame(700, 5);
    h.tap_send(&sent);
    sleep(QUIET);
    assert_eq!(h.rx.used_pending(), 0);
    let buffers = h.post_rx_buffers(1, 1526);
    assert_eq!(h.rx.wait_used(1)[0].len, 712);
    assert_eq!(h.read_guest(buffers[0].1, 712), received(&sent, 1));
}

#[test]
fn a_frame_too_big_for_a_buffer_without_mrg_rxbuf_is_dropped() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1);
    let buffers = h.post_rx_buffers(1, 1526);
    let too_big = frame(3000, 6);
    let fits = frame(1000, 7);
    h.tap_send(&too_big);
    h.tap_send(&fits);
    let used = h.rx.wait_used(1);
    assert_eq!(used[0].len, 1012);
    assert_eq!(h.read_guest(buffers[0].1, 1012), received(&fits, 1));
}

#[test]
fn unusable_rx_chains_are_returned_empty() {
    let mut h = Harness::new(VIRTIO_F_VERSION_1 | MRG_RXBUF);
    let (readable, short, good) = (h.buffer(2048, 0), h.buffer(11, 0), h.buffer(2048, 0));
    let readable = h.rx.write_chain(&[Desc::readable(readable, 2048)]);
    let short = h.rx.write_chain(&[Desc::writable(short, 11)]);
    let good_head = h.rx.write_chain(&[Desc::writable(good, 2048)]);
    h.rx.post(&[readable, short, good_head]);
    let sent = frame(100, 8);
    h.tap_send(&sent);
    let used = h.rx.wait_used(3);
    let expected = [(readable, 0), (short, 0), (good_head, 112)].map(|(head, len)| Used {
        head: u32::from(head),
        len,
    });
    assert_eq!(used, expected);
    assert_eq!(h.read_guest(good, 112), received(&sent, 1));
}
