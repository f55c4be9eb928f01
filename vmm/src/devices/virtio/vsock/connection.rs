//! One vsock stream connection between a guest socket and a host unix stream:
//! the connection state machine, credit-based flow control in both
//! directions, and the relaying of bytes.
//!
//! A [`Connection`] never touches the virtqueues or epoll itself. The muxer
//! feeds it guest packets and stream readiness, asks it for the next packet
//! to deliver to the guest, and (re)registers its stream with the epoll
//! interest it reports.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read};
use std::num::Wrapping;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::socket::{send, MsgFlags};
use vmm_sys_util::epoll::EventSet;

use super::packet::{
    Op, PacketHeader, HOST_CID, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND, TYPE_STREAM,
};

/// Receive buffer we advertise to the guest (`buf_alloc`): the most guest
/// data we hold while the host stream is not draining it. The guest may send
/// only this much past the `fwd_cnt` we last told it, so a connection never
/// buffers more than this (see [`Connection::guest_credit`]).
pub const HOST_BUF_ALLOC: u32 = 256 * 1024;

/// Once the host has consumed this much guest data since our last advertised
/// `fwd_cnt`, we tell the guest with a CREDIT_UPDATE.
const CREDIT_UPDATE_THRESHOLD: u32 = HOST_BUF_ALLOC / 4;

/// How long a host-initiated connection waits for the guest's RESPONSE.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a closing connection waits for the other side before it is reset.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Identifies a connection: the host-side port and the guest-side port.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ConnKey {
    pub local_port: u32,
    pub peer_port: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Host-initiated: our REQUEST is queued or sent, the guest has not
    /// answered yet.
    Connecting,
    Established,
    /// An RST is owed to the guest; the connection ends once it is sent.
    Resetting,
    /// Finished; the muxer drops the connection (closing the stream).
    Closed,
}

/// A vsock connection backed by a non-blocking unix stream.
pub struct Connection {
    key: ConnKey,
    guest_cid: u64,
    stream: UnixStream,
    state: State,
    deadline: Option<Instant>,

    /// REQUEST or RESPONSE owed to the guest.
    pending_reply: Option<Op>,
    /// SHUTDOWN owed to the guest (the host stream reached EOF).
    pending_shutdown: bool,
    /// The guest asked for our credit with CREDIT_REQUEST.
    pending_credit_update: bool,

    /// SHUTDOWN flags received from the guest.
    guest_shutdown: u32,
    /// The host stream returned EOF.
    host_eof: bool,
    /// The write half of the host stream is shut down.
    host_write_shut: bool,
    /// The stream reported readable and has not returned EWOULDBLOCK since.
    stream_readable: bool,

    /// Guest's advertised receive buffer and how much of it it has consumed.
    peer_buf_alloc: u32,
    peer_fwd_cnt: Wrapping<u32>,
    /// Bytes we have sent the guest.
    rx_cnt: Wrapping<u32>,

    /// Bytes the guest has sent us.
    tx_cnt: Wrapping<u32>,
    /// Guest data not yet accepted by the host stream.
    tx_buf: VecDeque<u8>,
    /// Guest bytes written to the host stream.
    fwd_cnt: Wrapping<u32>,
    /// `fwd_cnt` as last advertised to the guest.
    last_fwd_cnt_sent: Wrapping<u32>,
}

impl Connection {
    /// A connection the guest asked for with `request`, already connected to
    /// the host listener through `stream`; a RESPONSE is owed to the guest.
    pub fn guest_initiated(
        key: ConnKey,
        guest_cid: u64,
        stream: UnixStream,
        request: &PacketHeader,
    ) -> Self {
        let mut conn = Self::new(key, guest_cid, stream, State::Established);
        conn.update_peer_credit(request);
        conn.pending_reply = Some(Op::Response);
        conn
    }

    /// A connection a host client asked for; a REQUEST is owed to the guest.
    pub fn host_initiated(key: ConnKey, guest_cid: u64, stream: UnixStream) -> Self {
        let mut conn = Self::new(key, guest_cid, stream, State::Connecting);
        conn.pending_reply = Some(Op::Request);
        conn.deadline = Some(Instant::now() + CONNECT_TIMEOUT);
        conn
    }

    fn new(key: ConnKey, guest_cid: u64, stream: UnixStream, state: State) -> Self {
        Connection {
            key,
            guest_cid,
            stream,
            state,
            deadline: None,
            pending_reply: None,
            pending_shutdown: false,
            pending_credit_update: false,
            guest_shutdown: 0,
            host_eof: false,
            host_write_shut: false,
            stream_readable: false,
            peer_buf_alloc: 0,
            peer_fwd_cnt: Wrapping(0),
            rx_cnt: Wrapping(0),
            tx_cnt: Wrapping(0),
            tx_buf: VecDeque::new(),
            fwd_cnt: Wrapping(0),
            last_fwd_cnt_sent: Wrapping(0),
        }
    }

    /// The host unix stream.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// True once the connection is over and can be dropped.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// When the connection gives up waiting on the guest, if it is waiting.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Resets the connection if its deadline has passed.
    pub fn check_deadline(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            log::debug!("vsock: connection {:?} timed out", self.key);
            self.reset();
        }
    }

    /// Ends the connection with an RST to the guest.
    pub fn reset(&mut self) {
        if self.state != State::Closed {
            self.state = State::Resetting;
            self.deadline = None;
        }
    }

    /// Handles a packet the guest sent on this connection.
    pub fn on_guest_packet(&mut self, hdr: &PacketHeader, payload: &[u8]) {
        self.update_peer_credit(hdr);
        let Some(op) = hdr.op() else {
            self.reset();
            return;
        };
        match (self.state, op) {
            (State::Closed | State::Resetting, _) => {}
            (_, Op::Rst) => self.state = State::Closed,
            (State::Connecting, Op::Response) => self.on_guest_accepted(),
            (State::Connecting, _) => self.reset(),
            (State::Established, Op::Rw) => self.on_guest_data(payload),
            (State::Established, Op::Shutdown) => self.on_guest_shutdown(hdr.flags),
            (State::Established, Op::CreditUpdate) => {}
            (State::Established, Op::CreditRequest) => self.pending_credit_update = true,
            (State::Established, Op::Request | Op::Response) => self.reset(),
        }
    }

    /// Handles readiness of the host stream reported by epoll.
    pub fn on_stream_event(&mut self, events: EventSet) {
        if events.contains(EventSet::ERROR) {
            self.reset();
            return;
        }
        if events.intersects(EventSet::IN | EventSet::HANG_UP) {
            self.stream_readable = true;
        }
        if events.intersects(EventSet::OUT | EventSet::HANG_UP) {
            self.flush_to_host();
        }
    }

    /// The epoll events the host stream should be watched for now.
    pub fn interest(&self) -> EventSet {
        let mut events = EventSet::empty();
        if self.wants_host_data() && !self.stream_readable {
            events |= EventSet::IN;
        }
        if !self.tx_buf.is_empty() && self.state == State::Established {
            events |= EventSet::OUT;
        }
        events
    }

    /// True if [`Connection::next_rx_packet`] may produce a packet.
    pub fn has_rx_work(&self) -> bool {
        match self.state {
            State::Resetting => true,
            State::Closed => false,
            State::Connecting => self.pending_reply.is_some(),
            State::Established => {
                self.pending_reply.is_some()
                    || self.pending_shutdown
                    || self.credit_update_due()
                    || (self.wants_host_data() && self.stream_readable && self.peer_credit() > 0)
            }
        }
    }

    /// Produces the next packet for the guest, reading host data into
    /// `payload_buf` if that is what is next. Returns the header and the
    /// payload length.
    pub fn next_rx_packet(&mut self, payload_buf: &mut [u8]) -> Option<(PacketHeader, usize)> {
        if self.state == State::Resetting {
            self.state = State::Closed;
            return Some((self.header(Op::Rst, 0), 0));
        }
        if self.state == State::Closed {
            return None;
        }
        if let Some(op) = self.pending_reply.take() {
            return Some((self.header(op, 0), 0));
        }
        if self.state != State::Established {
            return None;
        }
        if let Some(len) = self.read_from_host(payload_buf) {
            self.rx_cnt += Wrapping(len as u32);
            return Some((self.header(Op::Rw, 0), len));
        }
        // Reading may have hit EOF (SHUTDOWN now due) or an error (RST due).
        if self.state == State::Resetting {
            return self.next_rx_packet(payload_buf);
        }
        if self.pending_shutdown {
            self.pending_shutdown = false;
            return Some((self.header(Op::Shutdown, SHUTDOWN_BOTH), 0));
        }
        if self.credit_update_due() {
            return Some((self.header(Op::CreditUpdate, 0), 0));
        }
        None
    }

    /// Builds a header from us to the guest; it always carries our current
    /// credit, so it also serves as a credit update.
    fn header(&mut self, op: Op, flags: u32) -> PacketHeader {
        self.last_fwd_cnt_sent = self.fwd_cnt;
        self.pending_credit_update = false;
        PacketHeader {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: self.key.local_port,
            dst_port: self.key.peer_port,
            len: 0,
            type_: TYPE_STREAM,
            op: op as u16,
            flags,
            buf_alloc: HOST_BUF_ALLOC,
            fwd_cnt: self.fwd_cnt.0,
        }
    }

    fn update_peer_credit(&mut self, hdr: &PacketHeader) {
        self.peer_buf_alloc = hdr.buf_alloc;
        self.peer_fwd_cnt = Wrapping(hdr.fwd_cnt);
    }

    /// Bytes the guest can still take. A guest claiming to have consumed
    /// more than we sent gets no credit rather than unbounded credit.
    fn peer_credit(&self) -> u32 {
        let in_flight = (self.rx_cnt - self.peer_fwd_cnt).0;
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Bytes the guest may still send: the credit our last header granted
    /// (`HOST_BUF_ALLOC` past `last_fwd_cnt_sent`) minus what it has sent
    /// since. Data buffered here is at most what the guest sent beyond our
    /// `fwd_cnt`, so honouring this credit bounds `tx_buf`.
    fn guest_credit(&self) -> u32 {
        let unacknowledged = (self.tx_cnt - self.last_fwd_cnt_sent).0;
        HOST_BUF_ALLOC.saturating_sub(unacknowledged)
    }

    fn credit_update_due(&self) -> bool {
        self.pending_credit_update
            || (self.fwd_cnt - self.last_fwd_cnt_sent).0 >= CREDIT_UPDATE_THRESHOLD
    }

    fn wants_host_data(&self) -> bool {
        self.state == State::Established
            && !self.host_eof
            && self.guest_shutdown & SHUTDOWN_RCV == 0
    }

    /// Reads host data that the guest has credit for. `None` when there is
    /// nothing to send (no credit, no data, EOF or error).
    fn read_from_host(&mut self, buf: &mut [u8]) -> Option<usize> {
        if !self.wants_host_data() || !self.stream_readable {
            return None;
        }
        let max = buf.len().min(self.peer_credit() as usize);
        if max == 0 {
            return None;
        }
        loop {
            match self.stream.read(&mut buf[..max]) {
                Ok(0) => {
                    self.on_host_eof();
                    return None;
                }
                Ok(n) => return Some(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.stream_readable = false;
                    return None;
                }
                Err(e) => {
                    log::debug!("vsock: read from host stream {:?}: {e}", self.key);
                    self.reset();
                    return None;
                }
            }
        }
    }

    /// The host closed its end: tell the guest we are closing and give it
    /// time to answer with RST.
    fn on_host_eof(&mut self) {
        self.host_eof = true;
        self.stream_readable = false;
        self.pending_shutdown = true;
        self.deadline = Some(Instant::now() + CLOSE_TIMEOUT);
    }

    /// The guest accepted our REQUEST: tell the host client which local port
    /// the connection uses. The stream is fresh, so its socket buffer always
    /// has room for this one short line.
    fn on_guest_accepted(&mut self) {
        self.state = State::Established;
        self.deadline = None;
        let reply = format!("OK {}\n", self.key.local_port);
        match send_no_sigpipe(&self.stream, reply.as_bytes()) {
            Ok(n) if n == reply.len() => {}
            Ok(n) => {
                log::warn!("vsock: {:?}: OK reply cut short at {n} bytes", self.key);
                self.reset();
            }
            Err(e) => {
                log::debug!("vsock: host client of {:?} is gone: {e}", self.key);
                self.reset();
            }
        }
    }

    fn on_guest_data(&mut self, payload: &[u8]) {
        if self.guest_shutdown & SHUTDOWN_SEND != 0 {
            log::debug!("vsock: {:?}: guest sent data after shutdown", self.key);
            self.reset();
            return;
        }
        let credit = self.guest_credit();
        if payload.len() > credit as usize {
            log::warn!(
                "vsock: {:?}: guest sent {} bytes with {credit} bytes of credit",
                self.key,
                payload.len()
            );
            self.reset();
            return;
        }
        self.tx_cnt += Wrapping(payload.len() as u32);
        self.tx_buf.extend(payload);
        self.flush_to_host();
    }

    fn on_guest_shutdown(&mut self, flags: u32) {
        self.guest_shutdown |= flags & SHUTDOWN_BOTH;
        if self.guest_shutdown == SHUTDOWN_BOTH && self.deadline.is_none() {
            self.deadline = Some(Instant::now() + CLOSE_TIMEOUT);
        }
        self.flush_to_host();
    }

    /// Writes buffered guest data to the host stream, then propagates a
    /// guest shutdown once everything it sent has been delivered.
    fn flush_to_host(&mut self) {
        if self.state != State::Established {
            return;
        }
        while !self.tx_buf.is_empty() {
            let (front, _) = self.tx_buf.as_slices();
            match send_no_sigpipe(&self.stream, front) {
                Ok(n) => {
                    self.tx_buf.drain(..n);
                    self.fwd_cnt += Wrapping(n as u32);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("vsock: write to host stream {:?}: {e}", self.key);
                    self.reset();
                    return;
                }
            }
        }
        if self.guest_shutdown == SHUTDOWN_BOTH || (self.host_eof && self.guest_shutdown != 0) {
            // Everything the guest sent is delivered and neither side has
            // anything left to say: end the connection.
            self.reset();
        } else if self.guest_shutdown & SHUTDOWN_SEND != 0 && !self.host_write_shut {
            self.host_write_shut = true;
            if let Err(e) = self.stream.shutdown(std::net::Shutdown::Write) {
                log::debug!("vsock: shutdown host stream {:?}: {e}", self.key);
            }
        }
    }
}

/// `send(2)` with MSG_NOSIGNAL, so a vanished host peer is an EPIPE error
/// instead of a SIGPIPE.
fn send_no_sigpipe(stream: &UnixStream, buf: &[u8]) -> io::Result<usize> {
    send(stream.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
}
