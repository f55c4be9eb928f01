//! Drives a real [`Vsock`] worker through virtqueues in plain guest memory,
//! playing the guest driver by hand, against real host unix sockets.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use virtio_bindings::bindings::virtio_ring::{
    VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::connection::HOST_BUF_ALLOC;
use super::packet::{Op, PacketHeader, HEADER_SIZE, SHUTDOWN_BOTH, TYPE_STREAM};
use super::{Vsock, VsockError};
use crate::devices::virtio::{
    ActiveQueue, GuestMemory, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1,
};

const GUEST_CID: u64 = 3;
const MEM_SIZE: usize = 16 << 20;
const QUEUE_SIZE: u16 = 256;
const RX_QUEUE_ADDR: u64 = 0;
const TX_QUEUE_ADDR: u64 = 0x1_0000;
const RX_BUFS: u64 = 0x10_0000;
const RX_BUF_SIZE: u32 = 4096;
const TX_BUFS: u64 = 0x40_0000;
const TX_BUFS_END: u64 = 0xF0_0000;
const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing happens" is watched for.
const QUIET: Duration = Duration::from_millis(150);

/// One split virtqueue, seen from the driver's side.
struct DriverQueue {
    desc_table: u64,
    avail: u64,
    used: u64,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

impl DriverQueue {
    fn new(mem: &GuestMemory, base: u64) -> (Self, Queue) {
        let mock = MockSplitQueue::create(mem, GuestAddress(base), QUEUE_SIZE);
        let queue = mock.create_queue::<Queue>().expect("mock queue");
        let driver = DriverQueue {
            desc_table: mock.desc_table_addr().0,
            avail: mock.avail_addr().0,
            used: mock.used_addr().0,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
        };
        (driver, queue)
    }

    fn write_desc(
        &self,
        mem: &GuestMemory,
        index: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let at = GuestAddress(self.desc_table + 16 * u64::from(index));
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        mem.write_slice(&raw, at).expect("write descriptor");
    }

    /// Adds a chain of consecutive descriptors (addr, len, flags); NEXT is
    /// set on all but the last. Returns the head index.
    fn add_chain(&mut self, mem: &GuestMemory, descs: &[(u64, u32, u16)]) -> u16 {
        if usize::from(self.next_desc) + descs.len() > usize::from(QUEUE_SIZE) {
            self.next_desc = 0;
        }
        let head = self.next_desc;
        for (i, &(addr, len, flags)) in descs.iter().enumerate() {
            let index = head + i as u16;
            let last = i + 1 == descs.len();
            let flags = if last {
                flags
            } else {
                flags | VRING_DESC_F_NEXT as u16
            };
            self.write_desc(mem, index, addr, len, flags, index + 1);
        }
        self.next_desc += descs.len() as u16;
        self.publish(mem, head);
        head
    }

    /// Makes `head` available to the device.
    fn publish(&mut self, mem: &GuestMemory, head: u16) {
        let slot = GuestAddress(self.avail + 4 + 2 * u64::from(self.avail_idx % QUEUE_SIZE));
        mem.write_obj(head.to_le(), slot).expect("avail ring");
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx.to_le(), GuestAddress(self.avail + 2))
            .expect("avail idx");
    }

    fn used_idx(&self, mem: &GuestMemory) -> u16 {
        u16::from_le(mem.read_obj(GuestAddress(self.used + 2)).expect("used idx"))
    }

    /// The next used element (descriptor id, length), if the device added one.
    fn pop_used(&mut self, mem: &GuestMemory) -> Option<(u32, u32)> {
        if self.used_idx(mem) == self.used_seen {
            return None;
        }
        let at = self.used + 4 + 8 * u64::from(self.used_seen % QUEUE_SIZE);
        let id = u32::from_le(mem.read_obj(GuestAddress(at)).expect("used id"));
        let len = u32::from_le(mem.read_obj(GuestAddress(at + 4)).expect("used len"));
        self.used_seen = self.used_seen.wrapping_add(1);
        Some((id, len))
    }
}

/// A device under test plus the guest driver state around it.
struct Harness {
    device: Vsock,
    mem: GuestMemory,
    rx: DriverQueue,
    tx: DriverQueue,
    rx_kick: EventFd,
    tx_kick: EventFd,
    irq: EventFd,
    tx_next_buf: u64,
    /// RX buffers the device returned unused (length 0).
    rx_rejected: usize,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut device = Vsock::new(GUEST_CID, dir.path().join("vsock.sock")).expect("vsock");
        let mem = GuestMemory::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).expect("memory");
        let (rx, rx_queue) = DriverQueue::new(&mem, RX_QUEUE_ADDR);
        let (tx, tx_queue) = DriverQueue::new(&mem, TX_QUEUE_ADDR);
        let event_queue = MockSplitQueue::create(&mem, GuestAddress(0x2_0000), QUEUE_SIZE)
            .create_queue::<Queue>()
            .expect("event queue");
        let evt = || EventFd::new(EFD_NONBLOCK).expect("eventfd");
        let (rx_kick, tx_kick, irq) = (evt(), evt(), evt());
        let active = |queue, kick: &EventFd| ActiveQueue {
            queue,
            notify: kick.try_clone().expect("clone eventfd"),
        };
        let queues = vec![
            active(rx_queue, &rx_kick),
            active(tx_queue, &tx_kick),
            active(event_queue, &evt()),
        ];
        let interrupt = Interrupt::new(irq.try_clone().expect("clone irqfd"));
        device
            .activate(
                mem.clone(),
                VIRTIO_F_VERSION_1,
                interrupt,
                queues,
                crate::devices::virtio::WorkerSlot::spawn("test", None).unwrap(),
            )
            .expect("activate");
        Harness {
            mem,
            rx,
            tx,
            rx_kick,
            tx_kick,
            irq,
            tx_next_buf: TX_BUFS,
            rx_rejected: 0,
            dir,
            device,
        }
    }

    fn uds_path(&self) -> PathBuf {
        self.dir.path().join("vsock.sock")
    }

    fn listen(&self, port: u32) -> UnixListener {
        let listener = UnixListener::bind(self.dir.path().join(format!("vsock.sock_{port}")))
            .expect("bind port listener");
        listener.set_nonblocking(true).expect("nonblocking");
        listener
    }

    /// Gives the device `count` RX buffers of RX_BUF_SIZE bytes.
    fn supply_rx(&mut self, count: usize) {
        for _ in 0..count {
            if self.rx.next_desc == QUEUE_SIZE {
                self.rx.next_desc = 0;
            }
            let addr = RX_BUFS + u64::from(self.rx.next_desc) * u64::from(RX_BUF_SIZE);
            self.rx
                .add_chain(&self.mem, &[(addr, RX_BUF_SIZE, VRING_DESC_F_WRITE as u16)]);
        }
        self.rx_kick.write(1).expect("kick rx");
    }

    /// Copies `bytes` to fresh guest memory for a TX buffer.
    fn tx_bytes(&mut self, bytes: &[u8]) -> u64 {
        if self.tx_next_buf + bytes.len() as u64 > TX_BUFS_END {
            self.tx_next_buf = TX_BUFS;
        }
        let addr = self.tx_next_buf;
        self.mem
            .write_slice(bytes, GuestAddress(addr))
            .expect("write tx buffer");
        self.tx_next_buf += (bytes.len() as u64 + 15) & !15;
        addr
    }

    /// Queues a raw descriptor chain on TX and kicks the device.
    fn send_chain(&mut self, descs: &[(u64, u32, u16)]) {
        self.tx.add_chain(&self.mem, descs);
        self.tx_kick.write(1).expect("kick tx");
    }

    /// Sends one well-formed packet (header and payload in one descriptor).
    fn send(&mut self, mut hdr: PacketHeader, payload: &[u8]) {
        hdr.len = payload.len() as u32;
        let mut bytes = hdr.to_bytes().to_vec();
        bytes.extend_from_slice(payload);
        let addr = self.tx_bytes(&bytes);
        self.send_chain(&[(addr, bytes.len() as u32, 0)]);
    }

    /// Waits for the next packet the device put in an RX buffer.
    fn recv(&mut self) -> (PacketHeader, Vec<u8>) {
        self.try_recv(WAIT)
            .expect("timed out waiting for an RX packet")
    }

    fn try_recv(&mut self, wait: Duration) -> Option<(PacketHeader, Vec<u8>)> {
        let (id, len) = loop {
            match poll_until(wait, || self.rx.pop_used(&self.mem))? {
                (_, 0) => self.rx_rejected += 1,
                used => break used,
            }
        };
        let addr = RX_BUFS + u64::from(id) * u64::from(RX_BUF_SIZE);
        let mut raw = [0u8; HEADER_SIZE];
        self.mem
            .read_slice(&mut raw, GuestAddress(addr))
            .expect("read header");
        let hdr = PacketHeader::from_bytes(&raw);
        assert_eq!(len as usize, HEADER_SIZE + hdr.len as usize, "used len");
        let mut payload = vec![0u8; hdr.len as usize];
        self.mem
            .read_slice(&mut payload, GuestAddress(addr + HEADER_SIZE as u64))
            .expect("read payload");
        Some((hdr, payload))
    }

    fn assert_no_rx(&mut self) {
        if let Some((hdr, _)) = self.try_recv(QUIET) {
            panic!("unexpected RX packet {hdr:?}");
        }
    }

    /// Guest connects from `guest_port` to host port `port`, expecting the
    /// host listener to accept; returns the host end.
    fn guest_connect(
        &mut self,
        listener: &UnixListener,
        guest_port: u32,
        port: u32,
        buf_alloc: u32,
    ) -> UnixStream {
        self.send(guest_hdr(Op::Request, guest_port, port, buf_alloc, 0), &[]);
        let stream = poll_until(WAIT, || listener.accept().ok())
            .expect("host accept")
            .0;
        let (hdr, _) = self.recv();
        assert_eq!(hdr.op(), Some(Op::Response));
        assert_eq!((hdr.src_cid, hdr.src_port), (2, port));
        assert_eq!((hdr.dst_cid, hdr.dst_port), (GUEST_CID, guest_port));
        stream
    }
}

fn guest_hdr(op: Op, src_port: u32, dst_port: u32, buf_alloc: u32, fwd_cnt: u32) -> PacketHeader {
    PacketHeader {
        src_cid: GUEST_CID,
        dst_cid: 2,
        src_port,
        dst_port,
        len: 0,
        type_: TYPE_STREAM,
        op: op as u16,
        flags: 0,
        buf_alloc,
        fwd_cnt,
    }
}

fn poll_until<T>(wait: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(2));
    }
}

/// Reads exactly `len` bytes from a host stream, with a timeout.
fn read_host(stream: &mut UnixStream, len: usize) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).expect("host read");
    buf
}

/// Asserts the host stream reaches EOF (the device closed its end).
fn assert_host_eof(stream: &mut UnixStream) {
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected EOF, read {n} bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected EOF: {e}"),
    }
}

#[test]
fn device_identity_and_config_space() {
    let dir = tempfile::tempdir().expect("tempdir");
    let device = Vsock::new(0x1234_5678, dir.path().join("v.sock")).expect("vsock");
    assert_eq!(device.device_type(), 19);
    assert_eq!(device.queue_max_sizes().len(), 3);
    assert_eq!(device.features() & VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1);

    let mut cid = [0u8; 8];
    device.read_config(0, &mut cid);
    assert_eq!(u64::from_le_bytes(cid), 0x1234_5678);
    let mut half = [0u8; 4];
    device.read_config(4, &mut half);
    assert_eq!(half, [0; 4]);
    device.read_config(0, &mut half);
    assert_eq!(u32::from_le_bytes(half), 0x1234_5678);
    let mut untouched = [0xaau8; 4];
    device.read_config(6, &mut untouched);
    device.read_config(u64::MAX, &mut untouched);
    assert_eq!(untouched, [0xaa; 4]);
}

#[test]
fn new_rejects_reserved_cids_and_replaces_stale_sockets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.sock");
    for cid in [0, 1, 2, u64::from(u32::MAX)] {
        assert!(matches!(
            Vsock::new(cid, path.clone()),
            Err(VsockError::InvalidCid(_))
        ));
    }
    drop(UnixListener::bind(&path).expect("stale socket"));
    let device = Vsock::new(3, path.clone()).expect("replaces stale socket");
    UnixStream::connect(&path).expect("device listens");
    drop(device);
    assert!(!path.exists(), "socket removed on drop");

    std::fs::write(&path, b"not a socket").expect("regular file");
    assert!(matches!(
        Vsock::new(3, path),
        Err(VsockError::NotASocket(_))
    ));
}

#[test]
fn guest_connection_relays_both_ways_and_closes() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    h.supply_rx(16);
    let mut host = h.guest_connect(&listener, 5000, 1024, 64 * 1024);
    assert!(h.irq.read().expect("interrupt raised") > 0);

    h.send(guest_hdr(Op::Rw, 5000, 1024, 64 * 1024, 0), b"ping");
    assert_eq!(read_host(&mut host, 4), b"ping");

    host.write_all(b"pong").expect("host write");
    let (hdr, payload) = h.recv();
    assert_eq!(hdr.op(), Some(Op::Rw));
    assert_eq!((hdr.src_port, hdr.dst_port), (1024, 5000));
    assert_eq!(payload, b"pong");
    assert_eq!(hdr.buf_alloc, HOST_BUF_ALLOC);
    assert_eq!(hdr.fwd_cnt, 4, "host consumed the guest's 4 bytes");

    // The host hangs up: the guest is told, answers RST, and the
    // connection is gone (more data for it is refused).
    drop(host);
    let (hdr, _) = h.recv();
    assert_eq!(hdr.op(), Some(Op::Shutdown));
    assert_eq!(hdr.flags, SHUTDOWN_BOTH);
    h.send(guest_hdr(Op::Rst, 5000, 1024, 64 * 1024, 4), &[]);
    h.send(guest_hdr(Op::Rw, 5000, 1024, 64 * 1024, 4), b"late");
    assert_eq!(h.recv().0.op(), Some(Op::Rst));
    h.assert_no_rx();
}

#[test]
fn guest_connect_without_listener_gets_rst() {
    let mut h = Harness::new();
    h.supply_rx(4);
    h.send(guest_hdr(Op::Request, 5001, 4242, 4096, 0), &[]);
    let (hdr, _) = h.recv();
    assert_eq!(hdr.op(), Some(Op::Rst));
    assert_eq!((hdr.src_port, hdr.dst_port), (4242, 5001));
    assert_eq!(hdr.dst_cid, GUEST_CID);
    h.assert_no_rx();
}

#[test]
fn guest_shutdown_delivers_pending_data_then_resets() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    h.supply_rx(8);
    let mut host = h.guest_connect(&listener, 5002, 1024, 4096);
    h.send(guest_hdr(Op::Rw, 5002, 1024, 4096, 0), b"last words");
    let mut shutdown = guest_hdr(Op::Shutdown, 5002, 1024, 4096, 0);
    shutdown.flags = SHUTDOWN_BOTH;
    h.send(shutdown, &[]);
    assert_eq!(read_host(&mut host, 10), b"last words");
    assert_host_eof(&mut host);
    assert_eq!(h.recv().0.op(), Some(Op::Rst));
}

#[test]
fn host_initiated_connection_handshake_and_relay() {
    let mut h = Harness::new();
    h.supply_rx(8);
    let mut host = UnixStream::connect(h.uds_path()).expect("connect to device");
    host.write_all(b"CONNECT 52\n").expect("write CONNECT");

    let (req, _) = h.recv();
    assert_eq!(req.op(), Some(Op::Request));
    assert_eq!((req.dst_cid, req.dst_port), (GUEST_CID, 52));
    assert!(req.src_port >= 1 << 30, "local port {}", req.src_port);
    let local_port = req.src_port;

    h.send(guest_hdr(Op::Response, 52, local_port, 4096, 0), &[]);
    let ok = format!("OK {local_port}\n");
    assert_eq!(read_host(&mut host, ok.len()), ok.as_bytes());

    host.write_all(b"to guest").expect("host write");
    let (hdr, payload) = h.recv();
    assert_eq!(
        (hdr.op(), payload.as_slice()),
        (Some(Op::Rw), &b"to guest"[..])
    );
    h.send(guest_hdr(Op::Rw, 52, local_port, 4096, 8), b"to host");
    assert_eq!(read_host(&mut host, 7), b"to host");

    // A guest RST closes the host stream.
    h.send(guest_hdr(Op::Rst, 52, local_port, 4096, 8), &[]);
    assert_host_eof(&mut host);
    h.assert_no_rx();
}

#[test]
fn host_initiated_connection_refused_by_guest() {
    let mut h = Harness::new();
    h.supply_rx(8);
    let mut first = UnixStream::connect(h.uds_path()).expect("connect");
    first.write_all(b"CONNECT 7\n").expect("write");
    let (req, _) = h.recv();
    h.send(guest_hdr(Op::Rst, 7, req.src_port, 0, 0), &[]);
    assert_host_eof(&mut first);

    // A second client gets a fresh local port.
    let mut second = UnixStream::connect(h.uds_path()).expect("connect");
    second.write_all(b"CONNECT 7\n").expect("write");
    let (req2, _) = h.recv();
    assert_eq!(req2.op(), Some(Op::Request));
    assert_ne!(req2.src_port, req.src_port);
}

#[test]
fn host_client_with_bad_connect_line_is_dropped() {
    let mut h = Harness::new();
    h.supply_rx(4);
    for line in [&b"HELLO 52\n"[..], b"CONNECT x\n", &[b'C'; 100]] {
        let mut host = UnixStream::connect(h.uds_path()).expect("connect");
        host.write_all(line).expect("write");
        assert_host_eof(&mut host);
    }
    h.assert_no_rx();
}

#[test]
fn host_data_never_exceeds_guest_credit() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    h.supply_rx(32);
    let mut host = h.guest_connect(&listener, 5003, 1024, 100);
    let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    host.write_all(&data).expect("host write");

    let mut received = Vec::new();
    while let Some((hdr, payload)) = h.try_recv(QUIET) {
        assert_eq!(hdr.op(), Some(Op::Rw));
        received.extend(payload);
    }
    assert_eq!(received, &data[..100], "exactly the guest's buf_alloc");

    // The guest consumed 100 bytes: another 100 may flow.
    h.send(guest_hdr(Op::CreditUpdate, 5003, 1024, 100, 100), &[]);
    while let Some((_, payload)) = h.try_recv(QUIET) {
        received.extend(payload);
    }
    assert_eq!(received, &data[..200]);

    // A guest claiming to have consumed more than it got earns no credit.
    h.send(guest_hdr(Op::CreditUpdate, 5003, 1024, 100, 5000), &[]);
    h.assert_no_rx();
}

#[test]
fn host_sends_credit_updates_as_it_consumes() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    h.supply_rx(16);
    let mut host = h.guest_connect(&listener, 5004, 1024, 4096);

    h.send(guest_hdr(Op::CreditRequest, 5004, 1024, 4096, 0), &[]);
    let (hdr, _) = h.recv();
    assert_eq!(hdr.op(), Some(Op::CreditUpdate));
    assert_eq!((hdr.buf_alloc, hdr.fwd_cnt), (HOST_BUF_ALLOC, 0));

    let chunk = vec![7u8; 40_000];
    h.send(guest_hdr(Op::Rw, 5004, 1024, 4096, 0), &chunk);
    h.send(guest_hdr(Op::Rw, 5004, 1024, 4096, 0), &chunk);
    assert_eq!(read_host(&mut host, 80_000).len(), 80_000);
    let (hdr, _) = h.recv();
    assert_eq!(hdr.op(), Some(Op::CreditUpdate));
    assert!(hdr.fwd_cnt >= 64 * 1024, "fwd_cnt {}", hdr.fwd_cnt);
}

#[test]
fn guest_exceeding_host_buffer_is_reset() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    h.supply_rx(8);
    let _host = h.guest_connect(&listener, 5005, 1024, 4096);
    // The host never reads: once its socket buffer is full, the guest's
    // data piles up in the device until the credit we granted is exceeded.
    let chunk = vec![1u8; 64 * 1024];
    for _ in 0..16 {
        h.send(guest_hdr(Op::Rw, 5005, 1024, 4096, 0), &chunk);
    }
    loop {
        let (hdr, _) = h.recv();
        match hdr.op() {
            Some(Op::Rst) => break,
            Some(Op::CreditUpdate) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn guest_sending_beyond_advertised_credit_is_reset() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    // One RX buffer, taken by the RESPONSE: the guest hears of no credit
    // beyond the HOST_BUF_ALLOC bytes granted there.
    h.supply_rx(1);
    let mut host = h.guest_connect(&listener, 5006, 1024, 4096);
    let chunk = vec![2u8; HOST_BUF_ALLOC as usize / 4];
    for _ in 0..4 {
        h.send(guest_hdr(Op::Rw, 5006, 1024, 4096, 0), &chunk);
    }
    // The host drains it all, so nothing is buffered any more; the guest's
    // credit is still spent, as no CREDIT_UPDATE could reach it.
    assert_eq!(
        read_host(&mut host, HOST_BUF_ALLOC as usize).len(),
        4 * chunk.len()
    );
    h.send(guest_hdr(Op::Rw, 5006, 1024, 4096, 0), b"!");
    // The device takes it before the guest has buffers for any news of
    // credit: by all the guest heard, it sent beyond its credit.
    poll_until(WAIT, || {
        (h.tx.used_idx(&h.mem) == h.tx.avail_idx).then_some(())
    })
    .expect("the device takes the packet");
    h.supply_rx(4);
    // The credit the drain freed may be reported first.
    let mut op = h.recv().0.op();
    while op == Some(Op::CreditUpdate) {
        op = h.recv().0.op();
    }
    assert_eq!(op, Some(Op::Rst));
    assert_host_eof(&mut host);
}

#[test]
fn malformed_packets_do_not_kill_the_worker() {
    let mut h = Harness::new();
    // RX buffers the device cannot use, first in line: read-only, and too
    // small for a header.
    h.rx.add_chain(&h.mem, &[(RX_BUFS + 0xF0_000, 4096, 0)]);
    h.rx.add_chain(
        &h.mem,
        &[(RX_BUFS + 0xF1_000, 8, VRING_DESC_F_WRITE as u16)],
    );
    h.supply_rx(32);
    let hdr_bytes = |hdr: PacketHeader| hdr.to_bytes().to_vec();
    let rw = guest_hdr(Op::Rw, 6000, 1024, 4096, 0);
    let end = MEM_SIZE as u64;

    // Chains the device must drop silently.
    let short = h.tx_bytes(&hdr_bytes(rw)[..10]);
    h.send_chain(&[(short, 10, 0)]);
    let full = h.tx_bytes(&hdr_bytes(guest_hdr(Op::Request, 6000, 1024, 0, 0)));
    h.send_chain(&[(full, HEADER_SIZE as u32, VRING_DESC_F_WRITE as u16)]);
    h.send_chain(&[(end + 0x1000, HEADER_SIZE as u32, 0)]);
    h.send_chain(&[(end - 10, HEADER_SIZE as u32, 0)]);
    h.send_chain(&[(full, 0, 0)]);
    h.send_chain(&[(full, 20, 0), (end + 0x1000, 24, 0)]);
    let mut lying = rw;
    lying.len = 1000;
    let lying_addr = h.tx_bytes(&[hdr_bytes(lying), vec![0; 10]].concat());
    h.send_chain(&[(lying_addr, HEADER_SIZE as u32 + 10, 0)]);
    lying.len = u32::MAX;
    let huge_addr = h.tx_bytes(&hdr_bytes(lying));
    h.send_chain(&[(huge_addr, u32::MAX, 0)]);
    let mut wrong_dst = guest_hdr(Op::Request, 6000, 1024, 0, 0);
    wrong_dst.dst_cid = 1;
    h.send(wrong_dst, &[]);
    let mut spoofed = guest_hdr(Op::Request, 6000, 1024, 0, 0);
    spoofed.src_cid = 99;
    h.send(spoofed, &[]);
    h.send(guest_hdr(Op::Rst, 6000, 1024, 0, 0), &[]);
    // A descriptor chained to itself.
    let head = h.tx.next_desc;
    h.tx.write_desc(&h.mem, head, full, 8, VRING_DESC_F_NEXT as u16, head);
    h.tx.next_desc += 1;
    h.tx.publish(&h.mem, head);
    // An indirect table with a length that is not a whole descriptor.
    h.send_chain(&[(full, 15, VRING_DESC_F_INDIRECT as u16)]);
    // A head index beyond the queue.
    h.tx.publish(&h.mem, QUEUE_SIZE + 3);
    h.tx_kick.write(1).expect("kick");

    // Packets answered with RST: unknown op, unknown socket type, data for
    // no connection.
    let mut bad_op = guest_hdr(Op::Request, 6001, 1024, 0, 0);
    bad_op.op = 99;
    h.send(bad_op, &[]);
    let mut seqpacket = guest_hdr(Op::Request, 6002, 1024, 0, 0);
    seqpacket.type_ = 2;
    h.send(seqpacket, &[]);
    h.send(guest_hdr(Op::Rw, 6003, 1024, 4096, 0), b"orphan");

    let mut rst_ports = Vec::new();
    while let Some((hdr, _)) = h.try_recv(QUIET) {
        assert_eq!(hdr.op(), Some(Op::Rst), "{hdr:?}");
        rst_ports.push(hdr.dst_port);
    }
    assert_eq!(rst_ports, [6001, 6002, 6003]);
    assert_eq!(h.rx_rejected, 2, "unusable RX buffers are returned empty");

    // The worker still serves real connections.
    let listener = h.listen(1024);
    h.supply_rx(4);
    let mut host = h.guest_connect(&listener, 6004, 1024, 4096);
    h.send(guest_hdr(Op::Rw, 6004, 1024, 4096, 0), b"alive");
    assert_eq!(read_host(&mut host, 5), b"alive");
}

#[test]
fn rx_buffer_without_payload_room_does_not_stall_the_worker() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    h.supply_rx(1);
    let mut host = h.guest_connect(&listener, 6100, 1024, 4096);
    // Only a header-sized buffer: host data cannot go out, an RST can.
    let addr = RX_BUFS + u64::from(h.rx.next_desc) * u64::from(RX_BUF_SIZE);
    h.rx.add_chain(
        &h.mem,
        &[(addr, HEADER_SIZE as u32, VRING_DESC_F_WRITE as u16)],
    );
    h.rx_kick.write(1).expect("kick rx");
    host.write_all(b"waiting").expect("host write");
    sleep(QUIET);
    h.send(guest_hdr(Op::Rw, 6101, 1024, 4096, 0), b"orphan");
    assert_eq!(h.recv().0.op(), Some(Op::Rst));

    h.supply_rx(1);
    let (hdr, payload) = h.recv();
    assert_eq!(
        (hdr.op(), payload.as_slice()),
        (Some(Op::Rw), &b"waiting"[..])
    );
}

#[test]
fn dropping_the_device_closes_host_streams() {
    let mut h = Harness::new();
    let listener = h.listen(1024);
    h.supply_rx(4);
    let mut host = h.guest_connect(&listener, 7000, 1024, 4096);
    let Harness { device, dir, .. } = h;
    drop(device);
    assert_host_eof(&mut host);
    assert!(!dir.path().join("vsock.sock").exists());
}
