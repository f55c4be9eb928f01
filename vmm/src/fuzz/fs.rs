//! virtio-fs: FUSE requests served by the worker's `serve_chain`, on
//! read-only shares (whole, or a subset as image layers are) and on
//! writable ones (a volume, and a single-file bind).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::mem::size_of;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fuse_backend_rs::abi::fuse_abi::{Opcode, OutHeader};
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use vm_memory::{ByteValued, Bytes, GuestAddress};

use super::guest::{chain, descriptor, guest_memory, BUFFERS};
use crate::devices::virtio::fs::backend::{new_server, Access, FuseServer};
use crate::devices::virtio::fs::worker::serve_chain;

/// Requests one input may hold.
const MAX_REQUESTS: usize = 16;
/// Where a FUSE request and its reply buffer lie, and the largest of each.
const REQUEST: u64 = BUFFERS;
const REPLY: u64 = 0x2_0000;
const BUFFER_LEN: u32 = 0x1_0000;
/// The share's files.
const FILES: [(&str, &[u8]); 2] = [
    ("hello.txt", b"hello from the host\n"),
    ("sub/inner", b"inner"),
];
/// The file a single-file bind shows.
const BOUND_FILE: &str = "hello.txt";
/// Beside a writable share: a directory and a file in it, which no request
/// may reach.
const BESIDE: &str = "beside";
const CANARY: &str = "canary";
const CANARY_CONTENTS: &[u8] = b"not the guest's\n";
/// The most disk one FUSE_FALLOCATE of a writable-share input may ask for.
const MAX_FALLOCATE: u64 = 1 << 20;

/// Serves `data` as FUSE requests to a read-only virtio-fs share, as the
/// device's worker serves a guest's request queue: the first byte picks
/// the share (bit 0: whole, or a subset showing `hello.txt` and `sub` as
/// image layers and file binds are), the rest is up to 16 requests, each
/// as long as its header's `len` says (within what is left), each in a
/// chain of a readable descriptor and a 64 KiB writable one, on one
/// server, so a request may use the nodes and handles earlier ones got.
/// Every reply fits its buffer and starts with a header giving its
/// length, and the share and what lies beside it are unchanged.
pub fn virtio_fs_requests(data: &[u8]) {
    check_replies(&read_only_replies(data));
}

/// Serves `data` as FUSE requests to a writable share, as
/// [`virtio_fs_requests`] does to a read-only one: the first byte picks
/// the share (bit 0 clear: a volume, the whole directory; set: a
/// single-file bind, the directory with only `hello.txt` visible), the
/// rest is up to 16 requests. Every reply fits its buffer and gives its length; nothing
/// beside the share changes (a directory and a file in it, down to their
/// change times), nor, in a single-file bind, anything in the share but
/// the file.
///
/// A FUSE_FALLOCATE's length is cut to 1 MiB before it is served, so that
/// a long run cannot fill the host's disk; the device leaves that bound to
/// the volume's host filesystem.
pub fn virtio_fs_writable_requests(data: &[u8]) {
    let Some((&mode, requests)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let share = make_share(dir.path());
    let beside = dir.path().join(BESIDE);
    fs::create_dir(&beside).expect("the directory beside the share");
    fs::write(beside.join(CANARY), CANARY_CONTENTS).expect("the canary");
    let single_file = mode & 1 == 1;
    let hidden = share.join("sub");
    // What no request may change: beside the share, and in a single-file
    // bind the share's root and what it hides.
    let mut fixed = vec![beside.clone(), beside.join(CANARY)];
    if single_file {
        fixed.extend([share.clone(), hidden.clone(), hidden.join("inner")]);
    }
    let before: Vec<Snapshot> = fixed.iter().map(|path| Snapshot::of(path)).collect();

    let visible = single_file.then(|| [CString::new(BOUND_FILE).expect("no NUL")].into());
    let access = Access {
        read_only: false,
        stable: false,
        visible,
    };
    let server = new_server(&share, access).expect("a writable server");
    check_replies(&serve_requests(server.as_ref(), requests, bound_allocation));
    drop(server);

    assert_eq!(
        names(dir.path()),
        set(&["share", BESIDE]),
        "beside the share"
    );
    assert_eq!(names(&beside), set(&[CANARY]), "beside the share");
    for (path, before) in fixed.iter().zip(&before) {
        assert_eq!(&Snapshot::of(path), before, "{}", path.display());
    }
    assert_eq!(
        fs::read(beside.join(CANARY)).expect("the canary"),
        CANARY_CONTENTS
    );
    if single_file {
        assert_eq!(
            names(&share),
            set(&[BOUND_FILE, "sub"]),
            "a single-file bind"
        );
        assert_eq!(names(&hidden), set(&["inner"]), "a hidden directory");
        assert_eq!(fs::read(hidden.join("inner")).expect("inner"), FILES[1].1);
    }
}

/// Caps the length of the FUSE_FALLOCATE in `request`, if it is one, at
/// [`MAX_FALLOCATE`].
fn bound_allocation(request: &mut [u8]) {
    /// Where the opcode and `fuse_fallocate_in`'s `length` are.
    const OPCODE: usize = 4;
    const LENGTH: usize = 40 + 16;
    let opcode = request
        .get(OPCODE..OPCODE + 4)
        .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("4 bytes")));
    if opcode != Some(Opcode::Fallocate as u32) {
        return;
    }
    if let Some(length) = request.get_mut(LENGTH..LENGTH + 8) {
        let asked = u64::from_le_bytes((&*length).try_into().expect("8 bytes"));
        length.copy_from_slice(&asked.min(MAX_FALLOCATE).to_le_bytes());
    }
}

/// What a request could change of a file or directory's inode.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Snapshot {
    fn of(path: &Path) -> Self {
        let meta = fs::symlink_metadata(path).expect("a file the target made");
        Snapshot {
            ino: meta.ino(),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            nlink: meta.nlink(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Asserts every reply fits its buffer and its header gives its length.
fn check_replies(replies: &[Vec<u8>]) {
    for reply in replies {
        if !reply.is_empty() {
            let header = reply
                .get(..size_of::<OutHeader>())
                .and_then(OutHeader::from_slice)
                .expect("a reply starts with its header");
            assert_eq!(header.len as usize, reply.len(), "the reply's header");
        }
    }
}

/// The replies (empty for none) to the requests in `data`, served as
/// [`virtio_fs_requests`] says; asserts the share is unchanged after.
fn read_only_replies(data: &[u8]) -> Vec<Vec<u8>> {
    let Some((&mode, requests)) = data.split_first() else {
        return Vec::new();
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let share = make_share(dir.path());
    let visible = (mode & 1 == 1).then(|| {
        ["hello.txt", "sub"]
            .map(|name| CString::new(name).expect("no NUL"))
            .into()
    });
    let access = Access {
        read_only: true,
        stable: true,
        visible,
    };
    let server = new_server(&share, access).expect("a read-only server");
    let replies = serve_requests(server.as_ref(), requests, |_| {});
    drop(server);
    assert_read_only_unchanged(dir.path());
    replies
}

/// Makes `share` in `dir`, holding [`FILES`], and returns its path.
fn make_share(dir: &Path) -> std::path::PathBuf {
    let share = dir.join("share");
    fs::create_dir_all(share.join("sub")).expect("the share");
    for (name, contents) in FILES {
        fs::write(share.join(name), contents).expect("a file of the share");
    }
    share
}

/// Serves up to [`MAX_REQUESTS`] requests from `requests` with `server`,
/// each as long as its header claims (within what is left), changed by
/// `prepare` before it is laid out; returns each reply (empty for none).
fn serve_requests(
    server: &dyn FuseServer,
    mut requests: &[u8],
    prepare: fn(&mut [u8]),
) -> Vec<Vec<u8>> {
    let mem = guest_memory();
    let mut replies = Vec::new();
    while !requests.is_empty() && replies.len() < MAX_REQUESTS {
        let claimed = requests.get(..4).map_or(0, |len| {
            u32::from_le_bytes(len.try_into().expect("4 bytes"))
        });
        let len = (claimed as usize).clamp(1, requests.len().min(BUFFER_LEN as usize));
        let (request, rest) = requests.split_at(len);
        requests = rest;
        let mut request = request.to_vec();
        prepare(&mut request);
        mem.write_slice(&request, GuestAddress(REQUEST))
            .expect("the request fits");
        let table = [
            descriptor(REQUEST, len as u32, VRING_DESC_F_NEXT as u16, 1),
            descriptor(REPLY, BUFFER_LEN, VRING_DESC_F_WRITE as u16, 0),
        ]
        .concat();
        let reply_len = serve_chain(server, &mem, chain(&mem, &table));
        assert!(reply_len <= BUFFER_LEN, "a reply of {reply_len} bytes");
        let mut reply = vec![0; reply_len as usize];
        mem.read_slice(&mut reply, GuestAddress(REPLY))
            .expect("the reply buffer");
        replies.push(reply);
    }
    replies
}

/// The names in `dir`.
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("a directory the target made")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into()
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// Asserts `dir` holds only the read-only share, as
/// [`virtio_fs_requests`] made it.
fn assert_read_only_unchanged(dir: &Path) {
    assert_eq!(names(dir), set(&["share"]));
    let share = dir.join("share");
    assert_eq!(names(&share), set(&["hello.txt", "sub"]));
    assert_eq!(names(&share.join("sub")), set(&["inner"]));
    for (name, contents) in FILES {
        assert_eq!(
            fs::read(share.join(name)).expect("a file of the share"),
            contents
        );
    }
}

#[cfg(test)]
mod tests {
    use fuse_backend_rs::abi::fuse_abi::OutHeader;

    use super::*;
    use crate::fuzz::test_support::{run, seed, COSTLY_MUTATIONS};

    #[test]
    fn virtio_fs_requests_corpus_and_mutations() {
        run("virtio_fs_requests", virtio_fs_requests, COSTLY_MUTATIONS);
    }

    #[test]
    fn virtio_fs_writable_requests_corpus_and_mutations() {
        run(
            "virtio_fs_writable_requests",
            virtio_fs_writable_requests,
            COSTLY_MUTATIONS / 2,
        );
    }

    /// The error of each reply (0 for success; none for no reply).
    fn errors(replies: &[Vec<u8>]) -> Vec<Option<i32>> {
        replies
            .iter()
            .map(|reply| Some(OutHeader::from_slice(reply.get(..16)?)?.error))
            .collect()
    }

    /// The errors of the replies to the read-only seed `name`, and the
    /// body of the one at `body`.
    fn outcomes(name: &str, body: usize) -> (Vec<Option<i32>>, Vec<u8>) {
        let replies = read_only_replies(&seed("virtio_fs_requests", name));
        (
            errors(&replies),
            replies[body][size_of::<OutHeader>()..].to_vec(),
        )
    }

    /// The seeds reach the server: files read, subsets hide names, every
    /// write is refused, lying lengths are dropped.
    #[test]
    fn virtio_fs_seeds_reach_the_server() {
        let (errors, read) = outcomes("read-a-file", 4);
        // FORGET has no reply.
        assert_eq!(errors, [[Some(0); 7].as_slice(), &[None]].concat());
        assert_eq!(read, FILES[0].1);
        let (errors, _) = outcomes("list-a-subset", 0);
        assert_eq!(errors[..3], [Some(0), Some(-libc::ENOENT), Some(0)]);
        let (errors, _) = outcomes("writes-refused", 0);
        assert_eq!(errors[..2], [Some(0), Some(0)]);
        assert!(
            errors[2..].iter().all(|&e| e == Some(-libc::EROFS)),
            "{errors:?}"
        );
    }

    /// The errors of the replies to the writable seed `name`, in the
    /// share it picks, and the share's directory after.
    fn writable_outcomes(name: &str) -> (Vec<Option<i32>>, tempfile::TempDir) {
        let input = seed("virtio_fs_writable_requests", name);
        let (&mode, requests) = input.split_first().expect("a mode byte");
        let dir = tempfile::tempdir().unwrap();
        let share = make_share(dir.path());
        let visible = (mode & 1 == 1).then(|| [CString::new(BOUND_FILE).unwrap()].into());
        let access = Access {
            read_only: false,
            stable: false,
            visible,
        };
        let server = new_server(&share, access).unwrap();
        let replies = serve_requests(server.as_ref(), requests, bound_allocation);
        (errors(&replies), dir)
    }

    /// The writable seeds reach the server: a volume takes writes, new
    /// files and directories; a single-file bind takes writes to its file
    /// and refuses new names at its root; an escape by name fails.
    #[test]
    fn writable_seeds_reach_the_server() {
        let (errors, dir) = writable_outcomes("volume-writes");
        assert!(errors.iter().all(|&e| e == Some(0)), "{errors:?}");
        let share = dir.path().join("share");
        assert_eq!(fs::read(share.join("made")).unwrap(), b"owned");
        assert!(share.join("new").is_dir());
        assert_eq!(fs::metadata(share.join("made")).unwrap().len(), 5);

        let (errors, dir) = writable_outcomes("single-file-writes");
        let share = dir.path().join("share");
        assert_eq!(
            errors[..4],
            [Some(0), Some(0), Some(0), Some(0)],
            "{errors:?}"
        );
        assert!(
            errors[4..].iter().all(|&e| e.is_some_and(|e| e < 0)),
            "{errors:?}"
        );
        assert_eq!(
            fs::read(share.join(BOUND_FILE)).unwrap(),
            b"owned from the host\n"
        );
        assert_eq!(names(&share), set(&[BOUND_FILE, "sub"]));

        let (errors, _) = writable_outcomes("escape-by-name");
        assert!(
            errors[1..].iter().all(|&e| e.is_some_and(|e| e < 0)),
            "{errors:?}"
        );
    }

    #[test]
    fn fallocate_lengths_are_capped() {
        let mut request = [0u8; 72];
        request[4..8].copy_from_slice(&(Opcode::Fallocate as u32).to_le_bytes());
        request[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
        bound_allocation(&mut request);
        assert_eq!(request[56..64], MAX_FALLOCATE.to_le_bytes());
        let mut write = request;
        write[4..8].copy_from_slice(&(Opcode::Write as u32).to_le_bytes());
        write[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
        bound_allocation(&mut write);
        assert_eq!(write[56..64], u64::MAX.to_le_bytes());
    }
}
