//! FUSE_INIT offers the guest requests of up to 1 MiB of file data, and
//! such requests are served whole.

use fuse_backend_rs::abi::fuse_abi::{FsOptions, InitOut, Opcode, ReadIn};
use fuse_backend_rs::api::server::MAX_BUFFER_SIZE;
use vm_memory::ByteValued;

use super::driver::Driver;
use super::fixture;
use super::fuse::{message, ROOT};
use super::read_only::snapshot;
use crate::devices::virtio::VIRTIO_F_VERSION_1;

/// What a Linux guest offers, among the rest: larger writes than a page,
/// and more pages per request than 32.
fn offered() -> u32 {
    (FsOptions::BIG_WRITES | FsOptions::MAX_PAGES).bits() as u32
}

/// Pseudo-random bytes, so that a misplaced page shows.
fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

fn assert_large_requests(out: &InitOut) {
    let flags = FsOptions::from_bits_truncate(u64::from(out.flags));
    assert!(flags.contains(FsOptions::BIG_WRITES), "{flags:?}");
    assert!(flags.contains(FsOptions::MAX_PAGES), "{flags:?}");
    assert_eq!(out.max_write, MAX_BUFFER_SIZE);
    assert_eq!(u32::from(out.max_pages) * 4096, MAX_BUFFER_SIZE);
}

#[test]
fn a_guest_offering_large_requests_gets_them() {
    for read_only in [false, true] {
        let dir = fixture();
        let mut driver = Driver::new(dir.path(), read_only, VIRTIO_F_VERSION_1);
        assert_large_requests(&driver.init_with_flags(offered()));
    }
}

#[test]
fn a_guest_offering_nothing_gets_page_sized_writes() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), false, VIRTIO_F_VERSION_1);
    let out = driver.init();
    assert_eq!(out.flags as u64 & offered() as u64, 0);
    assert_eq!(out.max_write, 4096);
}

#[test]
fn a_whole_mebibyte_is_written_and_read_in_one_request_each() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), false, VIRTIO_F_VERSION_1);
    driver.init_with_flags(offered());
    let (entry, open) = driver.create_file(ROOT, "big", libc::O_RDWR);
    let contents = data(MAX_BUFFER_SIZE as usize);

    driver.write_all(entry.nodeid, open.fh, 0, &contents);
    assert!(std::fs::read(dir.path().join("big")).unwrap() == contents);

    let read = ReadIn {
        fh: open.fh,
        offset: 0,
        size: MAX_BUFFER_SIZE,
        ..Default::default()
    };
    let request = message(Opcode::Read as u32, entry.nodeid, &[read.as_slice()]);
    let reply = driver.call_with_capacity(&request, MAX_BUFFER_SIZE + 16);
    assert!(reply.payload() == contents);
}

#[test]
fn a_read_only_share_refuses_large_writes_too() {
    let dir = fixture();
    let before = snapshot(dir.path());
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    driver.init_with_flags(offered());
    let file = driver.lookup_node(ROOT, super::HELLO);
    let fh = driver.open_handle(file);
    let reply = driver.write(file, fh, 0, &data(MAX_BUFFER_SIZE as usize));
    assert_eq!(reply.errno(), libc::EROFS);
    assert_eq!(snapshot(dir.path()), before);
}
