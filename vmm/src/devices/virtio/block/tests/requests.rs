//! Well-formed requests: data round trips, flush, GET_ID, bounds, the
//! read-only mode, discards, and interrupt suppression.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD,
    VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
    VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

use super::driver::{Desc, Driver};
use super::sparse_image;
use crate::devices::virtio::VIRTIO_F_VERSION_1;

const OK: u8 = VIRTIO_BLK_S_OK as u8;
const IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;
const UNSUPP: u8 = VIRTIO_BLK_S_UNSUPP as u8;
const SECTORS: u64 = 2048;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn file_bytes(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    let file = std::fs::File::open(path).unwrap();
    file.read_exact_at(&mut data, offset).unwrap();
    data
}

fn driver(path: &Path, read_only: bool) -> Driver {
    Driver::new(path, read_only, VIRTIO_F_VERSION_1)
}

#[test]
fn written_sectors_read_back_and_reach_the_file() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    let data = pattern(4096, 0x5a);
    assert_eq!(d.write_sectors(8, &data), OK);
    assert_eq!(d.read_sectors(8, 4096), (OK, data.clone()));
    assert_eq!(file_bytes(&path, 8 * 512, 4096), data);
    // Untouched sectors around it read as zeros.
    assert_eq!(d.read_sectors(7, 512), (OK, vec![0; 512]));
    assert_eq!(d.read_sectors(16, 512), (OK, vec![0; 512]));
}

#[test]
fn the_last_sector_is_readable_and_writable() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    let data = pattern(512, 1);
    assert_eq!(d.write_sectors(SECTORS - 1, &data), OK);
    assert_eq!(d.read_sectors(SECTORS - 1, 512), (OK, data));
}

#[test]
fn requests_scatter_and_gather_across_data_buffers() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    let data = pattern(3 * 4096, 7);
    let header = d.header(VIRTIO_BLK_T_OUT, 100);
    // Buffers of unequal sizes that still add up to whole sectors.
    let buffers: Vec<Desc> = [1000, 4096, 3 * 4096 - 5096]
        .iter()
        .scan(0usize, |at, &len| {
            let chunk = &data[*at..*at + len];
            *at += len;
            Some(chunk.to_vec())
        })
        .map(|chunk| Desc::readable(d.buffer_with(&chunk), chunk.len() as u32))
        .collect();
    let status = d.status();
    let chain: Vec<Desc> = [vec![header], buffers, vec![status]].concat();
    d.submit(&chain);
    assert_eq!(d.status_of(status), OK);

    let header = d.header(VIRTIO_BLK_T_IN, 100);
    let first = Desc::writable(d.buffer(512, 0), 512);
    let second = Desc::writable(d.buffer(3 * 4096 - 512, 0), 3 * 4096 - 512);
    let status = d.status();
    let used = d.submit(&[header, first, second, status]);
    assert_eq!(d.status_of(status), OK);
    assert_eq!(used.len, 3 * 4096 + 1);
    let mut read = d.read_guest(first.addr, 512);
    read.extend(d.read_guest(second.addr, second.len as usize));
    assert_eq!(read, data);
}

#[test]
fn flush_succeeds_and_writes_only_the_status() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    assert_eq!(d.write_sectors(0, &pattern(512, 3)), OK);
    let header = d.header(VIRTIO_BLK_T_FLUSH, 0);
    let status = d.status();
    let used = d.submit(&[header, status]);
    assert_eq!((d.status_of(status), used.len), (OK, 1));
}

#[test]
fn get_id_is_a_stable_serial_per_image() {
    let (_dir, path) = sparse_image(SECTORS);
    let (_other_dir, other_path) = sparse_image(SECTORS);
    let (status, id) = driver(&path, false).get_id();
    assert_eq!(status, OK);
    assert!(id.starts_with(b"hull"), "{id:?}");
    assert!(id[4..].iter().all(u8::is_ascii_hexdigit), "{id:?}");
    // The same image gives the same serial in a later VM (the first
    // driver, and its lock, are gone), another image another one.
    assert_eq!(driver(&path, true).get_id(), (OK, id.clone()));
    assert_ne!(driver(&other_path, false).get_id().1, id);
}

#[test]
fn requests_past_the_end_fail_and_leave_the_file_unchanged() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    let data = pattern(1024, 9);
    assert_eq!(d.write_sectors(SECTORS - 1, &data), IOERR);
    assert_eq!(d.write_sectors(SECTORS, &data[..512]), IOERR);
    assert_eq!(d.write_sectors(u64::MAX, &data[..512]), IOERR);
    assert_eq!(d.write_sectors(u64::MAX / 512 + 1, &data[..512]), IOERR);
    assert_eq!(d.read_sectors(SECTORS - 1, 1024).0, IOERR);
    assert_eq!(d.read_sectors(u64::MAX, 512).0, IOERR);
    // A length that is not whole sectors.
    assert_eq!(d.write_sectors(0, &data[..100]), IOERR);
    assert_eq!(d.read_sectors(0, 700).0, IOERR);

    let file = std::fs::metadata(&path).unwrap();
    assert_eq!(file.len(), SECTORS * 512);
    assert_eq!(file.blocks(), 0, "nothing was written");
}

#[test]
fn a_read_only_disk_refuses_writes_and_discards() {
    let (_dir, path) = sparse_image(SECTORS);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(&pattern(512, 4), 0)
        .unwrap();
    let mut d = driver(&path, true);
    assert_eq!(d.write_sectors(0, &[0; 512]), IOERR);
    assert_eq!(discard(&mut d, VIRTIO_BLK_T_DISCARD, 0, 1, 0), IOERR);
    assert_eq!(d.read_sectors(0, 512), (OK, pattern(512, 4)));
    assert_eq!(file_bytes(&path, 0, 512), pattern(512, 4));
}

#[test]
fn unknown_request_types_are_unsupported() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    for request_type in [2, 5, 14, 99, u32::MAX] {
        let header = d.header(request_type, 0);
        let status = d.status();
        let used = d.submit(&[header, status]);
        assert_eq!(
            (d.status_of(status), used.len),
            (UNSUPP, 1),
            "type {request_type}"
        );
    }
}

/// A DISCARD or WRITE_ZEROES of one range; returns the status.
fn discard(d: &mut Driver, request_type: u32, sector: u64, sectors: u32, flags: u32) -> u8 {
    let mut range = sector.to_le_bytes().to_vec();
    range.extend(sectors.to_le_bytes());
    range.extend(flags.to_le_bytes());
    let header = d.header(request_type, 0);
    let ranges = Desc::readable(d.buffer_with(&range), range.len() as u32);
    let status = d.status();
    let used = d.submit(&[header, ranges, status]);
    assert_eq!(used.len, 1);
    d.status_of(status)
}

#[test]
fn discard_and_write_zeroes_punch_holes() {
    // Two MiB: 2048 sectors each.
    let (_dir, path) = sparse_image(4096);
    let mut d = driver(&path, false);
    let blocks = || std::fs::metadata(&path).unwrap().blocks();
    let mib = pattern(1 << 20, 0x11);
    assert_eq!(d.write_sectors(0, &mib), OK);
    assert_eq!(d.write_sectors(2048, &mib), OK);
    assert_eq!(d.read_sectors(0, 4096).1, mib[..4096]);
    let full = blocks();
    assert!(full >= 2 * 2048, "{full} blocks after writing 2 MiB");

    assert_eq!(discard(&mut d, VIRTIO_BLK_T_DISCARD, 0, 2048, 0), OK);
    let after_discard = blocks();
    assert!(
        after_discard <= full - 2048,
        "{full} -> {after_discard} blocks"
    );
    assert_eq!(d.read_sectors(0, 4096), (OK, vec![0; 4096]));

    let unmap = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
    assert_eq!(
        discard(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 2048, 2048, unmap),
        OK
    );
    assert!(blocks() <= after_discard - 2048);
    assert_eq!(d.read_sectors(4000, 4096), (OK, vec![0; 4096]));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096 * 512);
}

#[test]
fn bad_discards_fail_without_punching() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    let data = pattern(4096, 0x22);
    assert_eq!(d.write_sectors(SECTORS - 8, &data), OK);
    assert_eq!(
        discard(&mut d, VIRTIO_BLK_T_DISCARD, SECTORS - 8, 9, 0),
        IOERR
    );
    assert_eq!(
        discard(&mut d, VIRTIO_BLK_T_DISCARD, u64::MAX - 1, 4, 0),
        IOERR
    );
    assert_eq!(
        discard(&mut d, VIRTIO_BLK_T_DISCARD, SECTORS - 8, 8, 0x8),
        UNSUPP
    );
    assert_eq!(d.read_sectors(SECTORS - 8, 4096), (OK, data));

    // A range entry that is cut short.
    let header = d.header(VIRTIO_BLK_T_DISCARD, 0);
    let ranges = Desc::readable(d.buffer(12, 0), 12);
    let status = d.status();
    d.submit(&[header, ranges, status]);
    assert_eq!(d.status_of(status), IOERR);
}

#[test]
fn every_returned_request_interrupts_without_event_idx() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    d.read_sectors(0, 512);
    assert_eq!(d.interrupts(), 1);
    d.read_sectors(0, 512);
    assert_eq!(d.interrupts(), 1);
}

#[test]
fn event_idx_suppresses_interrupts_until_used_event() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = Driver::new(
        &path,
        false,
        VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX,
    );
    // Interrupt me when the used index passes 2, i.e. for the third.
    d.set_used_event(2);
    d.read_sectors(0, 512);
    d.read_sectors(0, 512);
    assert_eq!(d.interrupts(), 0);
    d.read_sectors(0, 512);
    assert_eq!(d.interrupts(), 1);
}

#[test]
fn chains_posted_together_are_all_answered_in_order() {
    let (_dir, path) = sparse_image(SECTORS);
    let mut d = driver(&path, false);
    let mut statuses = Vec::new();
    let mut heads = Vec::new();
    for sector in 0..8 {
        let header = d.header(VIRTIO_BLK_T_OUT, sector);
        let data = Desc::readable(d.buffer(512, sector as u8 + 1), 512);
        let status = d.status();
        let head = d.write_chain(&[header, data, status]);
        d.post(head);
        heads.push(u32::from(head));
        statuses.push(status);
    }
    d.kick();
    let used = d.wait_used(8);
    assert_eq!(used.iter().map(|u| u.head).collect::<Vec<_>>(), heads);
    assert!(statuses.iter().all(|&s| d.status_of(s) == OK));
    let header = d.header(VIRTIO_BLK_T_IN, 0);
    let data = Desc::writable(d.buffer(8 * 512, 0), 8 * 512);
    let status = d.status();
    d.submit(&[header, data, status]);
    let read = d.read_guest(data.addr, 8 * 512);
    for (sector, chunk) in read.chunks(512).enumerate() {
        assert!(
            chunk.iter().all(|&b| b == sector as u8 + 1),
            "sector {sector}"
        );
    }
}
