//! Malformed chains and rings from a buggy or hostile driver: the device
//! answers with IOERR where the chain has a status byte, drops the chain
//! where it has none, never panics, and keeps serving.

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT};
use vm_memory::{Bytes, GuestAddress};

use super::driver::{Desc, Driver, MEM_SIZE, NO_STATUS};
use super::sparse_image;
use crate::devices::virtio::VIRTIO_F_VERSION_1;

const SECTORS: u64 = 64;
const NEXT: u16 = VRING_DESC_F_NEXT as u16;
const INDIRECT: u16 = VRING_DESC_F_INDIRECT as u16;

/// What the device must do with a chain.
enum Expect {
    /// Answer with this status; the used length is 1.
    Status(u32),
    /// Return the chain with a used length of 0, writing no status.
    Dropped,
}

type Shape = fn(&mut Driver) -> Vec<Desc>;

const SHAPES: &[(&str, Expect, Shape)] = &[
    (
        "only a status byte",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| vec![d.status()],
    ),
    ("no status byte", Expect::Dropped, |d| {
        vec![d.header(VIRTIO_BLK_T_IN, 0)]
    }),
    ("status buffer readable", Expect::Dropped, |d| {
        let header = d.header(VIRTIO_BLK_T_IN, 0);
        vec![header, Desc::readable(d.buffer(1, NO_STATUS), 1)]
    }),
    ("zero-length status buffer", Expect::Dropped, |d| {
        let header = d.header(VIRTIO_BLK_T_IN, 0);
        vec![header, Desc::writable(d.buffer(1, NO_STATUS), 0)]
    }),
    ("status outside guest memory", Expect::Dropped, |d| {
        vec![d.header(VIRTIO_BLK_T_IN, 0), Desc::writable(MEM_SIZE, 1)]
    }),
    ("header writable", Expect::Status(VIRTIO_BLK_S_IOERR), |d| {
        let header = d.header(VIRTIO_BLK_T_IN, 0);
        let header = Desc::writable(header.addr, header.len);
        vec![header, Desc::writable(d.buffer(512, 0), 512), d.status()]
    }),
    (
        "header truncated",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| {
            let header = d.header(VIRTIO_BLK_T_IN, 0);
            let header = Desc::readable(header.addr, 8);
            vec![header, Desc::writable(d.buffer(512, 0), 512), d.status()]
        },
    ),
    (
        "header outside guest memory",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| vec![Desc::readable(u64::MAX - 7, 16), d.status()],
    ),
    (
        "IN into a readable buffer",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| {
            let header = d.header(VIRTIO_BLK_T_IN, 0);
            vec![header, Desc::readable(d.buffer(512, 0), 512), d.status()]
        },
    ),
    (
        "OUT from a writable buffer",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| {
            let header = d.header(VIRTIO_BLK_T_OUT, 0);
            vec![header, Desc::writable(d.buffer(512, 0), 512), d.status()]
        },
    ),
    (
        "data outside guest memory",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| {
            let header = d.header(VIRTIO_BLK_T_IN, 0);
            vec![header, Desc::writable(MEM_SIZE + 0x1000, 512), d.status()]
        },
    ),
    (
        "data straddles the end of memory",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| {
            let header = d.header(VIRTIO_BLK_T_OUT, 0);
            vec![header, Desc::readable(MEM_SIZE - 256, 512), d.status()]
        },
    ),
    (
        "data buffer longer than size_max",
        Expect::Status(VIRTIO_BLK_S_IOERR),
        |d| {
            let header = d.header(VIRTIO_BLK_T_IN, 0);
            let len = (1 << 20) + 512;
            vec![header, Desc::writable(d.buffer(len, 0), len), d.status()]
        },
    ),
    // The chain passes 2^32 bytes at its status buffer, so the chain ends
    // at the data buffer, whose last byte is outside guest memory.
    ("data length u32::MAX", Expect::Dropped, |d| {
        let header = d.header(VIRTIO_BLK_T_IN, 0);
        vec![
            header,
            Desc::writable(d.buffer(512, 0), u32::MAX),
            d.status(),
        ]
    }),
    ("more buffers than seg_max", Expect::Dropped, |d| {
        let header = d.header(VIRTIO_BLK_T_OUT, 0);
        let data = Desc::readable(d.buffer(512, 0), 512);
        [vec![header], vec![data; 140], vec![d.status()]].concat()
    }),
    (
        "zero-length data buffers",
        Expect::Status(VIRTIO_BLK_S_OK),
        |d| {
            let header = d.header(VIRTIO_BLK_T_IN, 0);
            let data = Desc::writable(d.buffer(512, 0), 0);
            vec![header, data, data, d.status()]
        },
    ),
];

fn driver() -> (tempfile::TempDir, Driver) {
    let (dir, path) = sparse_image(SECTORS);
    (dir, Driver::new(&path, false, VIRTIO_F_VERSION_1))
}

/// The device still serves a well-formed request.
fn assert_serving(d: &mut Driver) {
    let data: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
    assert_eq!(d.write_sectors(3, &data), VIRTIO_BLK_S_OK as u8);
    assert_eq!(d.read_sectors(3, 1024), (VIRTIO_BLK_S_OK as u8, data));
}

#[test]
fn malformed_chains_are_answered_or_dropped_and_serving_goes_on() {
    let (_dir, mut d) = driver();
    for (name, expect, shape) in SHAPES {
        let descs = shape(&mut d);
        let status = *descs.last().unwrap();
        let used = d.submit(&descs);
        match expect {
            Expect::Status(code) => {
                assert_eq!(used.len, 1, "{name}");
                assert_eq!(u32::from(d.status_of(status)), *code, "{name}");
            }
            Expect::Dropped => assert_eq!(used.len, 0, "{name}"),
        }
        assert_serving(&mut d);
    }
}

#[test]
fn a_looping_chain_is_dropped() {
    let (_dir, mut d) = driver();
    let header = d.header(VIRTIO_BLK_T_IN, 0);
    let data = d.buffer(512, 0);
    // Slot 200 -> 201 -> 200 -> ...
    d.write_descs(
        200,
        &[
            Desc {
                flags: NEXT,
                next: 201,
                ..header
            },
            Desc {
                flags: NEXT | Desc::writable(0, 0).flags,
                next: 200,
                ..Desc::writable(data, 512)
            },
        ],
    );
    d.post(200);
    d.kick();
    assert_eq!(d.wait_used(1)[0].len, 0);
    assert_serving(&mut d);
}

#[test]
fn a_bogus_head_index_is_skipped() {
    let (_dir, mut d) = driver();
    d.post(1000);
    d.kick();
    assert_serving(&mut d);
}

#[test]
fn bad_indirect_tables_are_dropped_and_good_ones_served() {
    let (_dir, mut d) = driver();
    // A table length that is not a whole number of descriptors.
    let table = d.buffer(64, 0);
    let head = d.write_chain(&[Desc {
        flags: INDIRECT,
        ..Desc::readable(table, 40)
    }]);
    d.post(head);
    d.kick();
    assert_eq!(d.wait_used(1)[0].len, 0);

    // A good table: header, data, status.
    let header = d.header(VIRTIO_BLK_T_IN, 3);
    let data = Desc::writable(d.buffer(512, 0), 512);
    let status = d.status();
    let table = d.buffer(48, 0);
    let mut raw = Vec::new();
    for (i, desc) in [header, data, status].iter().enumerate() {
        let flags = desc.flags | if i < 2 { NEXT } else { 0 };
        raw.extend(desc.addr.to_le_bytes());
        raw.extend(desc.len.to_le_bytes());
        raw.extend(flags.to_le_bytes());
        raw.extend((i as u16 + 1).to_le_bytes());
    }
    d.mem().write_slice(&raw, GuestAddress(table)).unwrap();
    let head = d.write_chain(&[Desc {
        flags: INDIRECT,
        ..Desc::readable(table, 48)
    }]);
    d.post(head);
    d.kick();
    assert_eq!(d.wait_used(1)[0].len, 513);
    assert_eq!(d.status_of(status), VIRTIO_BLK_S_OK as u8);
    assert_serving(&mut d);
}
