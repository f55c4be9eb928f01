//! Malformed chains and rings from a buggy or hostile driver: the device
//! returns what it can, drops what it cannot, and keeps serving.

use std::mem::size_of;

use fuse_backend_rs::abi::fuse_abi::{
    AttrOut, BatchForgetIn, ForgetIn, GetattrIn, InHeader, Opcode, OutHeader, ReadIn,
};
use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT};
use vm_memory::ByteValued;

use super::driver::{Desc, Driver, HIPRIO, MEM_SIZE, REQUEST};
use super::fixture;
use super::fuse::{cstr, message, ROOT};
use crate::devices::virtio::VIRTIO_F_VERSION_1;

const NEXT: u16 = VRING_DESC_F_NEXT as u16;
const INDIRECT: u16 = VRING_DESC_F_INDIRECT as u16;
const REPLY_LEN: u32 = 256;

fn initialized_driver() -> (tempfile::TempDir, Driver) {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    driver.init();
    (dir, driver)
}

/// The device still answers a well-formed request.
fn assert_serving(driver: &mut Driver) {
    let attr: AttrOut = driver
        .call(Opcode::Getattr, ROOT, &[GetattrIn::default().as_slice()])
        .body();
    assert_eq!(attr.attr.mode & libc::S_IFMT, libc::S_IFDIR);
}

/// A well-formed LOOKUP request, in a fresh guest buffer.
fn lookup_request(driver: &mut Driver) -> (u64, u32) {
    let msg = message(Opcode::Lookup as u32, ROOT, &[&cstr(super::HELLO)]);
    (driver.buffer_with(&msg), msg.len() as u32)
}

/// An InHeader whose `len` field is `len`, followed by `body`.
fn lying_message(opcode: Opcode, len: u32, body: &[u8]) -> Vec<u8> {
    let mut msg = message(opcode as u32, ROOT, &[body]);
    msg[..4].copy_from_slice(&len.to_le_bytes());
    msg
}

type Shape = fn(&mut Driver) -> Vec<Desc>;

/// Chains made of ordinary linked descriptors, each of which the device
/// must hand back with a used length of 0.
const ZERO_LENGTH_REPLIES: &[(&str, Shape)] = &[
    ("only a reply buffer", |d| {
        vec![Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN)]
    }),
    ("no reply buffer", |d| {
        let (req, len) = lookup_request(d);
        vec![Desc::readable(req, len)]
    }),
    ("request outside guest memory", |d| {
        vec![
            Desc::readable(MEM_SIZE + 0x1000, 64),
            Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
        ]
    }),
    ("reply outside guest memory", |d| {
        let (req, len) = lookup_request(d);
        vec![
            Desc::readable(req, len),
            Desc::writable(u64::MAX - 0xff, REPLY_LEN),
        ]
    }),
    ("request straddles the end of memory", |d| {
        vec![
            Desc::readable(MEM_SIZE - 16, 64),
            Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
        ]
    }),
    ("request length u32::MAX", |d| {
        let (req, _) = lookup_request(d);
        vec![
            Desc::readable(req, u32::MAX),
            Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
        ]
    }),
    ("zero-length descriptors", |d| {
        vec![
            Desc::readable(d.buffer(16), 0),
            Desc::writable(d.buffer(16), 0),
        ]
    }),
    ("truncated FUSE header", |d| {
        let (req, _) = lookup_request(d);
        vec![
            Desc::readable(req, size_of::<InHeader>() as u32 / 2),
            Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
        ]
    }),
    (
        "header split across descriptors, second half missing",
        |d| {
            let (req, _) = lookup_request(d);
            vec![
                Desc::readable(req, 8),
                Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
            ]
        },
    ),
    ("header len beyond the message", |d| {
        let msg = lying_message(Opcode::Lookup, 40 + 4096, &cstr("a"));
        vec![
            Desc::readable(d.buffer_with(&msg), msg.len() as u32),
            Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
        ]
    }),
    ("header len below the header size", |d| {
        let msg = lying_message(Opcode::Lookup, 4, &cstr("a"));
        vec![
            Desc::readable(d.buffer_with(&msg), msg.len() as u32),
            Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
        ]
    }),
    ("reply buffer smaller than a reply header", |d| {
        let (req, len) = lookup_request(d);
        vec![Desc::readable(req, len), Desc::writable(d.buffer(8), 8)]
    }),
    ("READ body missing", |d| {
        let msg = message(Opcode::Read as u32, ROOT, &[]);
        vec![
            Desc::readable(d.buffer_with(&msg), msg.len() as u32),
            Desc::writable(d.buffer(REPLY_LEN), REPLY_LEN),
        ]
    }),
];

#[test]
fn malformed_chains_are_returned_empty_and_serving_continues() {
    let (_dir, mut driver) = initialized_driver();
    for (name, shape) in ZERO_LENGTH_REPLIES {
        let descs = shape(&mut driver);
        let head = driver.write_chain(REQUEST, &descs);
        driver.post(REQUEST, head);
        driver.kick(REQUEST);
        let used = driver.wait_used(REQUEST, 1).remove(0);
        assert_eq!(used.head, u32::from(head), "{name}");
        assert_eq!(used.len, 0, "{name}");
        assert_serving(&mut driver);
    }
}

#[test]
fn malformed_chains_in_one_batch() {
    let (_dir, mut driver) = initialized_driver();
    let mut heads = Vec::new();
    for (_, shape) in ZERO_LENGTH_REPLIES {
        let descs = shape(&mut driver);
        let head = driver.write_chain(REQUEST, &descs);
        driver.post(REQUEST, head);
        heads.push(u32::from(head));
    }
    driver.kick(REQUEST);
    let used = driver.wait_used(REQUEST, heads.len() as u16);
    assert_eq!(used.iter().map(|u| u.head).collect::<Vec<_>>(), heads);
    assert_serving(&mut driver);
}

/// Writes any side tables into guest memory and returns the descriptors for
/// slot 40 and up, given a scratch buffer.
type Table = fn(&mut Driver, u64) -> Vec<Desc>;

/// Descriptor tables a driver could corrupt: each chain is written verbatim
/// at slot 40 and up, and must come back without harming the device.
const BROKEN_TABLES: &[(&str, Table)] = &[
    ("descriptor loop", |_, buf| {
        vec![
            Desc {
                addr: buf,
                len: 32,
                flags: NEXT,
                next: 41,
            },
            Desc {
                addr: buf,
                len: 32,
                flags: NEXT,
                next: 40,
            },
        ]
    }),
    ("next index past the table", |_, buf| {
        vec![Desc {
            addr: buf,
            len: 32,
            flags: NEXT,
            next: 5000,
        }]
    }),
    ("indirect table with a partial descriptor", |_, buf| {
        vec![Desc {
            addr: buf,
            len: 17,
            flags: INDIRECT,
            next: 0,
        }]
    }),
    ("indirect table outside guest memory", |_, _| {
        vec![Desc {
            addr: MEM_SIZE + 0x1000,
            len: 32,
            flags: INDIRECT,
            next: 0,
        }]
    }),
    ("nested indirect table", |d, buf| {
        let inner = vm_memory::GuestAddress(buf);
        let nested = virtio_queue::desc::RawDescriptor::from(
            virtio_queue::desc::split::Descriptor::new(buf, 16, INDIRECT, 0),
        );
        vm_memory::Bytes::write_obj(d.mem(), nested, inner).unwrap();
        vec![Desc {
            addr: buf,
            len: 16,
            flags: INDIRECT,
            next: 0,
        }]
    }),
    ("empty indirect table", |_, buf| {
        vec![Desc {
            addr: buf,
            len: 0,
            flags: INDIRECT,
            next: 0,
        }]
    }),
];

#[test]
fn corrupt_descriptor_tables_do_not_stop_the_device() {
    let (_dir, mut driver) = initialized_driver();
    for (name, table) in BROKEN_TABLES {
        let buf = driver.buffer(64);
        let descs = table(&mut driver, buf);
        driver.write_descs(REQUEST, 40, &descs);
        driver.post(REQUEST, 40);
        driver.kick(REQUEST);
        let used = driver.wait_used(REQUEST, 1).remove(0);
        assert_eq!(used.head, 40, "{name}");
        assert_eq!(used.len, 0, "{name}");
        assert_serving(&mut driver);
    }
}

#[test]
fn directions_swapped_writes_only_device_writable_buffers() {
    let (_dir, mut driver) = initialized_driver();
    let (request, len) = lookup_request(&mut driver);
    let intended_reply = driver.buffer(REPLY_LEN);
    let head = driver.write_chain(
        REQUEST,
        &[
            Desc::writable(request, len),
            Desc::readable(intended_reply, REPLY_LEN),
        ],
    );
    driver.post(REQUEST, head);
    driver.kick(REQUEST);
    let used = driver.wait_used(REQUEST, 1).remove(0);

    // The device parsed the zeroed readable buffer (opcode 0) and answered
    // ENOSYS into the only device-writable buffer.
    assert_eq!(used.len as usize, size_of::<OutHeader>());
    let header: OutHeader =
        vm_memory::Bytes::read_obj(driver.mem(), vm_memory::GuestAddress(request)).unwrap();
    assert_eq!(header.error, -libc::ENOSYS);
    let mut untouched = vec![0xff; REPLY_LEN as usize];
    vm_memory::Bytes::read_slice(
        driver.mem(),
        &mut untouched,
        vm_memory::GuestAddress(intended_reply),
    )
    .unwrap();
    assert!(
        untouched.iter().all(|&b| b == 0),
        "device wrote a device-readable buffer"
    );
    assert_serving(&mut driver);
}

#[test]
fn head_index_past_the_queue_is_dropped() {
    let (_dir, mut driver) = initialized_driver();
    driver.post(REQUEST, 5000);
    driver.kick(REQUEST);
    // The next chain comes back first: the bogus head was dropped.
    assert_serving(&mut driver);
}

fn reply_header(driver: &mut Driver, msg: &[u8]) -> (u32, OutHeader) {
    let reply = driver.call_with_capacity(msg, REPLY_LEN);
    (reply.used_len, reply.header())
}

#[test]
fn unknown_opcodes_get_enosys() {
    let (_dir, mut driver) = initialized_driver();
    // 7 and 19 are holes in the opcode space, 47 is COPY_FILE_RANGE, which
    // the server does not implement.
    for opcode in [0, 7, 19, 47, 50, 9999, u32::MAX] {
        let msg = message(opcode, ROOT, &[b"junk"]);
        let unique = InHeader::from_slice(&msg[..size_of::<InHeader>()])
            .unwrap()
            .unique;
        let (used_len, header) = reply_header(&mut driver, &msg);
        assert_eq!(header.error, -libc::ENOSYS, "opcode {opcode}");
        assert_eq!(header.unique, unique, "opcode {opcode}");
        assert_eq!(used_len as usize, size_of::<OutHeader>(), "opcode {opcode}");
    }
    assert_serving(&mut driver);
}

#[test]
fn oversized_header_len_gets_enomem() {
    let (_dir, mut driver) = initialized_driver();
    let msg = lying_message(Opcode::Lookup, 16 << 20, &cstr("a"));
    let (_, header) = reply_header(&mut driver, &msg);
    assert_eq!(header.error, -libc::ENOMEM);
    assert_serving(&mut driver);
}

#[test]
fn bogus_handles_and_names_get_errors() {
    let (_dir, mut driver) = initialized_driver();
    let file = driver.lookup_node(ROOT, super::HELLO);
    let read = ReadIn {
        fh: 0xdead_beef,
        size: 64,
        ..Default::default()
    };
    assert_eq!(
        driver.call(Opcode::Read, file, &[read.as_slice()]).errno(),
        libc::EBADF
    );
    assert_eq!(driver.lookup(0xdead_beef, "x").errno(), libc::EBADF);
    // A name with a slash must not reach outside its parent.
    assert_eq!(driver.lookup(ROOT, "sub/inner").errno(), libc::EINVAL);
    assert_serving(&mut driver);
}

#[test]
fn hiprio_forgets_of_unknown_or_lying_counts_are_harmless() {
    let (_dir, mut driver) = initialized_driver();
    let forget = message(
        Opcode::Forget as u32,
        0xdead_beef,
        &[ForgetIn { nlookup: u64::MAX }.as_slice()],
    );
    let batch = message(
        Opcode::BatchForget as u32,
        0,
        &[BatchForgetIn {
            count: 1000,
            dummy: 0,
        }
        .as_slice()],
    );
    let forget_root = message(
        Opcode::Forget as u32,
        ROOT,
        &[ForgetIn { nlookup: u64::MAX }.as_slice()],
    );
    let mut heads = Vec::new();
    for msg in [forget, batch, forget_root] {
        let req = driver.buffer_with(&msg);
        let head = driver.write_chain(HIPRIO, &[Desc::readable(req, msg.len() as u32)]);
        driver.post(HIPRIO, head);
        heads.push(u32::from(head));
    }
    driver.kick(HIPRIO);
    let used = driver.wait_used(HIPRIO, 3);
    assert_eq!(used.iter().map(|u| u.head).collect::<Vec<_>>(), heads);
    assert!(used.iter().all(|u| u.len == 0));
    assert_serving(&mut driver);
}

#[test]
fn a_corrupt_available_ring_breaks_only_its_queue() {
    let (_dir, mut driver) = initialized_driver();
    // An available index more than a queue's length ahead of the device.
    driver.set_avail_idx(HIPRIO, 1000);
    driver.kick(HIPRIO);
    driver.kick(HIPRIO);
    assert_serving(&mut driver);
    assert_eq!(driver.used_idx(HIPRIO), 0);
}

/// A READ with flags the host cannot give the handle's descriptor
/// (O_DIRECT on a directory opened with OPEN) leaves the descriptor open:
/// the passthrough would close it and keep the handle, which would then
/// read from (and on RELEASE close) whatever the VMM opens next under its
/// number.
#[test]
fn read_flags_never_close_the_handles_descriptor() {
    let (_dir, mut driver) = initialized_driver();
    let sub = driver.lookup_node(ROOT, "sub");
    let fh = driver.open_handle(sub);
    let mut read = |flags: i32| {
        let read = ReadIn {
            fh,
            size: 4096,
            flags: flags as u32,
            ..Default::default()
        };
        driver.call(Opcode::Read, sub, &[read.as_slice()]).errno()
    };
    assert_eq!(read(libc::O_DIRECT), libc::EISDIR);
    assert_eq!(read(0), libc::EISDIR);
}
