//! vsock: sequences of guest packets, host clients and host stream traffic
//! driving `vsock::muxer` and its connections' state machine and flow
//! control, against real unix sockets in a temporary directory, with what
//! the guest may expect of every packet it receives checked as it arrives.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{recv, send, MsgFlags};

use crate::devices::virtio::vsock::connection::HOST_BUF_ALLOC;
use crate::devices::virtio::vsock::muxer::{connect_nonblocking, Muxer, FIRST_LOCAL_PORT};
use crate::devices::virtio::vsock::packet::{
    Op, PacketHeader, TxPacket, HOST_CID, SHUTDOWN_BOTH, TYPE_STREAM,
};

const GUEST_CID: u64 = 3;
/// Connections the muxer allows at once: small, so that inputs reach it.
const CONNECTION_LIMIT: usize = 4;
/// Host ports with a listener (`v.sock_<port>`).
const LISTENED_PORTS: [u32; 2] = [1024, 1025];
/// A host port nothing listens on: a guest REQUEST to it gets RST.
const UNLISTENED_PORT: u32 = 1026;
/// The guest's ports, as the input picks them: this and the next three.
const GUEST_PORTS: u32 = 5000;
/// Host streams kept at once; connecting or accepting another drops the
/// oldest.
const MAX_STREAMS: usize = 16;
/// The largest RX buffer a drain offers.
const MAX_RX_BUFFER: usize = 4096;
/// Packets one connection can owe the guest in one drain besides data:
/// its REQUEST or RESPONSE, a SHUTDOWN, a CREDIT_UPDATE and an RST.
const CONTROL_PACKETS_PER_CONNECTION: u64 = 4;

/// Runs the operations in `data`, each a kind byte (mod 8) and its
/// arguments, against a muxer for guest CID 3 serving `v.sock` in a
/// temporary directory, with host listeners on ports 1024 and 1025 and at
/// most four connections:
///
/// - 0: the guest sends a packet: a shape byte (bit 0: wrong source CID,
///   bit 1: wrong destination CID, bit 2: raw ports follow the fixed
///   fields, bit 3: an RW's payload is filler rather than input bytes), a
///   ports byte (guest port 5000 + bits 0-1; host port by bits 2-4:
///   1024, 1025, 1026, or the host-initiated local ports 2^30 to
///   2^30 + 4), an op byte (mod 8: 0 is invalid), a type byte (bit 7
///   clear: STREAM, else the low 7 bits), a flags byte, buf_alloc and
///   fwd_cnt (u32), a length (u16): an RW's payload, as
///   `TxPacket::read_from` reads it;
/// - 1: a host client connects to `v.sock` and writes a line: a byte
///   below 0xc0 writes `CONNECT <5000 + byte % 4>\n`, else its low 6 bits
///   give how many raw input bytes follow;
/// - 2: the host accepts what the muxer connected to its listeners;
/// - 3: the host writes to a kept stream: an index byte (bit 7: filler),
///   a length (u16) and, unless filler, that many input bytes;
/// - 4: the host reads (bits 6-7 of the byte: 0), shuts down its write
///   half (1) or both (3), or drops (2) the kept stream its low 6 bits
///   pick;
/// - 5: the muxer handles its ready sockets;
/// - 6: every deadline passes;
/// - 7: the guest takes every packet the muxer has, into buffers of a
///   size (u16 mod 4097).
///
/// Then the muxer runs dry once more. No panic, whatever the order; every
/// packet is one the guest may get: from the host to the guest, a stream
/// packet with a known op and the host's buffer (but for an RST on no
/// connection); a REQUEST or RESPONSE
/// opens a connection the guest asked for or a host client did; data,
/// SHUTDOWN and CREDIT_UPDATE only on a connection open (announced and
/// not yet reset either way); data never past the credit the guest gave;
/// a drain ends within the packets its host data and pending replies
/// account for. The host reads no more than the guest sent. Everything
/// closes: the directory is removable at the end.
pub fn vsock_muxer_sequences(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut sequence = Sequence::new(dir.path());
    sequence.run(data);
    drop(sequence);
    dir.close().expect("the socket directory removed");
}

/// The muxer, the host's sockets around it, and what the guest knows.
struct Sequence {
    muxer: Muxer,
    uds_path: PathBuf,
    port_listeners: Vec<UnixListener>,
    streams: Vec<HostStream>,
    guest: GuestView,
    /// Bytes the host wrote into any stream: the most the guest can get.
    host_written: u64,
    /// Bytes the host read from streams accepted on its port listeners,
    /// which carry only what the guest sent.
    host_read: u64,
    #[cfg(test)]
    trace: Trace,
}

/// A stream the host holds.
struct HostStream {
    stream: UnixStream,
    /// Accepted on a port listener (a guest-initiated connection), not a
    /// client of `v.sock`.
    accepted: bool,
}

impl Sequence {
    fn new(dir: &Path) -> Self {
        let uds_path = dir.join("v.sock");
        let listener = nonblocking_listener(&uds_path);
        let port_listeners = LISTENED_PORTS
            .iter()
            .map(|port| nonblocking_listener(&dir.join(format!("v.sock_{port}"))))
            .collect();
        let muxer =
            Muxer::new(GUEST_CID, uds_path.clone(), listener, CONNECTION_LIMIT).expect("a muxer");
        Sequence {
            muxer,
            uds_path,
            port_listeners,
            streams: Vec::new(),
            guest: GuestView::default(),
            host_written: 0,
            host_read: 0,
            #[cfg(test)]
            trace: Trace::default(),
        }
    }

    fn run(&mut self, data: &[u8]) {
        let mut input = Input(data);
        while self.step(&mut input).is_some() {}
        self.muxer.process_events();
        self.drain(MAX_RX_BUFFER);
    }

    /// Runs the next operation; `None` once the input ends.
    fn step(&mut self, input: &mut Input) -> Option<()> {
        match input.byte()? % 8 {
            0 => {
                let packet = guest_packet(input)?;
                self.guest.send(&packet);
                self.muxer.handle_guest_packet(&packet);
            }
            1 => {
                let line = connect_line(input)?;
                self.connect_client(&line);
            }
            2 => self.accept(),
            3 => {
                let index = input.byte()?;
                let len = usize::from(input.u16()?);
                let bytes = if index & 0x80 != 0 {
                    vec![b'h'; len]
                } else {
                    input.take(len).to_vec()
                };
                self.write(usize::from(index & 0x7f), &bytes);
            }
            4 => {
                let byte = input.byte()?;
                self.end(usize::from(byte & 0x3f), byte >> 6);
            }
            5 => self.muxer.process_events(),
            6 => self
                .muxer
                .handle_deadlines(Instant::now() + Duration::from_secs(10)),
            _ => {
                let size = usize::from(input.u16()?) % (MAX_RX_BUFFER + 1);
                self.drain(size);
            }
        }
        Some(())
    }

    /// A host client connects to the muxer's listener and writes `line`.
    fn connect_client(&mut self, line: &[u8]) {
        // Non-blocking: a listener whose backlog is full refuses instead.
        let Ok(stream) = connect_nonblocking(&self.uds_path) else {
            return;
        };
        self.host_written += send_some(&stream, line) as u64;
        self.keep(HostStream {
            stream,
            accepted: false,
        });
    }

    /// Accepts every connection pending on the port listeners.
    fn accept(&mut self) {
        let mut accepted = Vec::new();
        for listener in &self.port_listeners {
            while let Ok((stream, _)) = listener.accept() {
                stream.set_nonblocking(true).expect("a non-blocking stream");
                accepted.push(HostStream {
                    stream,
                    accepted: true,
                });
            }
        }
        for stream in accepted {
            self.keep(stream);
        }
    }

    fn keep(&mut self, stream: HostStream) {
        if self.streams.len() == MAX_STREAMS {
            self.streams.remove(0);
        }
        self.streams.push(stream);
    }

    /// Writes what the stream `index` picks takes of `bytes`.
    fn write(&mut self, index: usize, bytes: &[u8]) {
        if let Some(host) = self.pick(index) {
            let written = send_some(&host.stream, bytes);
            self.host_written += written as u64;
        }
    }

    /// Reads all that is readable from, shuts down, or drops the stream
    /// `index` picks.
    fn end(&mut self, index: usize, how: u8) {
        let Some(host) = self.pick(index) else {
            return;
        };
        match how {
            0 => {
                let accepted = host.accepted;
                let read = read_available(&host.stream);
                if accepted {
                    self.host_read += read.len() as u64;
                    assert!(
                        self.host_read <= self.guest.bytes_sent,
                        "the host read {} bytes, the guest sent {}",
                        self.host_read,
                        self.guest.bytes_sent
                    );
                }
                #[cfg(test)]
                self.trace.read(accepted, &read);
            }
            // A socket shut down, or its peer gone, is no failure here.
            1 => _ = host.stream.shutdown(Shutdown::Write),
            3 => _ = host.stream.shutdown(Shutdown::Both),
            _ => {
                let index = index % self.streams.len();
                self.streams.remove(index);
            }
        }
    }

    fn pick(&self, index: usize) -> Option<&HostStream> {
        if self.streams.is_empty() {
            return None;
        }
        self.streams.get(index % self.streams.len())
    }

    /// Hands the guest every packet the muxer has, each into a buffer of
    /// `size` bytes. Each packet carries data the host wrote and the guest
    /// has not had (at least a byte), or is one of the few control packets
    /// a connection can owe, or a reset answering a packet the guest sent
    /// since the last drain: past that many, the muxer is spinning.
    fn drain(&mut self, size: usize) {
        let mut buf = vec![0u8; size];
        let undelivered = self.host_written.saturating_sub(self.guest.bytes_received);
        let bound = undelivered
            + self.guest.packets_since_drain
            + CONTROL_PACKETS_PER_CONNECTION * CONNECTION_LIMIT as u64;
        let mut packets = 0u64;
        while let Some((hdr, len)) = self.muxer.next_rx_packet(&mut buf) {
            packets += 1;
            assert!(
                packets <= bound,
                "the muxer does not run dry: {packets} packets, {undelivered} bytes undelivered"
            );
            assert!(
                len <= size,
                "{len} bytes of payload in a {size}-byte buffer"
            );
            self.guest.receive(&hdr, &buf[..len]);
            #[cfg(test)]
            self.trace
                .packets
                .push((self.trace.drains, hdr, buf[..len].to_vec()));
        }
        self.guest.packets_since_drain = 0;
        #[cfg(test)]
        {
            self.trace.drains += 1;
        }
    }
}

/// The guest's side of every connection, from the packets it sent and
/// received: enough to tell which packets it may get.
#[derive(Default)]
struct GuestView {
    /// By (host port, guest port).
    connections: HashMap<(u32, u32), ConnectionView>,
    /// RW payload bytes sent with the right CIDs.
    bytes_sent: u64,
    /// RW payload bytes received.
    bytes_received: u64,
    /// Packets sent since the last drain: each may earn one reset.
    packets_since_drain: u64,
}

#[derive(Default)]
struct ConnectionView {
    /// A REQUEST or RESPONSE opened it and no RST ended it since.
    open: bool,
    /// The guest sent a REQUEST, not answered or reset since.
    requested: bool,
    /// Credit from the guest's latest well-formed packet here.
    buf_alloc: u32,
    fwd_cnt: u32,
    /// Bytes received since it opened (wrapping, as the counters do).
    received: u32,
}

impl GuestView {
    /// Notes a packet the guest sends. The muxer drops one with wrong
    /// CIDs, and takes credit only from a well-formed one (a stream
    /// packet with a known op), on the connection it creates (a REQUEST)
    /// or finds. Before a host-initiated connection's first guest packet
    /// it has no credit at all: this view's credit is then none or
    /// earlier packets', never less than the muxer's.
    fn send(&mut self, packet: &TxPacket) {
        self.packets_since_drain += 1;
        let hdr = &packet.hdr;
        if hdr.src_cid != GUEST_CID || hdr.dst_cid != HOST_CID {
            return;
        }
        let view = self
            .connections
            .entry((hdr.dst_port, hdr.src_port))
            .or_default();
        if hdr.op == Op::Rst as u16 {
            // Well-formed, it ends the connection; not, it resets it.
            view.open = false;
            view.requested = false;
        }
        if hdr.type_ != TYPE_STREAM {
            return;
        }
        let Some(op) = hdr.op() else {
            return;
        };
        view.buf_alloc = hdr.buf_alloc;
        view.fwd_cnt = hdr.fwd_cnt;
        match op {
            Op::Request => view.requested = true,
            Op::Rw => self.bytes_sent += packet.payload.len() as u64,
            _ => {}
        }
    }

    /// Checks a packet the guest receives is one it may get.
    fn receive(&mut self, hdr: &PacketHeader, payload: &[u8]) {
        assert_eq!(
            (hdr.src_cid, hdr.dst_cid, hdr.type_),
            (HOST_CID, GUEST_CID, TYPE_STREAM),
            "{hdr:?}"
        );
        let op = hdr.op().unwrap_or_else(|| panic!("unknown op: {hdr:?}"));
        // An RST answering a packet on no connection carries no credit.
        if op != Op::Rst || hdr.buf_alloc != 0 {
            assert_eq!(hdr.buf_alloc, HOST_BUF_ALLOC, "{hdr:?}");
        }
        let expected_flags = if op == Op::Shutdown { SHUTDOWN_BOTH } else { 0 };
        assert_eq!(hdr.flags, expected_flags, "{hdr:?}");
        if op != Op::Rw {
            assert!(payload.is_empty(), "a payload with {hdr:?}");
        }
        let view = self
            .connections
            .entry((hdr.src_port, hdr.dst_port))
            .or_default();
        match op {
            Op::Rst => view.open = false,
            Op::Request | Op::Response => {
                assert!(!view.open, "{op:?} on an open connection: {hdr:?}");
                if op == Op::Request {
                    assert!(hdr.src_port >= FIRST_LOCAL_PORT, "{hdr:?}");
                } else {
                    assert!(view.requested, "RESPONSE to no REQUEST: {hdr:?}");
                }
                view.requested = false;
                view.open = true;
                view.received = 0;
            }
            Op::Rw => {
                assert!(view.open, "data on a connection not open: {hdr:?}");
                assert!(!payload.is_empty(), "an empty RW: {hdr:?}");
                let in_flight = view.received.wrapping_sub(view.fwd_cnt);
                let credit = view.buf_alloc.saturating_sub(in_flight);
                assert!(
                    payload.len() <= credit as usize,
                    "{} bytes with {credit} bytes of credit: {hdr:?}",
                    payload.len()
                );
                view.received = view.received.wrapping_add(payload.len() as u32);
                self.bytes_received += payload.len() as u64;
            }
            Op::Shutdown | Op::CreditUpdate => {
                assert!(view.open, "{op:?} on a connection not open: {hdr:?}");
            }
            Op::CreditRequest => panic!("the host asked for credit: {hdr:?}"),
        }
    }
}

/// The input, read from the front.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.0.get(..N)?.try_into().ok()?;
        self.0 = &self.0[N..];
        Some(bytes)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// Up to `len` bytes: fewer where the input ends.
    fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

/// A guest packet as `TxPacket::read_from` would produce it (see
/// [`vsock_muxer_sequences`], operation 0).
fn guest_packet(input: &mut Input) -> Option<TxPacket> {
    let [shape, ports, op, type_, flags] = input.array()?;
    let buf_alloc = input.u32()?;
    let fwd_cnt = input.u32()?;
    let len = input.u16()?;
    let (src_port, dst_port) = if shape & 4 != 0 {
        (input.u32()?, input.u32()?)
    } else {
        let host_port = match (ports >> 2) & 7 {
            0 => LISTENED_PORTS[0],
            1 => LISTENED_PORTS[1],
            2 => UNLISTENED_PORT,
            local => FIRST_LOCAL_PORT + u32::from(local - 3),
        };
        (GUEST_PORTS + u32::from(ports & 3), host_port)
    };
    let op = u16::from(op % 8);
    let payload = match Op::from_raw(op) {
        Some(Op::Rw) if shape & 8 != 0 => vec![b'g'; usize::from(len)],
        Some(Op::Rw) => input.take(usize::from(len)).to_vec(),
        _ => Vec::new(),
    };
    let hdr = PacketHeader {
        src_cid: if shape & 1 != 0 {
            GUEST_CID + 1
        } else {
            GUEST_CID
        },
        dst_cid: if shape & 2 != 0 { GUEST_CID } else { HOST_CID },
        src_port,
        dst_port,
        len: if op == Op::Rw as u16 {
            payload.len() as u32
        } else {
            u32::from(len)
        },
        type_: if type_ & 0x80 != 0 {
            u16::from(type_ & 0x7f)
        } else {
            TYPE_STREAM
        },
        op,
        flags: u32::from(flags),
        buf_alloc,
        fwd_cnt,
    };
    Some(TxPacket { hdr, payload })
}

/// A host client's first line (see [`vsock_muxer_sequences`], operation
/// 1).
fn connect_line(input: &mut Input) -> Option<Vec<u8>> {
    let byte = input.byte()?;
    Some(if byte < 0xc0 {
        format!("CONNECT {}\n", GUEST_PORTS + u32::from(byte % 4)).into_bytes()
    } else {
        input.take(usize::from(byte & 0x3f)).to_vec()
    })
}

fn nonblocking_listener(path: &Path) -> UnixListener {
    let listener = UnixListener::bind(path).expect("a listener");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    listener
}

/// Sends what the stream takes of `bytes` at once, without blocking or
/// SIGPIPE; a full or closed stream takes nothing.
fn send_some(stream: &UnixStream, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        return 0;
    }
    send(
        stream.as_raw_fd(),
        bytes,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    )
    .unwrap_or(0)
}

/// All that is readable from `stream` now.
fn read_available(stream: &UnixStream) -> Vec<u8> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match recv(stream.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return read,
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e) if std::io::Error::from(e).kind() == ErrorKind::Interrupted => {}
            Err(_) => return read,
        }
    }
}

/// What happened in a run, for the tests to check the seeds reach the
/// code as laid out.
#[cfg(test)]
#[derive(Default)]
struct Trace {
    /// Every packet the guest received: in which drain (counted from
    /// 0), and with its payload.
    packets: Vec<(usize, PacketHeader, Vec<u8>)>,
    /// Drains so far.
    drains: usize,
    /// What the host read from the streams accepted on its port listeners.
    host_read: Vec<u8>,
    /// What the host's clients of `v.sock` read.
    clients_read: Vec<u8>,
}

#[cfg(test)]
impl Trace {
    fn read(&mut self, accepted: bool, bytes: &[u8]) {
        let into = if accepted {
            &mut self.host_read
        } else {
            &mut self.clients_read
        };
        into.extend_from_slice(bytes);
    }

    /// (op, host port, guest port) of every packet the guest received.
    fn ops(&self) -> Vec<(Op, u32, u32)> {
        self.packets
            .iter()
            .map(|(_, hdr, _)| (hdr.op().expect("a known op"), hdr.src_port, hdr.dst_port))
            .collect()
    }

    /// The data the guest received, in order.
    fn guest_read(&self) -> Vec<u8> {
        self.packets
            .iter()
            .flat_map(|(_, _, payload)| payload.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::test_support::{run, seed, COSTLY_MUTATIONS};

    /// Runs the seed `name` and returns what happened.
    fn trace(name: &str) -> Trace {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut sequence = Sequence::new(dir.path());
        sequence.run(&seed("vsock_muxer_sequences", name));
        std::mem::take(&mut sequence.trace)
    }

    const LOCAL: u32 = FIRST_LOCAL_PORT;

    #[test]
    fn vsock_muxer_seeds_reach_the_muxer_as_laid_out() {
        use Op::*;

        let relayed = trace("guest-connects-and-relays");
        assert_eq!(relayed.host_read, b"hello from the guest");
        assert_eq!(relayed.guest_read(), b"hello from the host");
        let ops = relayed.ops();
        assert_eq!(ops[0], (Response, 1024, 5000));
        assert!(ops.contains(&(CreditUpdate, 1024, 5000)), "{ops:?}");
        assert_eq!(ops[ops.len() - 1], (Shutdown, 1024, 5000));

        let accepted = trace("host-connects");
        assert_eq!(
            accepted.clients_read,
            format!("OK {LOCAL}\npong").as_bytes()
        );
        assert_eq!(accepted.guest_read(), b"ping");
        assert_eq!(accepted.ops()[0], (Request, LOCAL, 5001));
        assert_eq!(accepted.host_read, b"");

        let limited = trace("past-the-limit").ops();
        assert_eq!(
            limited,
            [
                (Rst, 1026, 5001),
                (Rst, 1025, 5000),
                (Response, 1024, 5000),
                (Response, 1024, 5001),
                (Response, 1024, 5002),
                (Response, 1024, 5003),
            ]
        );

        // Wrong CIDs go unanswered; a bad type or op is reset.
        let bad = trace("bad-cids-and-types").ops();
        assert_eq!(
            bad,
            [
                (Rst, 1024, 5001),
                (Rst, 1024, 5002),
                (Rst, u32::MAX, 7),
                (Response, 1024, 5003),
                (Rst, 1024, 5003),
            ]
        );

        // The host reads all of it, as its stream takes it, and the
        // guest hears it has room again.
        let filled = trace("guest-fills-the-host");
        assert_eq!(filled.host_read, [b'g'; 4 * 65535]);
        assert_eq!(
            filled.ops(),
            [(Response, 1024, 5000), (CreditUpdate, 1024, 5000)]
        );

        let overrun = trace("credit-overrun").ops();
        assert_eq!(overrun, [(Response, 1024, 5000), (Rst, 1024, 5000)]);

        // Nothing is relayed until the guest gives credit.
        let zero = trace("zero-credit-window");
        let drains: Vec<_> = zero
            .packets
            .iter()
            .map(|(drain, hdr, _)| (*drain, hdr.op()))
            .collect();
        assert_eq!(drains, [(0, Some(Response)), (2, Some(Rw))]);
        assert_eq!(zero.guest_read(), b"wait for it");

        let expired = trace("connect-times-out").ops();
        assert_eq!(expired, [(Request, LOCAL, 5002), (Rst, LOCAL, 5002)]);

        // The guest accepts after the client left.
        let gone = trace("client-gone").ops();
        assert_eq!(gone, [(Request, LOCAL, 5000), (Rst, LOCAL, 5000)]);

        // A bad line, a long one, one cut short: no REQUEST.
        assert_eq!(trace("bad-connect-lines").ops(), []);
    }

    #[test]
    fn vsock_muxer_sequences_corpus_and_mutations() {
        run(
            "vsock_muxer_sequences",
            vsock_muxer_sequences,
            COSTLY_MUTATIONS,
        );
    }
}
