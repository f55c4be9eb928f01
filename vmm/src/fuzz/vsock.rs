//! vsock: a TX descriptor chain read by `vsock::packet`.

use super::guest::{guest_memory, laid_out_chain};
use crate::devices::virtio::vsock::packet::{Op, PacketError, PacketHeader, TxPacket, MAX_PAYLOAD};

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
    let mem = guest_memory();
    TxPacket::read_from(&mem, laid_out_chain(&mem, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::test_support::{corpus, run, MUTATIONS};

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
}
