//! What every device's worker thread shares: the slot it is started in
//! before the guest runs, the handle that stops and joins it, the
//! registration of its wakeup sources with epoll, and the loop that serves
//! a request queue chain by chain.

use std::io;
use std::os::fd::RawFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::GuestMemory;
use crate::seccomp::ThreadFilter;

/// A worker's work, handed to its slot when the device is activated.
type Work = Box<dyn FnOnce() + Send>;

/// A device's worker thread, started (under its seccomp filter, if any)
/// before the guest runs and waiting for its work: no thread is created
/// once the guest can drive the VMM, so a thread's filter is never
/// inherited by one of another kind. A slot dropped unused ends its thread.
pub struct WorkerSlot {
    name: &'static str,
    /// Both taken by [`WorkerSlot::start`].
    work: Option<mpsc::Sender<Work>>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerSlot {
    /// Starts the thread `name` and installs `filter` on it; fails if
    /// either fails.
    pub fn spawn(name: &'static str, filter: Option<Arc<ThreadFilter>>) -> io::Result<WorkerSlot> {
        let (work, waiting) = mpsc::channel::<Work>();
        let (ready, started) = mpsc::sync_channel(1);
        let thread = thread::Builder::new().name(name.into()).spawn(move || {
            let installed = filter.map_or(Ok(()), |filter| filter.apply());
            let failed = installed.is_err();
            // The spawner waits for this message; it cannot be gone.
            let _ = ready.send(installed);
            if !failed {
                if let Ok(work) = waiting.recv() {
                    work();
                }
            }
        })?;
        match started.recv() {
            Ok(Ok(())) => Ok(WorkerSlot {
                name,
                work: Some(work),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(io::Error::other(e))
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other(format!(
                    "{name}: worker thread died starting"
                )))
            }
        }
    }

    /// Hands the thread its `body`, which must end when `stop` becomes
    /// readable.
    pub fn start(
        mut self,
        stop: EventFd,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<WorkerThread> {
        let gone = || io::Error::other(format!("{}: worker thread is gone", self.name));
        let work = self.work.take().ok_or_else(gone)?;
        work.send(Box::new(body)).map_err(|_| gone())?;
        Ok(WorkerThread {
            name: self.name,
            stop,
            thread: self.thread.take(),
        })
    }
}

impl Drop for WorkerSlot {
    /// Ends and joins the thread of a slot that was never started.
    fn drop(&mut self) {
        drop(self.work.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A device's running worker thread; dropping it signals `stop` and joins
/// the thread, which must end when `stop` becomes readable.
pub struct WorkerThread {
    name: &'static str,
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
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
