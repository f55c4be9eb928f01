//! The virtio-vsock wire format (virtio spec 5.10.6) and its transfer in and
//! out of guest descriptor chains.

use std::io::{Read, Write};

use virtio_queue::{DescriptorChain, Reader, Writer};

use crate::devices::virtio::GuestMemory;

/// Size of `struct virtio_vsock_hdr` on the wire.
pub const HEADER_SIZE: usize = 44;

/// Largest payload a single packet may carry (Linux's
/// VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). Anything larger from the guest is dropped.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// The well-known CID of the host.
pub const HOST_CID: u64 = 2;

/// `type` of a stream socket packet, the only socket type we implement.
pub const TYPE_STREAM: u16 = 1;

/// SHUTDOWN flag: the sender will receive no more data.
pub const SHUTDOWN_RCV: u32 = 1;
/// SHUTDOWN flag: the sender will send no more data.
pub const SHUTDOWN_SEND: u32 = 2;
/// Both SHUTDOWN flags: the sender is closing the connection.
pub const SHUTDOWN_BOTH: u32 = SHUTDOWN_RCV | SHUTDOWN_SEND;

/// Packet operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Op {
    Request = 1,
    Response = 2,
    Rst = 3,
    Shutdown = 4,
    Rw = 5,
    CreditUpdate = 6,
    CreditRequest = 7,
}

impl Op {
    /// Decodes a wire `op`; `None` for INVALID (0) and unknown values.
    pub fn from_raw(raw: u16) -> Option<Op> {
        Some(match raw {
            1 => Op::Request,
            2 => Op::Response,
            3 => Op::Rst,
            4 => Op::Shutdown,
            5 => Op::Rw,
            6 => Op::CreditUpdate,
            7 => Op::CreditRequest,
            _ => return None,
        })
    }
}

/// `struct virtio_vsock_hdr`, decoded to host byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketHeader {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub type_: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

impl PacketHeader {
    /// Decodes a little-endian wire header.
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> Self {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        let u16_at = |i: usize| u16::from_le_bytes(b[i..i + 2].try_into().unwrap_or_default());
        PacketHeader {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            type_: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        }
    }

    /// Encodes the header in little-endian wire format.
    pub fn to_bytes(self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.type_.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }

    /// The decoded operation, if known.
    pub fn op(&self) -> Option<Op> {
        Op::from_raw(self.op)
    }
}

/// Why a TX descriptor chain was dropped.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("invalid descriptor chain: {0}")]
    Chain(#[source] virtio_queue::Error),
    #[error("chain holds {0} readable bytes, less than a packet header")]
    ShortHeader(usize),
    #[error("payload length {claimed} exceeds the {available} bytes in the chain")]
    PayloadBeyondChain { claimed: u32, available: usize },
    #[error("payload length {0} exceeds the maximum packet size")]
    PayloadTooLarge(u32),
    #[error("RX chain holds {0} writable bytes, less than a packet header")]
    ShortRxBuffer(usize),
    #[error("cannot copy packet from or to guest memory: {0}")]
    Io(#[source] std::io::Error),
}

/// A packet the guest sent on the TX queue, copied out of guest memory.
#[derive(Debug)]
pub struct TxPacket {
    pub hdr: PacketHeader,
    /// The data of an RW packet; empty for every other operation.
    pub payload: Vec<u8>,
}

impl TxPacket {
    /// Reads a packet from the device-readable part of `chain`. The header's
    /// `len` is trusted only within the bytes the descriptors really hold.
    pub fn read_from(
        mem: &GuestMemory,
        chain: DescriptorChain<&GuestMemory>,
    ) -> Result<TxPacket, PacketError> {
        let mut reader: Reader<'_> = Reader::new(mem, chain).map_err(PacketError::Chain)?;
        let available = reader.available_bytes();
        if available < HEADER_SIZE {
            return Err(PacketError::ShortHeader(available));
        }
        let mut raw = [0u8; HEADER_SIZE];
        reader.read_exact(&mut raw).map_err(PacketError::Io)?;
        let hdr = PacketHeader::from_bytes(&raw);

        let mut payload = Vec::new();
        if hdr.op() == Some(Op::Rw) {
            let len = hdr.len as usize;
            if len > MAX_PAYLOAD {
                return Err(PacketError::PayloadTooLarge(hdr.len));
            }
            if len > reader.available_bytes() {
                return Err(PacketError::PayloadBeyondChain {
                    claimed: hdr.len,
                    available: reader.available_bytes(),
                });
            }
            payload.resize(len, 0);
            reader.read_exact(&mut payload).map_err(PacketError::Io)?;
        }
        Ok(TxPacket { hdr, payload })
    }
}

/// The device-writable part of an RX descriptor chain, ready to receive one
/// packet.
pub struct RxBuffer<'a> {
    writer: Writer<'a>,
}

impl<'a> RxBuffer<'a> {
    /// Maps the writable descriptors of `chain`; fails if they cannot hold
    /// at least a header.
    pub fn new(
        mem: &'a GuestMemory,
        chain: DescriptorChain<&'a GuestMemory>,
    ) -> Result<Self, PacketError> {
        let writer: Writer<'a> = Writer::new(mem, chain).map_err(PacketError::Chain)?;
        if writer.available_bytes() < HEADER_SIZE {
            return Err(PacketError::ShortRxBuffer(writer.available_bytes()));
        }
        Ok(RxBuffer { writer })
    }

    /// How many payload bytes fit after the header.
    pub fn payload_capacity(&self) -> usize {
        (self.writer.available_bytes() - HEADER_SIZE).min(MAX_PAYLOAD)
    }

    /// Writes `hdr` (with `len` set to the payload's length) and `payload`;
    /// returns the total bytes written, for the used ring.
    pub fn write(mut self, mut hdr: PacketHeader, payload: &[u8]) -> Result<u32, PacketError> {
        hdr.len = payload.len() as u32;
        self.writer
            .write_all(&hdr.to_bytes())
            .and_then(|()| self.writer.write_all(payload))
            .map_err(PacketError::Io)?;
        Ok(self.writer.bytes_written() as u32)
    }
}
