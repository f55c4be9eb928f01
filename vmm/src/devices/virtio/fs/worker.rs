//! The device's worker thread: serves the hiprio and request queues from an
//! epoll loop on their notify eventfds.
//!
//! Every descriptor chain the driver offers goes back on the used ring, with
//! the length of the FUSE reply written into it, or 0 when the chain or the
//! request in it is malformed. A queue whose rings themselves are unusable
//! is broken for good: its driver must reset the device.

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use fuse_backend_rs::abi::fuse_abi::{InHeader, Opcode, OutHeader};
use fuse_backend_rs::transport::{Reader, VirtioFsWriter};
use virtio_queue::DescriptorChain;
use vmm_sys_util::epoll::{Epoll, EpollEvent};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::backend::FuseServer;
use crate::devices::virtio::worker_thread::{
    serve_available_chains, watch, WorkerSlot, WorkerThread,
};
use crate::devices::virtio::{ActiveQueue, GuestMemory, Interrupt, INTERRUPT_USED_RING};

/// Starts a thread serving `queues` with `server`.
pub(super) fn spawn(
    mem: GuestMemory,
    interrupt: Arc<Interrupt>,
    queues: Vec<ActiveQueue>,
    server: Arc<dyn FuseServer>,
    slot: WorkerSlot,
) -> io::Result<WorkerThread> {
    let stop = EventFd::new(EFD_NONBLOCK)?;
    let epoll = Epoll::new()?;
    for (index, active) in queues.iter().enumerate() {
        watch(&epoll, active.notify.as_raw_fd(), index as u64)?;
    }
    let stop_token = queues.len() as u64;
    watch(&epoll, stop.as_raw_fd(), stop_token)?;
    let worker = Worker {
        mem,
        interrupt,
        queues: queues.into_iter().map(ServedQueue::new).collect(),
        server,
    };
    slot.start(stop, move || worker.run(&epoll, stop_token))
}

struct ServedQueue {
    active: ActiveQueue,
    /// The rings are unusable (e.g. the available index is out of range);
    /// the queue is ignored until the device is reset.
    broken: bool,
}

impl ServedQueue {
    fn new(active: ActiveQueue) -> Self {
        Self {
            active,
            broken: false,
        }
    }
}

struct Worker {
    mem: GuestMemory,
    interrupt: Arc<Interrupt>,
    queues: Vec<ServedQueue>,
    server: Arc<dyn FuseServer>,
}

impl Worker {
    fn run(mut self, epoll: &Epoll, stop_token: u64) {
        let mut events = vec![EpollEvent::default(); self.queues.len() + 1];
        loop {
            let ready = match epoll.wait(-1, &mut events) {
                Ok(ready) => ready,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("virtio-fs: epoll failed, worker exits: {e}");
                    return;
                }
            };
            for event in &events[..ready] {
                let token = event.data();
                if token == stop_token {
                    return;
                }
                // Tokens below `stop_token` are queue indices.
                self.on_notify(token as usize);
            }
        }
    }

    fn on_notify(&mut self, index: usize) {
        let served = &mut self.queues[index];
        // Drain the counter so the level-triggered epoll does not spin.
        if let Err(e) = served.active.notify.read() {
            if e.kind() != io::ErrorKind::WouldBlock {
                log::warn!("virtio-fs: reading queue {index} notification: {e}");
            }
        }
        if served.broken {
            return;
        }
        match serve_queue(&*self.server, &self.mem, &mut served.active) {
            Ok(true) => {
                if let Err(e) = self.interrupt.trigger(INTERRUPT_USED_RING) {
                    log::error!("virtio-fs: cannot interrupt the guest: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => {
                log::error!("virtio-fs: queue {index} is broken and no longer served: {e}");
                served.broken = true;
            }
        }
    }
}

/// Serves every available chain of `active`. Returns whether the driver
/// wants an interrupt for the chains returned.
fn serve_queue(
    server: &dyn FuseServer,
    mem: &GuestMemory,
    active: &mut ActiveQueue,
) -> Result<bool, virtio_queue::Error> {
    serve_available_chains(&mut active.queue, mem, "virtio-fs", |chain| {
        serve_chain(server, mem, chain)
    })
}

/// Runs the FUSE request in `chain` and returns the reply length, or 0 when
/// the chain or the request is malformed.
pub(crate) fn serve_chain(
    server: &dyn FuseServer,
    mem: &GuestMemory,
    chain: DescriptorChain<&GuestMemory>,
) -> u32 {
    let head = chain.head_index();
    let reader = match Reader::from_descriptor_chain(mem, chain.clone()) {
        Ok(reader) => reader,
        Err(e) => {
            log::warn!("virtio-fs: chain {head}: bad request buffers: {e}");
            return 0;
        }
    };
    let mut writer = match VirtioFsWriter::new(mem, chain) {
        Ok(writer) => writer,
        Err(e) => {
            log::warn!("virtio-fs: chain {head}: bad reply buffers: {e}");
            return 0;
        }
    };
    if let Some(reply_len) = refuse_unassigned_opcode(&reader, &mut writer) {
        return reply_len;
    }
    match server.handle_message(reader, writer.into()) {
        // The reply fits the chain's writable buffers, and virtio bounds a
        // chain's total length below 2^32.
        Ok(len) => u32::try_from(len).unwrap_or(u32::MAX),
        Err(e) => {
            log::warn!("virtio-fs: chain {head}: malformed FUSE request: {e}");
            0
        }
    }
}

/// Opcodes below `FUSE_MAX_OPCODE` that name no `Opcode` variant: 0
/// (never a request), retired GETDIR and an unused slot.
const UNASSIGNED_OPCODES: [u32; 3] = [0, 7, 19];

/// Whether `opcode` names an `Opcode` variant below `MaxOpcode`, the only
/// values fuse-backend-rs may turn into an `Opcode`: with trace logging on,
/// it transmutes the request's opcode, which is undefined behaviour for any
/// other value.
fn is_assigned_opcode(opcode: u32) -> bool {
    opcode < Opcode::MaxOpcode as u32 && !UNASSIGNED_OPCODES.contains(&opcode)
}

/// Answers a request whose opcode is not assigned with `ENOSYS`, as the
/// server does assigned opcodes it does not implement, so such requests
/// never reach the server. Returns the reply length if it did.
fn refuse_unassigned_opcode(reader: &Reader<'_>, writer: &mut VirtioFsWriter<'_>) -> Option<u32> {
    let header: InHeader = reader.clone().read_obj().ok()?;
    if is_assigned_opcode(header.opcode) {
        return None;
    }
    let reply = OutHeader {
        len: size_of::<OutHeader>() as u32,
        error: -libc::ENOSYS,
        unique: header.unique,
    };
    match writer.write_obj(reply) {
        Ok(()) => Some(reply.len),
        Err(e) => {
            log::warn!("virtio-fs: cannot reply to opcode {}: {e}", header.opcode);
            Some(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_opcodes_with_a_variant_are_assigned() {
        for opcode in [0, 7, 19, 50, 9999, u32::MAX] {
            assert!(!is_assigned_opcode(opcode), "{opcode}");
        }
        for opcode in [Opcode::Lookup, Opcode::Init, Opcode::RemoveMapping] {
            assert!(is_assigned_opcode(opcode as u32), "{opcode:?}");
        }
    }
}
