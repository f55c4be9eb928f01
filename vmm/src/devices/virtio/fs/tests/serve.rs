//! The read path end to end, and writes on a read-write share.

use std::mem::size_of;

use fuse_backend_rs::abi::fuse_abi::{
    AttrOut, CreateIn, Dirent, EntryOut, GetattrIn, MkdirIn, Opcode, OpenOut, ReadIn, WriteIn,
    WriteOut,
};
use vm_memory::ByteValued;

use super::driver::Driver;
use super::fuse::{cstr, ROOT};
use super::{fixture, HELLO, HELLO_CONTENTS};
use crate::devices::virtio::VIRTIO_F_VERSION_1;

#[test]
fn init_lookup_getattr_open_read_returns_file_bytes() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);

    driver.init();
    assert!(
        driver.wait_interrupts() >= 1,
        "no interrupt for a used chain"
    );

    let entry: EntryOut = driver.lookup(ROOT, HELLO).body();
    assert_ne!(entry.nodeid, 0);
    assert_eq!(entry.attr.size, HELLO_CONTENTS.len() as u64);

    let attr: AttrOut = driver
        .call(
            Opcode::Getattr,
            entry.nodeid,
            &[GetattrIn::default().as_slice()],
        )
        .body();
    assert_eq!(attr.attr.size, HELLO_CONTENTS.len() as u64);
    assert_eq!(attr.attr.mode & libc::S_IFMT, libc::S_IFREG);

    let fh = driver.open_handle(entry.nodeid);
    let whole = driver.read(entry.nodeid, fh, 0, 4096);
    assert_eq!(whole.payload(), HELLO_CONTENTS);
    let middle = driver.read(entry.nodeid, fh, 6, 4);
    assert_eq!(middle.payload(), b"from");
    let past_end = driver.read(entry.nodeid, fh, 1 << 20, 4096);
    assert_eq!(past_end.payload(), b"");
}

#[test]
fn nested_lookup_and_missing_names() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    driver.init();

    let sub = driver.lookup_node(ROOT, "sub");
    let inner = driver.lookup_node(sub, "inner");
    let fh = driver.open_handle(inner);
    assert_eq!(driver.read(inner, fh, 0, 64).payload(), b"inner");

    assert_eq!(driver.lookup(ROOT, "missing").errno(), libc::ENOENT);
    // ".." of the share root stays inside the share.
    let parent: EntryOut = driver.lookup(ROOT, "..").body();
    assert_eq!(parent.nodeid, ROOT);
}

/// Names in a FUSE_READDIR reply.
pub(super) fn dirent_names(mut payload: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    while payload.len() >= size_of::<Dirent>() {
        let dirent = *Dirent::from_slice(&payload[..size_of::<Dirent>()]).unwrap();
        let name_start = size_of::<Dirent>();
        let name_end = name_start + dirent.namelen as usize;
        names.push(String::from_utf8(payload[name_start..name_end].to_vec()).unwrap());
        let padded = (name_end + 7) & !7;
        payload = &payload[padded.min(payload.len())..];
    }
    names
}

#[test]
fn opendir_readdir_lists_entries() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    driver.init();

    let open_in = fuse_backend_rs::abi::fuse_abi::OpenIn {
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
    let listing = driver.call(Opcode::Readdir, ROOT, &[read.as_slice()]);
    let mut names = dirent_names(listing.payload());
    names.sort();
    // The passthrough leaves out "." and "..".
    assert_eq!(names, [HELLO, "sub"]);
}

#[test]
fn read_write_share_accepts_writes() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), false, VIRTIO_F_VERSION_1);
    driver.init();

    let create = CreateIn {
        flags: (libc::O_WRONLY | libc::O_CREAT) as u32,
        mode: libc::S_IFREG | 0o644,
        umask: 0o022,
        fuse_flags: 0,
    };
    let created = driver.call(Opcode::Create, ROOT, &[create.as_slice(), &cstr("new.txt")]);
    let payload = created.payload();
    let entry = *EntryOut::from_slice(&payload[..size_of::<EntryOut>()]).unwrap();
    let open =
        *OpenOut::from_slice(&payload[size_of::<EntryOut>()..][..size_of::<OpenOut>()]).unwrap();

    let data = b"written by the guest";
    let write = WriteIn {
        fh: open.fh,
        size: data.len() as u32,
        ..Default::default()
    };
    let written: WriteOut = driver
        .call(Opcode::Write, entry.nodeid, &[write.as_slice(), data])
        .body();
    assert_eq!(written.size as usize, data.len());
    assert_eq!(std::fs::read(dir.path().join("new.txt")).unwrap(), data);

    let mkdir = MkdirIn {
        mode: 0o755,
        umask: 0o022,
    };
    driver
        .call(Opcode::Mkdir, ROOT, &[mkdir.as_slice(), &cstr("newdir")])
        .body::<EntryOut>();
    assert!(dir.path().join("newdir").is_dir());
}
