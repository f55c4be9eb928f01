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

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

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
    let mem =
        GuestMemory::from_ranges(&[(GuestAddress(0), MEMORY_SIZE)]).expect("a small guest memory");
    mem.write_slice(table, GuestAddress(DESC_TABLE))
        .expect("the descriptor table fits");
    mem.write_slice(buffers, GuestAddress(BUFFERS))
        .expect("the buffers fit");
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
    let chain = queue
        .pop_descriptor_chain(&mem)
        .expect("the chain the available ring names");
    TxPacket::read_from(&mem, chain)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Mutations of each corpus file run per target: bounded, and the
    /// same on every run (a fixed seed).
    const MUTATIONS: usize = 256;

    /// The corpus of `target`, file name and bytes, sorted by name.
    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .expect("the corpus directory")
            .map(|entry| {
                let path = entry.expect("a corpus entry").path();
                let name = path.file_name().expect("a name").to_string_lossy().into();
                (name, fs::read(&path).expect("a corpus file"))
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {target}");
        files
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

    /// Runs `target` on its corpus and on mutations of it; a failing
    /// input is saved to the temporary directory.
    fn run(name: &str, target: fn(&[u8])) {
        let mut rng = StdRng::seed_from_u64(17);
        for (file, input) in corpus(name) {
            target(&input);
            for _ in 0..MUTATIONS {
                let mutated = mutate(&mut rng, &input);
                if std::panic::catch_unwind(|| target(&mutated)).is_err() {
                    let saved = std::env::temp_dir().join(format!("hull-fuzz-{name}-crash"));
                    fs::write(&saved, &mutated).expect("save the crashing input");
                    panic!(
                        "{name}: a mutation of {file} failed; input saved in {}",
                        saved.display()
                    );
                }
            }
        }
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
        run("vsock_tx_packet", vsock_tx_packet);
    }
}
