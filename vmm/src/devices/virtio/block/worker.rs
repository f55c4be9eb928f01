//! The device's worker thread: serves the request queue from an epoll loop
//! on its notify eventfd, one request at a time, in order.
//!
//! Every chain the driver offers goes back on the used ring (see
//! [`super::request`]). A queue whose rings themselves are unusable is
//! broken for good: its driver must reset the device.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use virtio_queue::{QueueOwnedT, QueueT};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::image::DiskImage;
use super::request;
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, INTERRUPT_USED_RING};

const QUEUE_TOKEN: u64 = 0;
const STOP_TOKEN: u64 = 1;

/// Owns the running worker thread; dropping it stops and joins the thread.
pub(super) struct WorkerHandle {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Starts a thread serving `queue` with `image`.
    pub(super) fn spawn(
        mem: GuestMemory,
        interrupt: Arc<Interrupt>,
        queue: ActiveQueue,
        image: Arc<DiskImage>,
    ) -> io::Result<Self> {
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let epoll = Epoll::new()?;
        register(&epoll, &queue.notify, QUEUE_TOKEN)?;
        register(&epoll, &stop, STOP_TOKEN)?;
        let worker = Worker {
            mem,
            interrupt,
            queue,
            image,
            broken: false,
        };
        let thread = thread::Builder::new()
            .name("virtio-blk".into())
            .spawn(move || worker.run(&epoll))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop.write(1) {
            log::error!("virtio-blk: cannot stop the worker: {e}");
            return;
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("virtio-blk: worker thread panicked");
            }
        }
    }
}

fn register(epoll: &Epoll, fd: &EventFd, token: u64) -> io::Result<()> {
    epoll.ctl(
        ControlOperation::Add,
        fd.as_raw_fd(),
        EpollEvent::new(EventSet::IN, token),
    )
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
        let mem = &self.mem;
        let queue = &mut self.queue.queue;
        let mut returned_any = false;
        loop {
            queue.disable_notification(mem)?;
            while let Some(chain) = queue.iter(mem)?.next() {
                let head = chain.head_index();
                let used_len = request::serve(&self.image, mem, chain);
                match queue.add_used(mem, head, used_len) {
                    Ok(()) => returned_any = true,
                    // A head index past the queue end names no descriptor
                    // to give back; the driver loses only its own entry.
                    Err(virtio_queue::Error::InvalidDescriptorIndex) => {
                        log::warn!("virtio-blk: dropped chain with invalid head index {head}");
                    }
                    Err(e) => return Err(e),
                }
            }
            // Re-enabling notifications reports chains that raced in.
            if !queue.enable_notification(mem)? {
                break;
            }
        }
        Ok(returned_any && queue.needs_notification(mem)?)
    }
}
