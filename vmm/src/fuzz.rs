//! Fuzz targets for what a guest's driver hands the VMM: each a plain
//! `fn(&[u8])` that must not panic whatever the bytes, and asserts what
//! must hold of any input. They need no VM: a target lays its input out
//! in a small guest memory as a driver would.
//!
//! They run two ways: `cargo test -p hull-vmm` on the checked-in corpus
//! (`vmm/fuzz/corpus/<target>/`) and a bounded number of mutations of it,
//! and under libFuzzer for long runs from the `vmm/fuzz` crate (not part
//! of the workspace; see `vmm/fuzz/README.md`), which enables this module
//! with the `fuzzing` feature.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::mem::size_of;
use std::path::Path;

use fuse_backend_rs::abi::fuse_abi::OutHeader;
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::{DescriptorChain, Queue, QueueT};
use vm_memory::{ByteValued, Bytes, GuestAddress};

use crate::devices::virtio::fs::backend::{new_server, Access};
use crate::devices::virtio::fs::worker::serve_chain;
use crate::devices::virtio::vsock::packet::{Op, PacketError, PacketHeader, TxPacket, MAX_PAYLOAD};
use crate::devices::virtio::GuestMemory;

/// Descriptors in the target's queue.
const QUEUE_SIZE: u16 = 16;
/// Where the descriptor table, the available and used rings, and the
/// buffers the descriptors point at lie in guest memory.
const DESC_TABLE: u64 = 0;
const AVAIL_RING: u64 = 0x1000;
const USED_RING: u64 = 0x2000;
const BUFFERS: u64 = 0x1_0000;
/// The guest memory: room for the largest packet's buffers.
const MEMORY_SIZE: usize = 0x3_0000;

/// Reads a vsock TX packet from a descriptor chain the input lays out: its
/// first 256 bytes are the descriptor table (16 descriptors: address,
/// length, flags, next), the rest lies at 0x10000, where the buffers
/// usually are. The chain starts at descriptor 0. A packet read holds a
/// header that encodes to itself and, for RW, exactly the payload its
/// header claims, never more than a packet may; anything else is dropped
/// with a short error.
pub fn vsock_tx_packet(data: &[u8]) {
    match read_tx_packet(data) {
        Ok(packet) => {
            assert_eq!(PacketHeader::from_bytes(&packet.hdr.to_bytes()), packet.hdr);
            match packet.hdr.op() {
                Some(Op::Rw) => {
                    assert_eq!(packet.payload.len(), packet.hdr.len as usize);
                    assert!(packet.payload.len() <= MAX_PAYLOAD);
                }
                _ => assert!(packet.payload.is_empty()),
            }
        }
        Err(err) => {
            let line = err.to_string();
            assert!(line.len() < 256, "{line:.256}");
        }
    }
}

/// The TX packet read from the chain `data` lays out (see
/// [`vsock_tx_packet`]).
fn read_tx_packet(data: &[u8]) -> Result<TxPacket, PacketError> {
    let table_len = data.len().min(usize::from(QUEUE_SIZE) * 16);
    let (table, buffers) = data.split_at(table_len);
    let buffers = &buffers[..buffers.len().min(MEMORY_SIZE - BUFFERS as usize)];
    let mem = guest_memory();
    mem.write_slice(buffers, GuestAddress(BUFFERS))
        .expect("the buffers fit");
    TxPacket::read_from(&mem, chain(&mem, table))
}

/// A guest memory of [`MEMORY_SIZE`] bytes.
fn guest_memory() -> GuestMemory {
    GuestMemory::from_ranges(&[(GuestAddress(0), MEMORY_SIZE)]).expect("a small guest memory")
}

/// The chain a driver offers with descriptor table `table` (at most
/// [`QUEUE_SIZE`] descriptors), starting at descriptor 0.
fn chain<'a>(mem: &'a GuestMemory, table: &[u8]) -> DescriptorChain<&'a GuestMemory> {
    mem.write_slice(&[0; QUEUE_SIZE as usize * 16], GuestAddress(DESC_TABLE))
        .expect("the descriptor table fits");
    mem.write_slice(table, GuestAddress(DESC_TABLE))
        .expect("the descriptor table fits");
    // The available ring: no flags, one entry, descriptor 0.
    for (offset, value) in [(0, 0u16), (2, 1), (4, 0)] {
        mem.write_obj(value, GuestAddress(AVAIL_RING + offset))
            .expect("the available ring fits");
    }
    let mut queue = Queue::new(QUEUE_SIZE).expect("a valid queue size");
    queue.set_desc_table_address(Some(DESC_TABLE as u32), Some(0));
    queue.set_avail_ring_address(Some(AVAIL_RING as u32), Some(0));
    queue.set_used_ring_address(Some(USED_RING as u32), Some(0));
    queue.set_ready(true);
    queue
        .pop_descriptor_chain(mem)
        .expect("the chain the available ring names")
}

/// Requests one `virtio_fs_requests` input may hold.
const MAX_FS_REQUESTS: usize = 16;
/// Where a FUSE request and its reply buffer lie, and the largest of each.
const FS_REQUEST: u64 = BUFFERS;
const FS_REPLY: u64 = 0x2_0000;
const FS_BUFFER_LEN: u32 = 0x1_0000;
/// The share's files.
const FS_FILES: [(&str, &[u8]); 2] = [
    ("hello.txt", b"hello from the host\n"),
    ("sub/inner", b"inner"),
];

/// Serves `data` as FUSE requests to a read-only virtio-fs share, as the
/// device's worker serves a guest's request queue: the first byte picks
/// the share (bit 0: whole, or a subset showing `hello.txt` and `sub` as
/// image layers and file binds are), the rest is up to 16 requests, each
/// as long as its header's `len` says (within what is left), each in a
/// chain of a readable descriptor and a 64 KiB writable one, on one
/// server, so a request may use the nodes and handles earlier ones got.
/// Every reply fits its buffer and starts with a header giving its
/// length, and the share and what lies beside it are unchanged.
///
/// Writable shares are not fuzzed here: a request may allocate disk
/// (FUSE_FALLOCATE) and a long run would fill the host's.
pub fn virtio_fs_requests(data: &[u8]) {
    for reply in fs_replies(data) {
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
fn fs_replies(data: &[u8]) -> Vec<Vec<u8>> {
    let Some((&mode, mut requests)) = data.split_first() else {
        return Vec::new();
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let share = dir.path().join("share");
    fs::create_dir_all(share.join("sub")).expect("the share");
    for (name, contents) in FS_FILES {
        fs::write(share.join(name), contents).expect("a file of the share");
    }
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
    let mem = guest_memory();
    let mut replies = Vec::new();
    while !requests.is_empty() && replies.len() < MAX_FS_REQUESTS {
        let claimed = requests.get(..4).map_or(0, |len| {
            u32::from_le_bytes(len.try_into().expect("4 bytes"))
        });
        let len = (claimed as usize).clamp(1, requests.len().min(FS_BUFFER_LEN as usize));
        let (request, rest) = requests.split_at(len);
        requests = rest;
        mem.write_slice(request, GuestAddress(FS_REQUEST))
            .expect("the request fits");
        let table = [
            descriptor(FS_REQUEST, len as u32, VRING_DESC_F_NEXT as u16, 1),
            descriptor(FS_REPLY, FS_BUFFER_LEN, VRING_DESC_F_WRITE as u16, 0),
        ]
        .concat();
        let reply_len = serve_chain(server.as_ref(), &mem, chain(&mem, &table));
        assert!(reply_len <= FS_BUFFER_LEN, "a reply of {reply_len} bytes");
        let mut reply = vec![0; reply_len as usize];
        mem.read_slice(&mut reply, GuestAddress(FS_REPLY))
            .expect("the reply buffer");
        replies.push(reply);
    }
    drop(server);
    assert_unchanged(dir.path());
    replies
}

/// A descriptor as a driver writes it in the table.
fn descriptor(addr: u64, len: u32, flags: u16, next: u16) -> Vec<u8> {
    [
        &addr.to_le_bytes()[..],
        &len.to_le_bytes(),
        &flags.to_le_bytes(),
        &next.to_le_bytes(),
    ]
    .concat()
}

/// Asserts `dir` holds only the share, as [`virtio_fs_requests`] made it.
fn assert_unchanged(dir: &Path) {
    let names = |dir: &Path| -> BTreeSet<String> {
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
    };
    assert_eq!(names(dir), ["share".to_string()].into());
    let share = dir.join("share");
    assert_eq!(
        names(&share),
        ["hello.txt".to_string(), "sub".to_string()].into()
    );
    assert_eq!(names(&share.join("sub")), ["inner".to_string()].into());
    for (name, contents) in FS_FILES {
        assert_eq!(
            fs::read(share.join(name)).expect("a file of the share"),
            contents
        );
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::Rng;

    use super::*;

    /// Mutations of each corpus file run per target: bounded, and the
    /// same on every run (a fixed seed). A virtio-fs input makes a share
    /// and a server, so fewer of those.
    const MUTATIONS: usize = 256;
    const FS_MUTATIONS: usize = 96;

    /// The corpus of `target`, file name and bytes, sorted by name.
    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        hull_fuzz_corpus::corpus(env!("CARGO_MANIFEST_DIR"), target)
    }

    /// `input` changed the way fuzzers change inputs: bytes flipped or set
    /// to boundary values, a little-endian u32 (a descriptor's length or
    /// address, a header's `len`) rewritten, a range repeated, or the
    /// input cut short.
    fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        if out.is_empty() {
            return vec![rng.gen()];
        }
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..out.len());
            match rng.gen_range(0..5) {
                0 => out[at] ^= 1 << rng.gen_range(0..8),
                1 => out[at] = [0, 1, 2, 4, 5, 0x7f, 0xff][rng.gen_range(0..7)],
                2 => {
                    let value =
                        [0u32, 1, 44, 0x1_0000, 0x1_0001, 0x2_ffff, u32::MAX][rng.gen_range(0..7)];
                    let end = (at + 4).min(out.len());
                    out[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
                }
                3 => {
                    let end = rng.gen_range(at..=out.len().min(at + 64));
                    let copy = out[at..end].to_vec();
                    out.splice(at..at, copy);
                }
                _ => out.truncate(at),
            }
            if out.is_empty() {
                break;
            }
        }
        out
    }

    /// Runs `target` on its corpus and on `mutations` mutations of each
    /// input.
    fn run(name: &str, target: fn(&[u8]), mutations: usize) {
        hull_fuzz_corpus::run(env!("CARGO_MANIFEST_DIR"), name, target, mutations, mutate);
    }

    /// The seeds reach the packet parser: the valid ones read as the
    /// packets they hold, the hostile ones fail as they should.
    #[test]
    fn vsock_seeds_read_as_laid_out() {
        let seeds: Vec<_> = corpus("vsock_tx_packet");
        let read = |name: &str| {
            let (_, input) = seeds.iter().find(|(file, _)| file == name).expect(name);
            read_tx_packet(input)
        };
        assert_eq!(read("request").unwrap().hdr.op(), Some(Op::Request));
        assert_eq!(read("rw-one-descriptor").unwrap().payload, b"hello");
        assert_eq!(read("rw-two-descriptors").unwrap().payload, b"hello");
        assert_eq!(read("indirect").unwrap().payload, b"\0\0\0");
        assert!(matches!(
            read("rw-claims-more"),
            Err(PacketError::PayloadBeyondChain {
                claimed: 100,
                available: 10
            })
        ));
        assert!(matches!(
            read("rw-too-large"),
            Err(PacketError::PayloadTooLarge(0x1_0001))
        ));
        assert!(matches!(read("short"), Err(PacketError::ShortHeader(10))));
        // A looping chain ends at the queue's size, so its header reads.
        assert_eq!(read("loop").unwrap().hdr.op(), Some(Op::Request));
        assert!(read("device-writable").is_err());
    }

    #[test]
    fn vsock_tx_packet_corpus_and_mutations() {
        run("vsock_tx_packet", vsock_tx_packet, MUTATIONS);
    }

    #[test]
    fn virtio_fs_requests_corpus_and_mutations() {
        run("virtio_fs_requests", virtio_fs_requests, FS_MUTATIONS);
    }

    /// The error of each reply (0 for success; none for no reply), and
    /// the body of the one at `body`.
    fn outcomes(seed: &str, body: usize) -> (Vec<Option<i32>>, Vec<u8>) {
        let seeds = corpus("virtio_fs_requests");
        let (_, input) = seeds.iter().find(|(file, _)| file == seed).expect(seed);
        let replies = fs_replies(input);
        let errors = replies
            .iter()
            .map(|reply| Some(OutHeader::from_slice(reply.get(..16)?)?.error))
            .collect();
        (errors, replies[body][size_of::<OutHeader>()..].to_vec())
    }

    /// The seeds reach the server: files read, subsets hide names, every
    /// write is refused, lying lengths are dropped.
    #[test]
    fn virtio_fs_seeds_reach_the_server() {
        let (errors, read) = outcomes("read-a-file", 4);
        // FORGET has no reply.
        assert_eq!(errors, [[Some(0); 7].as_slice(), &[None]].concat());
        assert_eq!(read, FS_FILES[0].1);
        let (errors, _) = outcomes("list-a-subset", 0);
        assert_eq!(errors[..3], [Some(0), Some(-libc::ENOENT), Some(0)]);
        let (errors, _) = outcomes("writes-refused", 0);
        assert_eq!(errors[..2], [Some(0), Some(0)]);
        assert!(
            errors[2..].iter().all(|&e| e == Some(-libc::EROFS)),
            "{errors:?}"
        );
    }
}
