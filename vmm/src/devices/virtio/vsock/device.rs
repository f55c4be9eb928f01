//! The virtio-vsock device: configuration, feature negotiation and worker
//! lifecycle.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use vmm_sys_util::eventfd::EventFd;

use super::muxer::{Muxer, MAX_CONNECTIONS};
use super::worker::Worker;
use super::VsockError;
use crate::devices::virtio::worker_thread::WorkerThread;
use crate::devices::virtio::{
    device_type, ActivateError, ActiveQueue, GuestMemory, Interrupt, VirtioDevice, WorkerSlot,
    VIRTIO_F_VERSION_1,
};

/// Size of each of the rx, tx and event queues.
const QUEUE_SIZE: u16 = 256;
const QUEUE_SIZES: [u16; 3] = [QUEUE_SIZE; 3];

/// A virtio-vsock device whose host side is a set of unix sockets rooted at
/// `uds_path` (see [`super::muxer`]).
pub struct Vsock {
    guest_cid: u64,
    uds_path: PathBuf,
    /// Listener for host-initiated connections; moves to the worker on
    /// activation. Bound at creation so host clients may connect before the
    /// guest driver is up.
    listener: Option<UnixListener>,
    worker: Option<WorkerThread>,
}

impl Vsock {
    /// Creates the device for the guest with `guest_cid` and starts
    /// listening on `uds_path`, replacing a stale socket left there.
    pub fn new(guest_cid: u64, uds_path: PathBuf) -> Result<Vsock, VsockError> {
        // 0-2 are reserved; u32::MAX is VMADDR_CID_ANY; Linux guests keep
        // their CID in 32 bits.
        if guest_cid <= 2 || guest_cid >= u64::from(u32::MAX) {
            return Err(VsockError::InvalidCid(guest_cid));
        }
        remove_stale_socket(&uds_path)?;
        let listener = UnixListener::bind(&uds_path)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| VsockError::Listen {
                path: uds_path.clone(),
                source,
            })?;
        Ok(Vsock {
            guest_cid,
            uds_path,
            listener: Some(listener),
            worker: None,
        })
    }
}

fn remove_stale_socket(path: &PathBuf) -> Result<(), VsockError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path).map_err(|source| VsockError::RemoveStale {
                path: path.clone(),
                source,
            })
        }
        Ok(_) => Err(VsockError::NotASocket(path.clone())),
        Err(_) => Ok(()),
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        device_type::VSOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_SIZES
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }

    /// The config space is `struct virtio_vsock_config { le64 guest_cid; }`.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let config = self.guest_cid.to_le_bytes();
        let Ok(start) = usize::try_from(offset) else {
            return;
        };
        if let Some(src) = start
            .checked_add(data.len())
            .and_then(|end| config.get(start..end))
        {
            data.copy_from_slice(src);
        }
    }

    fn activate(
        &mut self,
        mem: GuestMemory,
        _features: u64,
        interrupt: Arc<Interrupt>,
        queues: Vec<ActiveQueue>,
        slot: WorkerSlot,
    ) -> Result<(), ActivateError> {
        // The event queue only carries transport-reset events, which hull
        // never sends (no snapshots), so it is not served.
        let [rx, tx, _event]: [ActiveQueue; 3] =
            queues
                .try_into()
                .map_err(|q: Vec<ActiveQueue>| ActivateError::QueueCount {
                    expected: QUEUE_SIZES.len(),
                    got: q.len(),
                })?;
        let listener = self
            .listener
            .take()
            .ok_or_else(|| ActivateError::Backend("vsock device already activated".into()))?;
        let muxer = Muxer::new(
            self.guest_cid,
            self.uds_path.clone(),
            listener,
            MAX_CONNECTIONS,
        )
        .map_err(ActivateError::Worker)?;
        let kill = EventFd::new(libc::EFD_NONBLOCK).map_err(ActivateError::Worker)?;
        let worker = Worker {
            mem,
            interrupt,
            rx,
            tx,
            kill: kill.try_clone().map_err(ActivateError::Worker)?,
            muxer,
        };
        self.worker = Some(
            slot.start(kill, move || worker.run())
                .map_err(ActivateError::Worker)?,
        );
        Ok(())
    }
}

impl Drop for Vsock {
    /// Stops the worker (closing every connection) and removes the socket.
    fn drop(&mut self) {
        drop(self.worker.take());
        if let Err(e) = fs::remove_file(&self.uds_path) {
            log::debug!("vsock: removing {}: {e}", self.uds_path.display());
        }
    }
}
