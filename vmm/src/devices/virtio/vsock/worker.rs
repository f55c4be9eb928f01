//! The device worker thread: one epoll loop serving the TX and RX queues and
//! the muxer's host sockets.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use virtio_queue::{QueueOwnedT, QueueT};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::muxer::Muxer;
use super::packet::{RxBuffer, TxPacket, MAX_PAYLOAD};
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, INTERRUPT_USED_RING};

const TOKEN_RX: u64 = 0;
const TOKEN_TX: u64 = 1;
const TOKEN_MUXER: u64 = 2;
const TOKEN_KILL: u64 = 3;

/// Everything the worker thread owns.
pub struct Worker {
    pub mem: GuestMemory,
    pub interrupt: Arc<Interrupt>,
    pub rx: ActiveQueue,
    pub tx: ActiveQueue,
    pub kill: EventFd,
    pub muxer: Muxer,
}

impl Worker {
    /// Serves the device until `kill` is signalled.
    pub fn run(mut self) {
        let epoll = match self.watch_sources() {
            Ok(epoll) => epoll,
            Err(e) => {
                log::error!("vsock: cannot set up worker epoll: {e}");
                return;
            }
        };
        let mut payload_buf = vec![0u8; MAX_PAYLOAD];
        let mut events = [EpollEvent::default(); 8];
        loop {
            let count = match epoll.wait(self.wait_timeout_ms(), &mut events) {
                Ok(count) => count,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("vsock: worker epoll_wait: {e}");
                    return;
                }
            };
            for event in &events[..count] {
                match event.data() {
                    TOKEN_RX => drain(&self.rx.notify),
                    TOKEN_TX => {
                        drain(&self.tx.notify);
                        self.process_tx();
                    }
                    TOKEN_MUXER => self.muxer.process_events(),
                    TOKEN_KILL => return,
                    _ => {}
                }
            }
            self.muxer.handle_deadlines(Instant::now());
            self.process_rx(&mut payload_buf);
        }
    }

    fn watch_sources(&self) -> std::io::Result<Epoll> {
        let epoll = Epoll::new()?;
        let sources = [
            (self.rx.notify.as_raw_fd(), TOKEN_RX),
            (self.tx.notify.as_raw_fd(), TOKEN_TX),
            (self.muxer.as_raw_fd(), TOKEN_MUXER),
            (self.kill.as_raw_fd(), TOKEN_KILL),
        ];
        for (fd, token) in sources {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )?;
        }
        Ok(epoll)
    }

    /// Milliseconds until the next connection deadline (rounded up), or -1.
    fn wait_timeout_ms(&self) -> i32 {
        self.muxer.next_deadline().map_or(-1, |deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        })
    }

    /// Hands every packet the guest queued on TX to the muxer.
    fn process_tx(&mut self) {
        let mut used = false;
        loop {
            if let Err(e) = self.tx.queue.disable_notification(&self.mem) {
                log::warn!("vsock: tx queue: {e}");
            }
            let mut popped = false;
            while let Some(chain) = self.tx.queue.pop_descriptor_chain(&self.mem) {
                popped = true;
                let head = chain.head_index();
                match TxPacket::read_from(&self.mem, chain) {
                    Ok(packet) => self.muxer.handle_guest_packet(&packet),
                    Err(e) => log::debug!("vsock: dropping tx packet: {e}"),
                }
                match self.tx.queue.add_used(&self.mem, head, 0) {
                    Ok(()) => used = true,
                    Err(e) => log::warn!("vsock: tx queue add_used: {e}"),
                }
            }
            match self.tx.queue.enable_notification(&self.mem) {
                // More chains arrived while notifications were off. If none
                // could be popped the ring is corrupt: stop rather than spin.
                Ok(true) if popped => continue,
                Ok(_) => break,
                Err(e) => {
                    log::warn!("vsock: tx queue: {e}");
                    break;
                }
            }
        }
        if used {
            self.signal_used(Ring::Tx);
        }
    }

    /// Fills guest RX buffers with whatever the muxer has for the guest.
    fn process_rx(&mut self, payload_buf: &mut [u8]) {
        let mut used = false;
        while self.muxer.has_rx_work() {
            let Some(chain) = self.rx.queue.pop_descriptor_chain(&self.mem) else {
                break;
            };
            let head = chain.head_index();
            let written = match RxBuffer::new(&self.mem, chain) {
                Ok(buffer) => {
                    let capacity = buffer.payload_capacity();
                    let Some((hdr, len)) = self.muxer.next_rx_packet(&mut payload_buf[..capacity])
                    else {
                        // Nothing to send after all: keep the buffer.
                        self.rx.queue.go_to_previous_position();
                        break;
                    };
                    buffer.write(hdr, &payload_buf[..len]).unwrap_or_else(|e| {
                        log::warn!("vsock: rx packet lost: {e}");
                        0
                    })
                }
                Err(e) => {
                    log::debug!("vsock: unusable rx buffer: {e}");
                    0
                }
            };
            match self.rx.queue.add_used(&self.mem, head, written) {
                Ok(()) => used = true,
                Err(e) => log::warn!("vsock: rx queue add_used: {e}"),
            }
        }
        if used {
            self.signal_used(Ring::Rx);
        }
    }

    fn signal_used(&mut self, which: Ring) {
        let queue = match which {
            Ring::Rx => &mut self.rx.queue,
            Ring::Tx => &mut self.tx.queue,
        };
        match queue.needs_notification(&self.mem) {
            Ok(true) => {
                if let Err(e) = self.interrupt.trigger(INTERRUPT_USED_RING) {
                    log::error!("vsock: cannot interrupt guest: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => log::warn!("vsock: queue notification check: {e}"),
        }
    }
}

/// The two queues the worker serves.
#[derive(Clone, Copy)]
enum Ring {
    Rx,
    Tx,
}

/// Consumes a queue notification.
fn drain(notify: &EventFd) {
    if let Err(e) = notify.read() {
        if e.kind() != std::io::ErrorKind::WouldBlock {
            log::warn!("vsock: reading queue notifier: {e}");
        }
    }
}
