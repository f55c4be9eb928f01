//! A read-only share refuses every mutation on the host side.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fuse_backend_rs::abi::fuse_abi::{
    AccessIn, CreateIn, FallocateIn, LinkIn, MkdirIn, MknodIn, Opcode, Rename2In, RenameIn,
    SetattrIn, SetxattrIn, WriteIn,
};
use fuse_backend_rs::api::filesystem::SetattrValid;
use vm_memory::ByteValued;

use super::driver::Driver;
use super::fuse::{cstr, Reply, ROOT};
use super::{fixture, HELLO, HELLO_CONTENTS};
use crate::devices::virtio::VIRTIO_F_VERSION_1;

/// Everything a mutation could change: per path, mode, size, mtime and
/// file contents.
pub(super) fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, Vec<u8>)> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let contents = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                pending.push(path.clone());
            }
            entries.insert(path, (meta.mode(), meta.size(), meta.mtime(), contents));
        }
    }
    entries
}

#[test]
fn mutations_get_erofs_and_leave_the_share_unchanged() {
    let dir = fixture();
    let before = snapshot(dir.path());
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    driver.init();
    let file = driver.lookup_node(ROOT, HELLO);
    let sub = driver.lookup_node(ROOT, "sub");
    let fh = driver.open_handle(file);

    let create = CreateIn {
        flags: (libc::O_RDWR | libc::O_CREAT) as u32,
        mode: libc::S_IFREG | 0o644,
        ..Default::default()
    };
    let mknod = MknodIn {
        mode: libc::S_IFREG | 0o644,
        ..Default::default()
    };
    let mkdir = MkdirIn {
        mode: 0o755,
        umask: 0,
    };
    let truncate = SetattrIn {
        valid: SetattrValid::SIZE.bits(),
        size: 0,
        ..Default::default()
    };
    let chmod = SetattrIn {
        valid: SetattrValid::MODE.bits(),
        mode: libc::S_IFREG | 0o777,
        ..Default::default()
    };
    let write = WriteIn {
        fh,
        size: 5,
        ..Default::default()
    };
    let fallocate = FallocateIn {
        fh,
        length: 1 << 20,
        ..Default::default()
    };
    let setxattr = SetxattrIn { size: 1, flags: 0 };

    let cases: Vec<(&str, Reply)> = vec![
        (
            "create",
            driver.call(Opcode::Create, ROOT, &[create.as_slice(), &cstr("new")]),
        ),
        (
            "mknod",
            driver.call(Opcode::Mknod, ROOT, &[mknod.as_slice(), &cstr("node")]),
        ),
        (
            "mkdir",
            driver.call(Opcode::Mkdir, ROOT, &[mkdir.as_slice(), &cstr("newdir")]),
        ),
        ("unlink", driver.call(Opcode::Unlink, ROOT, &[&cstr(HELLO)])),
        ("rmdir", driver.call(Opcode::Rmdir, ROOT, &[&cstr("sub")])),
        (
            "rename",
            driver.call(
                Opcode::Rename,
                ROOT,
                &[
                    RenameIn { newdir: sub }.as_slice(),
                    &cstr(HELLO),
                    &cstr("moved"),
                ],
            ),
        ),
        (
            "rename2",
            driver.call(
                Opcode::Rename2,
                ROOT,
                &[
                    Rename2In {
                        newdir: ROOT,
                        ..Default::default()
                    }
                    .as_slice(),
                    &cstr(HELLO),
                    &cstr("moved"),
                ],
            ),
        ),
        (
            "link",
            driver.call(
                Opcode::Link,
                ROOT,
                &[LinkIn { oldnodeid: file }.as_slice(), &cstr("hard")],
            ),
        ),
        (
            "symlink",
            driver.call(Opcode::Symlink, ROOT, &[&cstr("soft"), &cstr(HELLO)]),
        ),
        (
            "truncate",
            driver.call(Opcode::Setattr, file, &[truncate.as_slice()]),
        ),
        (
            "chmod",
            driver.call(Opcode::Setattr, file, &[chmod.as_slice()]),
        ),
        (
            "write",
            driver.call(Opcode::Write, file, &[write.as_slice(), b"XXXXX"]),
        ),
        (
            "fallocate",
            driver.call(Opcode::Fallocate, file, &[fallocate.as_slice()]),
        ),
        (
            "setxattr",
            driver.call(
                Opcode::Setxattr,
                file,
                &[setxattr.as_slice(), &cstr("user.x"), b"1"],
            ),
        ),
        (
            "removexattr",
            driver.call(Opcode::Removexattr, file, &[&cstr("user.x")]),
        ),
        ("open O_WRONLY", driver.open(file, libc::O_WRONLY)),
        ("open O_RDWR", driver.open(file, libc::O_RDWR)),
        (
            "open O_TRUNC",
            driver.open(file, libc::O_RDONLY | libc::O_TRUNC),
        ),
        (
            "open O_APPEND",
            driver.open(file, libc::O_RDONLY | libc::O_APPEND),
        ),
        (
            "open O_TMPFILE",
            driver.open(sub, libc::O_RDWR | libc::O_TMPFILE),
        ),
        (
            "access W_OK",
            driver.call(
                Opcode::Access,
                file,
                &[AccessIn {
                    mask: libc::W_OK as u32,
                    padding: 0,
                }
                .as_slice()],
            ),
        ),
    ];
    for (name, reply) in &cases {
        assert_eq!(reply.errno(), libc::EROFS, "{name}");
    }

    // Reads still work after all that.
    let read = driver.read(file, fh, 0, 4096);
    assert_eq!(read.payload(), HELLO_CONTENTS);
    let access_read = AccessIn {
        mask: libc::R_OK as u32,
        padding: 0,
    };
    assert_eq!(
        driver
            .call(Opcode::Access, file, &[access_read.as_slice()])
            .errno(),
        0
    );

    drop(driver);
    assert_eq!(snapshot(dir.path()), before);
}
