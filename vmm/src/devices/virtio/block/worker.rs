//! The device's worker thread: serves the request queue from an epoll loop
//! on its notify eventfd, one request at a time, in order.
//!
//! Every chain the driver offers goes back on the used ring (see
//! [`super::request`]). A queue whose rings themselves are unusable is
//! broken for good: its driver must reset the device.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use vmm_sys_util::epoll::{Epoll, EpollEvent};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::image::DiskImage;
use super::request;
use crate::devices::virtio::worker_thread::{
    serve_available_chains, watch, WorkerSlot, WorkerThread,
};
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, INTERRUPT_USED_RING};

const QUEUE_TOKEN: u64 = 0;
const STOP_TOKEN: u64 = 1;

/// Starts a thread serving `queue` with `image`.
pub(super) fn spawn(
    mem: GuestMemory,
    interrupt: Arc<Interrupt>,
    queue: ActiveQueue,
    image: Arc<DiskImage>,
    slot: WorkerSlot,
) -> io::Result<WorkerThread> {
    let stop = EventFd::new(EFD_NONBLOCK)?;
    let epoll = Epoll::new()?;
    watch(&epoll, queue.notify.as_raw_fd(), QUEUE_TOKEN)?;
    watch(&epoll, stop.as_raw_fd(), STOP_TOKEN)?;
    let worker = Worker {
        mem,
        interrupt,
        queue,
        image,
        broken: false,
    };
    slot.start(stop, move || worker.run(&epoll))
}

struct Worker {
    mem: GuestMemory,
    interrupt: Arc<Interrupt>,
    queue: ActiveQueue,
    image: Arc<DiskImage>,
    /// The rings are unusable (e.g. the available index is out of range);
    /// the queue is ignored until the device is reset.
    broken: bool,
}

impl Worker {
    fn run(mut self, epoll: &Epoll) {
        let mut events = [EpollEvent::default(); 2];
        loop {
            let ready = match epoll.wait(-1, &mut events) {
                Ok(ready) => ready,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("virtio-blk: epoll failed, worker exits: {e}");
                    return;
                }
            };
            for event in &events[..ready] {
                match event.data() {
                    STOP_TOKEN => return,
                    _ => self.on_notify(),
                }
            }
        }
    }

    fn on_notify(&mut self) {
        // Drain the counter so the level-triggered epoll does not spin.
        if let Err(e) = self.queue.notify.read() {
            if e.kind() != io::ErrorKind::WouldBlock {
                log::warn!("virtio-blk: reading the queue notification: {e}");
            }
        }
        if self.broken {
            return;
        }
        match self.serve_queue() {
            Ok(true) => {
                if let Err(e) = self.interrupt.trigger(INTERRUPT_USED_RING) {
                    log::error!("virtio-blk: cannot interrupt the guest: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => {
                log::error!("virtio-blk: the request queue is broken and no longer served: {e}");
                self.broken = true;
            }
        }
    }

    /// Serves every available chain. Returns whether the driver wants an
    /// interrupt for the chains returned.
    fn serve_queue(&mut self) -> Result<bool, virtio_queue::Error> {
        let (mem, image) = (&self.mem, &self.image);
        serve_available_chains(&mut self.queue.queue, mem, "virtio-blk", |chain| {
            request::serve(image, mem, chain)
        })
    }
}
