//! The device's worker thread: one epoll loop serving the RX and TX queues
//! and the tap.
//!
//! The tap is polled level-triggered while the device can take a frame
//! from it. While a frame waits for RX buffers it is not polled, so the
//! loop sleeps until the driver posts buffers (an RX notification) and the
//! frame is delivered; nothing read from the tap is lost. A queue whose
//! rings themselves are unusable is broken for good and no longer served.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use virtio_queue::QueueT;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::rx::{Delivery, Receiver};
use super::tap::TapIo;
use super::tx;
use crate::devices::virtio::worker_thread::{
    serve_available_chains, watch, WorkerSlot, WorkerThread,
};
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, INTERRUPT_USED_RING};

const RX_TOKEN: u64 = 0;
const TX_TOKEN: u64 = 1;
const TAP_TOKEN: u64 = 2;
const STOP_TOKEN: u64 = 3;

/// Most frames received per wakeup, so that a flood from the host does
/// not hold off TX; the level-triggered tap wakes the loop again at once.
const RX_BATCH: usize = 64;

/// Starts a thread serving `rx` and `tx` with `tap`. `mergeable` says
/// whether VIRTIO_NET_F_MRG_RXBUF was negotiated.
pub(super) fn spawn<T: TapIo>(
    mem: GuestMemory,
    interrupt: Arc<Interrupt>,
    rx: ActiveQueue,
    tx: ActiveQueue,
    tap: T,
    mergeable: bool,
    slot: WorkerSlot,
) -> io::Result<WorkerThread> {
    let stop = EventFd::new(EFD_NONBLOCK)?;
    let epoll = Epoll::new()?;
    for (fd, token) in [
        (rx.notify.as_raw_fd(), RX_TOKEN),
        (tx.notify.as_raw_fd(), TX_TOKEN),
        (tap.as_raw_fd(), TAP_TOKEN),
        (stop.as_raw_fd(), STOP_TOKEN),
    ] {
        watch(&epoll, fd, token)?;
    }
    let worker = Worker {
        mem,
        interrupt,
        rx,
        tx,
        tap,
        epoll,
        receiver: Receiver::new(mergeable),
        tap_polled: true,
        rx_stopped: false,
        tx_broken: false,
    };
    slot.start(stop, move || worker.run())
}

/// Why the device stopped receiving.
enum RxFailure {
    Queue(virtio_queue::Error),
    Tap(io::Error),
}

struct Worker<T> {
    mem: GuestMemory,
    interrupt: Arc<Interrupt>,
    rx: ActiveQueue,
    tx: ActiveQueue,
    tap: T,
    epoll: Epoll,
    receiver: Receiver,
    /// The tap is registered with `epoll`.
    tap_polled: bool,
    /// The RX queue is broken or the tap cannot be read: nothing more is
    /// received.
    rx_stopped: bool,
    tx_broken: bool,
}

impl<T: TapIo> Worker<T> {
    fn run(mut self) {
        let mut events = [EpollEvent::default(); 4];
        loop {
            let ready = match self.epoll.wait(-1, &mut events) {
                Ok(ready) => ready,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("virtio-net: epoll failed, worker exits: {e}");
                    return;
                }
            };
            let mut receive = false;
            for event in &events[..ready] {
                match event.data() {
                    STOP_TOKEN => return,
                    RX_TOKEN => {
                        drain(&self.rx.notify);
                        receive = true;
                    }
                    TX_TOKEN => {
                        drain(&self.tx.notify);
                        self.on_tx();
                    }
                    _ => receive = true,
                }
            }
            if receive {
                self.on_rx();
            }
        }
    }

    fn on_tx(&mut self) {
        if self.tx_broken {
            return;
        }
        match self.serve_tx() {
            Ok(true) => self.interrupt_guest(),
            Ok(false) => {}
            Err(e) => {
                log::error!("virtio-net: the TX queue is broken and no longer served: {e}");
                self.tx_broken = true;
            }
        }
    }

    /// Sends every frame on the TX queue. Returns whether the driver wants
    /// an interrupt for the chains returned.
    fn serve_tx(&mut self) -> Result<bool, virtio_queue::Error> {
        let (mem, tap) = (&self.mem, &mut self.tap);
        serve_available_chains(&mut self.tx.queue, mem, "virtio-net TX", |chain| {
            tx::transmit(tap, mem, chain);
            0
        })
    }

    fn on_rx(&mut self) {
        if !self.rx_stopped {
            match self.receive() {
                Ok(()) => {}
                Err(RxFailure::Queue(e)) => {
                    log::error!("virtio-net: the RX queue is broken and no longer served: {e}");
                    self.rx_stopped = true;
                }
                Err(RxFailure::Tap(e)) => {
                    log::error!("virtio-net: cannot read from the tap, receiving stops: {e}");
                    self.rx_stopped = true;
                }
            }
            if self.receiver.take_returned() {
                match self.rx.queue.needs_notification(&self.mem) {
                    Ok(true) => self.interrupt_guest(),
                    Ok(false) => {}
                    Err(e) => log::warn!("virtio-net: RX queue notification check: {e}"),
                }
            }
        }
        self.poll_tap(!self.rx_stopped && !self.receiver.has_pending());
    }

    /// Moves frames from the tap to the guest until the tap is empty, a
    /// frame waits for buffers, or a batch is done.
    fn receive(&mut self) -> Result<(), RxFailure> {
        for _ in 0..RX_BATCH {
            if !self.receiver.has_pending()
                && !self
                    .receiver
                    .read_from(&mut self.tap)
                    .map_err(RxFailure::Tap)?
            {
                return Ok(());
            }
            let delivery = self
                .receiver
                .deliver(&mut self.rx.queue, &self.mem)
                .map_err(RxFailure::Queue)?;
            if delivery == Delivery::Waiting {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Starts or stops polling the tap.
    fn poll_tap(&mut self, wanted: bool) {
        if wanted == self.tap_polled {
            return;
        }
        let fd = self.tap.as_raw_fd();
        let result = if wanted {
            watch(&self.epoll, fd, TAP_TOKEN)
        } else {
            self.epoll
                .ctl(ControlOperation::Delete, fd, EpollEvent::default())
        };
        match result {
            Ok(()) => self.tap_polled = wanted,
            Err(e) => log::error!("virtio-net: cannot change polling of the tap: {e}"),
        }
    }

    fn interrupt_guest(&self) {
        if let Err(e) = self.interrupt.trigger(INTERRUPT_USED_RING) {
            log::error!("virtio-net: cannot interrupt the guest: {e}");
        }
    }
}

/// Consumes a queue notification, so the level-triggered epoll does not
/// report it again.
fn drain(notify: &EventFd) {
    if let Err(e) = notify.read() {
        if e.kind() != io::ErrorKind::WouldBlock {
            log::warn!("virtio-net: reading a queue notification: {e}");
        }
    }
}
