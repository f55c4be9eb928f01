//! A writable share behaves as a local file system for what databases and
//! package managers do in volumes, and shares it with other machines.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use fuse_backend_rs::abi::fuse_abi::{
    AttrOut, EntryOut, FsOptions, FsyncIn, GetattrIn, GetxattrIn, GetxattrOut, LinkIn, Opcode,
    OpenOut, RenameIn, SetattrIn, SetxattrIn,
};
use fuse_backend_rs::api::filesystem::{OpenOptions, SetattrValid};
use vm_memory::ByteValued;

use super::driver::Driver;
use super::fuse::{cstr, ROOT};
use super::{fixture, HELLO, HELLO_CONTENTS};
use crate::devices::virtio::VIRTIO_F_VERSION_1;

/// FUSE_TMPFILE (FUSE 7.37), which fuse-backend-rs 0.14 does not know.
const FUSE_TMPFILE: u32 = 51;

fn volume_driver(dir: &std::path::Path) -> Driver {
    let mut driver = Driver::new(dir, false, VIRTIO_F_VERSION_1);
    driver.init();
    driver
}

fn fsync_in(fh: u64, datasync: bool) -> FsyncIn {
    FsyncIn {
        fh,
        fsync_flags: u32::from(datasync),
        padding: 0,
    }
}

#[test]
fn written_data_is_synced_to_the_host_file() {
    let dir = fixture();
    let mut driver = volume_driver(dir.path());
    let (entry, open) = driver.create_file(ROOT, "pg_wal", libc::O_RDWR);
    let (node, fh) = (entry.nodeid, open.fh);

    driver.write_all(node, fh, 0, b"commit 1\n");
    driver.write_all(node, fh, 9, b"commit 2\n");
    for datasync in [false, true] {
        let fsync = fsync_in(fh, datasync);
        let reply = driver.call(Opcode::Fsync, node, &[fsync.as_slice()]);
        assert_eq!(reply.errno(), 0, "fsync (datasync {datasync})");
    }
    // As after creating a file: sync the directory holding it.
    let dir_fh = driver.opendir_handle(ROOT);
    for datasync in [false, true] {
        let fsync = fsync_in(dir_fh, datasync);
        let reply = driver.call(Opcode::Fsyncdir, ROOT, &[fsync.as_slice()]);
        assert_eq!(reply.errno(), 0, "fsyncdir (datasync {datasync})");
    }
    assert_eq!(
        std::fs::read(dir.path().join("pg_wal")).unwrap(),
        b"commit 1\ncommit 2\n"
    );
}

#[test]
fn chmod_and_chown_take_effect_on_the_host() {
    let dir = fixture();
    let host_file = dir.path().join(HELLO);
    let mut driver = volume_driver(dir.path());
    let file = driver.lookup_node(ROOT, HELLO);

    let chmod = SetattrIn {
        valid: SetattrValid::MODE.bits(),
        mode: libc::S_IFREG | 0o640,
        ..Default::default()
    };
    let attr: AttrOut = driver.setattr(file, chmod).body();
    assert_eq!(attr.attr.mode & 0o7777, 0o640);
    let mode = std::fs::metadata(&host_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o640);

    // Changing a file's owner takes CAP_CHOWN, which the VMM has when it
    // runs as root, as in production.
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping the chown checks: the tests do not run as root");
        return;
    }
    let chown = SetattrIn {
        valid: (SetattrValid::UID | SetattrValid::GID).bits(),
        uid: 999,
        gid: 998,
        ..Default::default()
    };
    let attr: AttrOut = driver.setattr(file, chown).body();
    assert_eq!((attr.attr.uid, attr.attr.gid), (999, 998));
    let meta = std::fs::metadata(&host_file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (999, 998));
}

#[test]
fn rename_link_and_symlink_work() {
    let dir = fixture();
    let mut driver = volume_driver(dir.path());
    let file = driver.lookup_node(ROOT, HELLO);
    let sub = driver.lookup_node(ROOT, "sub");

    let rename = driver.call(
        Opcode::Rename,
        ROOT,
        &[
            RenameIn { newdir: sub }.as_slice(),
            &cstr(HELLO),
            &cstr("moved"),
        ],
    );
    assert_eq!(rename.errno(), 0);
    // Replacing a file by renaming over it, as atomic saves do.
    let replace = driver.call(
        Opcode::Rename,
        sub,
        &[
            RenameIn { newdir: sub }.as_slice(),
            &cstr("moved"),
            &cstr("inner"),
        ],
    );
    assert_eq!(replace.errno(), 0);

    let link: EntryOut = driver
        .call(
            Opcode::Link,
            ROOT,
            &[LinkIn { oldnodeid: file }.as_slice(), &cstr("hard")],
        )
        .body();
    assert_eq!(link.nodeid, file);
    assert_eq!(link.attr.nlink, 2);

    let symlink: EntryOut = driver
        .call(Opcode::Symlink, ROOT, &[&cstr("soft"), &cstr("sub/inner")])
        .body();
    let target = driver.call(Opcode::Readlink, symlink.nodeid, &[]);
    assert_eq!(target.payload(), b"sub/inner");

    let host = dir.path();
    assert!(!host.join(HELLO).exists());
    assert_eq!(
        std::fs::read(host.join("sub/inner")).unwrap(),
        HELLO_CONTENTS
    );
    assert_eq!(std::fs::read(host.join("hard")).unwrap(), HELLO_CONTENTS);
    assert_eq!(std::fs::read(host.join("soft")).unwrap(), HELLO_CONTENTS);
}

#[test]
fn user_xattrs_work() {
    let dir = fixture();
    let mut driver = volume_driver(dir.path());
    let file = driver.lookup_node(ROOT, HELLO);
    let value = b"yes";

    let setxattr = SetxattrIn {
        size: value.len() as u32,
        flags: 0,
    };
    let set = driver.call(
        Opcode::Setxattr,
        file,
        &[setxattr.as_slice(), &cstr("user.x"), value],
    );
    assert_eq!(set.errno(), 0);
    let size_query = GetxattrIn {
        size: 0,
        padding: 0,
    };
    let size: GetxattrOut = driver
        .call(
            Opcode::Getxattr,
            file,
            &[size_query.as_slice(), &cstr("user.x")],
        )
        .body();
    assert_eq!(size.size as usize, value.len());
    let read_value = GetxattrIn {
        size: 64,
        padding: 0,
    };
    let got = driver.call(
        Opcode::Getxattr,
        file,
        &[read_value.as_slice(), &cstr("user.x")],
    );
    assert_eq!(got.payload(), value);
    let listed = driver.call(Opcode::Listxattr, file, &[read_value.as_slice()]);
    assert!(listed
        .payload()
        .split(|&byte| byte == 0)
        .any(|name| name == b"user.x"));

    let removed = driver.call(Opcode::Removexattr, file, &[&cstr("user.x")]);
    assert_eq!(removed.errno(), 0);
    let gone = driver.call(
        Opcode::Getxattr,
        file,
        &[read_value.as_slice(), &cstr("user.x")],
    );
    assert_eq!(gone.errno(), libc::ENODATA);
}

#[test]
fn tmpfile_is_not_supported() {
    // The guest kernel turns ENOSYS into EOPNOTSUPP for O_TMPFILE opens,
    // which callers (glibc's tmpfile(3), ...) fall back from to named
    // temporary files.
    let dir = fixture();
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let mut driver = volume_driver(dir.path());
    let create = fuse_backend_rs::abi::fuse_abi::CreateIn {
        flags: libc::O_RDWR as u32,
        mode: libc::S_IFREG | 0o600,
        ..Default::default()
    };
    let reply = driver.call_opcode(FUSE_TMPFILE, ROOT, &[create.as_slice(), &cstr("tmp")]);
    assert_eq!(reply.errno(), libc::ENOSYS);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
}

#[test]
fn writable_shares_are_not_cached_by_the_guest() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), false, VIRTIO_F_VERSION_1);
    let offered = FsOptions::WRITEBACK_CACHE.bits() as u32;
    let init = driver.init_with_flags(offered);
    assert_eq!(init.flags & offered, 0, "writeback cache granted");

    let entry: EntryOut = driver.lookup(ROOT, HELLO).body();
    assert_eq!((entry.entry_valid, entry.entry_valid_nsec), (0, 0));
    assert_eq!((entry.attr_valid, entry.attr_valid_nsec), (0, 0));
    let attr: AttrOut = driver
        .call(
            Opcode::Getattr,
            entry.nodeid,
            &[GetattrIn::default().as_slice()],
        )
        .body();
    assert_eq!((attr.attr_valid, attr.attr_valid_nsec), (0, 0));
    // Page cache kept only while open (close-to-open), not direct I/O, so
    // that shared writable mmap works.
    let open: OpenOut = driver.open(entry.nodeid, libc::O_RDWR).body();
    let flags = OpenOptions::from_bits_truncate(open.open_flags);
    assert!(!flags.intersects(OpenOptions::KEEP_CACHE | OpenOptions::DIRECT_IO));

    // Read-only shares are cached for long.
    let mut read_only = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    read_only.init();
    let entry: EntryOut = read_only.lookup(ROOT, HELLO).body();
    assert!(entry.entry_valid >= 60 && entry.attr_valid >= 60);
}

#[test]
fn machines_sharing_a_volume_see_each_others_changes() {
    let dir = fixture();
    let mut first = volume_driver(dir.path());
    let mut second = volume_driver(dir.path());

    let (entry, open) = first.create_file(ROOT, "shared.log", libc::O_WRONLY);
    first.write_all(entry.nodeid, open.fh, 0, b"from the first\n");

    let node = second.lookup_node(ROOT, "shared.log");
    let fh = second.open(node, libc::O_RDWR).body::<OpenOut>().fh;
    assert_eq!(
        second.read(node, fh, 0, 4096).payload(),
        b"from the first\n"
    );
    second.write_all(node, fh, 15, b"from the second\n");

    let attr: AttrOut = first
        .call(
            Opcode::Getattr,
            entry.nodeid,
            &[GetattrIn::default().as_slice()],
        )
        .body();
    assert_eq!(attr.attr.size, 31);
    assert_eq!(
        std::fs::read(dir.path().join("shared.log")).unwrap(),
        b"from the first\nfrom the second\n"
    );
}
