//! What every device's worker thread shares: the handle that stops and
//! joins it, the registration of its wakeup sources with epoll, and the
//! loop that serves a request queue chain by chain.

use std::io;
use std::os::fd::RawFd;
use std::thread::{self, JoinHandle};

use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::GuestMemory;

/// A device's running worker thread; dropping it signals `stop` and joins
/// the thread, which must end when `stop` becomes readable.
pub struct WorkerThread {
    name: &'static str,
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl WorkerThread {
    /// Runs `body` on a thread named `name` (also the prefix of the
    /// handle's log messages).
    pub fn spawn(
        name: &'static str,
        stop: EventFd,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<WorkerThread> {
        let thread = thread::Builder::new().name(name.into()).spawn(body)?;
        Ok(WorkerThread {
            name,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if let Err(e) = self.stop.write(1) {
            log::error!("{}: cannot stop the worker: {e}", self.name);
            return;
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("{}: worker thread panicked", self.name);
            }
        }
    }
}

/// Wakes `epoll` with `token` when `fd` is readable.
pub fn watch(epoll: &Epoll, fd: RawFd, token: u64) -> io::Result<()> {
    epoll.ctl(
        ControlOperation::Add,
        fd,
        EpollEvent::new(EventSet::IN, token),
    )
}

/// Serves every available chain of `queue` with `serve`, which returns how
/// many bytes it wrote into the chain, and gives each chain back on the used
/// ring; `device` names the queue in log messages. Returns whether the
/// driver wants an interrupt for the chains returned. An error means the
/// rings themselves are unusable.
pub fn serve_available_chains(
    queue: &mut Queue,
    mem: &GuestMemory,
    device: &str,
    mut serve: impl FnMut(DescriptorChain<&GuestMemory>) -> u32,
) -> Result<bool, virtio_queue::Error> {
    let mut returned_any = false;
    loop {
        queue.disable_notification(mem)?;
        while let Some(chain) = queue.iter(mem)?.next() {
            let head = chain.head_index();
            let used_len = serve(chain);
            match queue.add_used(mem, head, used_len) {
                Ok(()) => returned_any = true,
                // A head index past the queue end names no descriptor to
                // give back; the driver loses only its own entry.
                Err(virtio_queue::Error::InvalidDescriptorIndex) => {
                    log::warn!("{device}: dropped chain with invalid head index {head}");
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
