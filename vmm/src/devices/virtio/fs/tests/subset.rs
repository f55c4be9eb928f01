//! A read-only share that shows only some entries of its root.

use fuse_backend_rs::abi::fuse_abi::{Opcode, OpenIn, OpenOut, ReadIn};
use vm_memory::ByteValued;

use super::driver::Driver;
use super::fixture;
use super::fuse::ROOT;
use super::serve::dirent_names;
use crate::devices::virtio::fs::{Fs, FsError};
use crate::devices::virtio::VIRTIO_F_VERSION_1;

fn subset_driver(dir: &std::path::Path, entries: &[&str]) -> Driver {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    let device = Fs::read_only_subset("layers", dir, &entries).expect("create device");
    let mut driver = Driver::with_device(device, VIRTIO_F_VERSION_1);
    driver.init();
    driver
}

fn root_listing(driver: &mut Driver, opcode: Opcode) -> Vec<String> {
    let open_in = OpenIn {
        flags: libc::O_RDONLY as u32,
        fuse_flags: 0,
    };
    let fh = driver
        .call(Opcode::Opendir, ROOT, &[open_in.as_slice()])
        .body::<OpenOut>()
        .fh;
    let read = ReadIn {
        fh,
        size: 4096,
        ..Default::default()
    };
    let reply = driver.call(opcode, ROOT, &[read.as_slice()]);
    match opcode {
        Opcode::Readdir => dirent_names(reply.payload()),
        // READDIRPLUS entries carry an EntryOut before each dirent.
        _ => readdirplus_names(reply.payload()),
    }
}

fn readdirplus_names(mut payload: &[u8]) -> Vec<String> {
    use fuse_backend_rs::abi::fuse_abi::{Dirent, EntryOut};
    use std::mem::size_of;
    let mut names = Vec::new();
    let header = size_of::<EntryOut>() + size_of::<Dirent>();
    while payload.len() >= header {
        let dirent = *Dirent::from_slice(&payload[size_of::<EntryOut>()..header]).unwrap();
        let name_end = header + dirent.namelen as usize;
        names.push(String::from_utf8(payload[header..name_end].to_vec()).unwrap());
        payload = &payload[((name_end + 7) & !7).min(payload.len())..];
    }
    names
}

#[test]
fn hidden_root_entries_cannot_be_looked_up() {
    let dir = fixture();
    let mut driver = subset_driver(dir.path(), &["sub"]);

    assert_eq!(driver.lookup(ROOT, "hello.txt").errno(), libc::ENOENT);
    let sub = driver.lookup_node(ROOT, "sub");
    // Below the root nothing is filtered.
    let inner = driver.lookup_node(sub, "inner");
    let fh = driver.open_handle(inner);
    assert_eq!(driver.read(inner, fh, 0, 64).payload(), b"inner");
}

#[test]
fn listings_of_the_root_show_only_visible_entries() {
    let dir = fixture();
    let mut driver = subset_driver(dir.path(), &["sub", "not-there"]);
    assert_eq!(root_listing(&mut driver, Opcode::Readdir), ["sub"]);
    let mut plus = root_listing(&mut driver, Opcode::Readdirplus);
    plus.retain(|name| name != "." && name != "..");
    assert_eq!(plus, ["sub"]);
}

#[test]
fn entries_must_be_plain_names() {
    let dir = fixture();
    for bad in ["", ".", "..", "a/b", "nul\0"] {
        let err = Fs::read_only_subset("layers", dir.path(), &[bad.to_owned()]).err();
        assert!(
            matches!(err, Some(FsError::InvalidEntry(_))),
            "{bad:?} accepted"
        );
    }
}
