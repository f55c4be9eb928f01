//! A read-only share that shows only some entries of its root, as image
//! layer stores are shared.

use fuse_backend_rs::abi::fuse_abi::{Opcode, OpenIn, OpenOut, ReadIn, SetattrIn};
use fuse_backend_rs::api::filesystem::SetattrValid;
use vm_memory::ByteValued;

use super::driver::Driver;
use super::fuse::{cstr, ROOT};
use super::serve::dirent_names;
use super::{fixture, HELLO, HELLO_CONTENTS};
use crate::devices::virtio::fs::{Fs, FsError};
use crate::devices::virtio::VIRTIO_F_VERSION_1;

/// An initialized driver of a share of `dir` showing only `entries`.
pub(super) fn subset_driver(dir: &std::path::Path, read_only: bool, entries: &[&str]) -> Driver {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    let device = Fs::subset("layers", dir, read_only, &entries).expect("create device");
    let mut driver = Driver::with_device(device, VIRTIO_F_VERSION_1);
    driver.init();
    driver
}

/// The names a READDIR or READDIRPLUS of the root lists.
pub(super) fn root_listing(driver: &mut Driver, opcode: Opcode) -> Vec<String> {
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
    let mut driver = subset_driver(dir.path(), true, &["sub"]);

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
    let mut driver = subset_driver(dir.path(), true, &["sub", "not-there"]);
    assert_eq!(root_listing(&mut driver, Opcode::Readdir), ["sub"]);
    let mut plus = root_listing(&mut driver, Opcode::Readdirplus);
    plus.retain(|name| name != "." && name != "..");
    assert_eq!(plus, ["sub"]);
}

#[test]
fn entries_must_be_plain_names() {
    let dir = fixture();
    for bad in ["", ".", "..", "a/b", "nul\0"] {
        let err = Fs::subset("layers", dir.path(), true, &[bad.to_owned()]).err();
        assert!(
            matches!(err, Some(FsError::InvalidEntry(_))),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn visible_entries_are_listed_among_many_hidden_ones() {
    // More hidden entries than one host directory read returns: a listing
    // filtered from the host directory would come back empty, which the
    // guest takes for the end of the directory.
    let dir = fixture();
    for i in 0..1000 {
        std::fs::create_dir(dir.path().join(format!("hidden-layer-{i:04}"))).unwrap();
    }
    let mut driver = subset_driver(dir.path(), true, &["sub", HELLO]);
    for opcode in [Opcode::Readdir, Opcode::Readdirplus] {
        assert_eq!(
            root_listing(&mut driver, opcode),
            [HELLO, "sub"],
            "{opcode:?}"
        );
    }
}

#[test]
fn a_read_only_subset_refuses_changes_with_erofs() {
    let dir = fixture();
    let mut driver = subset_driver(dir.path(), true, &["sub", HELLO]);
    let file = driver.lookup_node(ROOT, HELLO);
    let sub = driver.lookup_node(ROOT, "sub");
    let chmod = SetattrIn {
        valid: SetattrValid::MODE.bits(),
        mode: libc::S_IFREG | 0o777,
        ..Default::default()
    };
    let cases = [
        ("open O_RDWR", driver.open(file, libc::O_RDWR)),
        ("chmod", driver.setattr(file, chmod)),
        // ReadOnly answers first, at the root as below it.
        (
            "create at the root",
            driver.create(ROOT, "new", libc::O_RDWR),
        ),
        ("create below", driver.create(sub, "new", libc::O_RDWR)),
        ("unlink", driver.call(Opcode::Unlink, ROOT, &[&cstr(HELLO)])),
    ];
    for (name, reply) in &cases {
        assert_eq!(reply.errno(), libc::EROFS, "{name}");
    }
    assert_eq!(
        std::fs::read(dir.path().join(HELLO)).unwrap(),
        HELLO_CONTENTS
    );
    assert!(!dir.path().join("new").exists());
    assert!(!dir.path().join("sub/new").exists());
}
