//! A writable share showing only some entries of its root: how a single
//! host file is bind-mounted, its parent directory (which may be `/etc`)
//! shared with only the file visible.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use fuse_backend_rs::abi::fuse_abi::{
    AccessIn, EntryOut, FsyncIn, GetxattrIn, LinkIn, MkdirIn, MknodIn, Opcode, OpenIn, OpenOut,
    Rename2In, RenameIn, SetattrIn, SetxattrIn,
};
use fuse_backend_rs::api::filesystem::SetattrValid;
use vm_memory::ByteValued;

use super::fuse::{cstr, Reply, ROOT};
use super::read_only::snapshot;
use super::subset::{root_listing, subset_driver};
use super::{fixture, HELLO, HELLO_CONTENTS};

#[test]
fn only_the_visible_file_is_found_or_listed() {
    let dir = fixture();
    let mut driver = subset_driver(dir.path(), false, &[HELLO]);

    assert_eq!(driver.lookup(ROOT, "sub").errno(), libc::ENOENT);
    assert_eq!(driver.lookup(ROOT, "missing").errno(), libc::ENOENT);
    driver.lookup_node(ROOT, HELLO);
    // Walking up from the root stays there.
    for name in [".", ".."] {
        assert_eq!(driver.lookup_node(ROOT, name), ROOT, "{name}");
    }
    for opcode in [Opcode::Readdir, Opcode::Readdirplus] {
        assert_eq!(root_listing(&mut driver, opcode), [HELLO], "{opcode:?}");
    }
}

#[test]
fn hidden_entries_stay_hidden_among_many() {
    let dir = fixture();
    for i in 0..1000 {
        std::fs::write(dir.path().join(format!("passwd-{i:04}")), b"secret").unwrap();
    }
    let mut driver = subset_driver(dir.path(), false, &[HELLO]);
    for opcode in [Opcode::Readdir, Opcode::Readdirplus] {
        assert_eq!(root_listing(&mut driver, opcode), [HELLO], "{opcode:?}");
    }
    assert_eq!(driver.lookup(ROOT, "passwd-0000").errno(), libc::ENOENT);
}

#[test]
fn writes_to_the_visible_file_reach_the_host() {
    let dir = fixture();
    let host_file = dir.path().join(HELLO);
    let mut driver = subset_driver(dir.path(), false, &[HELLO]);
    let file = driver.lookup_node(ROOT, HELLO);
    let fh = driver.open(file, libc::O_RDWR).body::<OpenOut>().fh;

    driver.write_all(file, fh, 0, b"HELLO");
    let fsync = FsyncIn {
        fh,
        ..Default::default()
    };
    assert_eq!(
        driver
            .call(Opcode::Fsync, file, &[fsync.as_slice()])
            .errno(),
        0
    );
    assert_eq!(std::fs::read(&host_file).unwrap(), b"HELLO from the host\n");

    let truncate = SetattrIn {
        valid: SetattrValid::SIZE.bits(),
        size: 5,
        ..Default::default()
    };
    assert_eq!(driver.setattr(file, truncate).errno(), 0);
    let chmod = SetattrIn {
        valid: SetattrValid::MODE.bits(),
        mode: libc::S_IFREG | 0o600,
        ..Default::default()
    };
    assert_eq!(driver.setattr(file, chmod).errno(), 0);
    let setxattr = SetxattrIn { size: 1, flags: 0 };
    let set = driver.call(
        Opcode::Setxattr,
        file,
        &[setxattr.as_slice(), &cstr("user.x"), b"1"],
    );
    assert_eq!(set.errno(), 0);

    assert_eq!(std::fs::read(&host_file).unwrap(), b"HELLO");
    let meta = std::fs::metadata(&host_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let getxattr = GetxattrIn {
        size: 16,
        padding: 0,
    };
    let got = driver.call(
        Opcode::Getxattr,
        file,
        &[getxattr.as_slice(), &cstr("user.x")],
    );
    assert_eq!(got.payload(), b"1");
}

/// A request that would change the root, and the errno it must get.
struct Refused {
    what: &'static str,
    reply: Reply,
    errno: i32,
}

#[test]
fn the_root_cannot_be_changed() {
    let dir = fixture();
    let root_mode = std::fs::metadata(dir.path()).unwrap().mode();
    let before = snapshot(dir.path());
    let mut driver = subset_driver(dir.path(), false, &[HELLO, "sub"]);
    let file = driver.lookup_node(ROOT, HELLO);
    let sub = driver.lookup_node(ROOT, "sub");

    let rename_to = |newdir| RenameIn { newdir };
    let mknod = MknodIn {
        mode: libc::S_IFREG | 0o644,
        ..Default::default()
    };
    let mkdir = MkdirIn {
        mode: 0o755,
        umask: 0,
    };
    let chmod = SetattrIn {
        valid: SetattrValid::MODE.bits(),
        mode: libc::S_IFDIR | 0o777,
        ..Default::default()
    };
    let tmpfile = OpenIn {
        flags: (libc::O_RDWR | libc::O_TMPFILE) as u32,
        fuse_flags: 0,
    };
    let write_access = AccessIn {
        mask: libc::W_OK as u32,
        padding: 0,
    };
    let exchange = Rename2In {
        newdir: sub,
        flags: libc::RENAME_EXCHANGE,
        padding: 0,
    };
    let eacces = |what, reply| Refused {
        what,
        reply,
        errno: libc::EACCES,
    };
    let eperm = |what, reply| Refused {
        what,
        reply,
        errno: libc::EPERM,
    };
    let cases = [
        eacces("create", driver.create(ROOT, "new", libc::O_RDWR)),
        eacces(
            "create of the visible name",
            driver.create(ROOT, HELLO, libc::O_RDWR),
        ),
        eacces(
            "mknod",
            driver.call(Opcode::Mknod, ROOT, &[mknod.as_slice(), &cstr("node")]),
        ),
        eacces(
            "mkdir",
            driver.call(Opcode::Mkdir, ROOT, &[mkdir.as_slice(), &cstr("newdir")]),
        ),
        eacces(
            "symlink",
            driver.call(
                Opcode::Symlink,
                ROOT,
                &[&cstr("soft"), &cstr("/etc/shadow")],
            ),
        ),
        eacces(
            "link into the root",
            driver.call(
                Opcode::Link,
                ROOT,
                &[LinkIn { oldnodeid: file }.as_slice(), &cstr("hard")],
            ),
        ),
        eacces("unlink", driver.call(Opcode::Unlink, ROOT, &[&cstr(HELLO)])),
        eacces("rmdir", driver.call(Opcode::Rmdir, ROOT, &[&cstr("sub")])),
        eacces(
            "rename out of the root",
            driver.call(
                Opcode::Rename,
                ROOT,
                &[rename_to(sub).as_slice(), &cstr(HELLO), &cstr("moved")],
            ),
        ),
        eacces(
            "rename into the root",
            driver.call(
                Opcode::Rename,
                sub,
                &[rename_to(ROOT).as_slice(), &cstr("inner"), &cstr("moved")],
            ),
        ),
        eacces(
            "rename onto itself",
            driver.call(
                Opcode::Rename,
                ROOT,
                &[rename_to(ROOT).as_slice(), &cstr(HELLO), &cstr(HELLO)],
            ),
        ),
        eacces(
            "rename exchange",
            driver.call(
                Opcode::Rename2,
                ROOT,
                &[exchange.as_slice(), &cstr(HELLO), &cstr("inner")],
            ),
        ),
        eacces(
            "open O_TMPFILE",
            driver.call(Opcode::Open, ROOT, &[tmpfile.as_slice()]),
        ),
        eacces(
            "opendir O_TMPFILE",
            driver.call(Opcode::Opendir, ROOT, &[tmpfile.as_slice()]),
        ),
        eacces(
            "access W_OK",
            driver.call(Opcode::Access, ROOT, &[write_access.as_slice()]),
        ),
        eperm("chmod of the root", driver.setattr(ROOT, chmod)),
        eperm(
            "setxattr on the root",
            driver.call(
                Opcode::Setxattr,
                ROOT,
                &[
                    SetxattrIn { size: 1, flags: 0 }.as_slice(),
                    &cstr("user.x"),
                    b"1",
                ],
            ),
        ),
        eperm(
            "removexattr on the root",
            driver.call(Opcode::Removexattr, ROOT, &[&cstr("user.x")]),
        ),
    ];
    for case in &cases {
        assert_eq!(case.reply.errno(), case.errno, "{}", case.what);
    }
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(std::fs::metadata(dir.path()).unwrap().mode(), root_mode);

    // Below the root, a visible directory is as writable as any.
    let (created, _) = driver.create_file(sub, "new", libc::O_WRONLY);
    assert_ne!(created.nodeid, 0);
    let renamed = driver.call(
        Opcode::Rename,
        sub,
        &[rename_to(sub).as_slice(), &cstr("inner"), &cstr("renamed")],
    );
    assert_eq!(renamed.errno(), 0);
    let linked = driver.call(
        Opcode::Link,
        sub,
        &[LinkIn { oldnodeid: file }.as_slice(), &cstr("hard")],
    );
    linked.body::<EntryOut>();
    assert!(dir.path().join("sub/new").is_file());
    assert_eq!(
        std::fs::read(dir.path().join("sub/renamed")).unwrap(),
        b"inner"
    );
    assert_eq!(
        std::fs::read(dir.path().join("sub/hard")).unwrap(),
        HELLO_CONTENTS
    );
}
