//! The virtio-fs device model: feature bits, configuration space, queues.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::path::Path;
use std::sync::Arc;

use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

use super::backend::{self, Access, FuseServer};
use super::error::FsError;
use super::tag::{self, MAX_TAG_LEN};
use super::worker;
use crate::devices::virtio::worker_thread::WorkerThread;
use crate::devices::virtio::{
    device_type, read_config_space, ActivateError, ActiveQueue, GuestMemory, Interrupt,
    VirtioDevice, WorkerSlot, VIRTIO_F_VERSION_1,
};

/// Configuration space: `tag[36]`, then `num_request_queues` as le32.
const CONFIG_SPACE_LEN: usize = MAX_TAG_LEN + 4;

/// The hiprio queue (FORGET, INTERRUPT) and one request queue, each long
/// enough for a 1 MiB request (256 pages plus headers) in direct descriptors.
const QUEUE_MAX_SIZES: [u16; 2] = [1024, 1024];
const NUM_REQUEST_QUEUES: u32 = QUEUE_MAX_SIZES.len() as u32 - 1;

/// A virtio-fs device sharing a host directory with the guest, which mounts
/// it with `mount -t virtiofs <tag> <dir>`.
pub struct Fs {
    config_space: [u8; CONFIG_SPACE_LEN],
    server: Arc<dyn FuseServer>,
    /// Set once the driver has activated the device.
    worker: Option<WorkerThread>,
}

impl Fs {
    /// Shares `shared_dir` (which must be a directory) under `tag`. With
    /// `read_only`, the host refuses every FUSE request that could modify the
    /// share, whatever the guest's mount flags, and the share is taken not
    /// to change while the guest runs (see [`Fs::changing_elsewhere`]).
    pub fn new(tag: &str, shared_dir: &Path, read_only: bool) -> Result<Fs, FsError> {
        let access = Access {
            read_only,
            stable: read_only,
            visible: None,
        };
        Self::with_access(tag, shared_dir, access)
    }

    /// Shares `shared_dir` read-only as [`Fs::new`] does (only `entries`
    /// of it if given, as [`Fs::subset`] does), for a share that others
    /// (the host, other VMs) may change while the guest runs: the guest
    /// caches it as it does a writable share.
    pub fn changing_elsewhere(
        tag: &str,
        shared_dir: &Path,
        entries: Option<&[String]>,
    ) -> Result<Fs, FsError> {
        let access = Access {
            read_only: true,
            stable: false,
            visible: entries.map(visible_names).transpose()?,
        };
        Self::with_access(tag, shared_dir, access)
    }

    /// Shares `shared_dir` as [`Fs::new`] does, showing the guest only
    /// `entries` of its top level: other names there cannot be looked up or
    /// listed, and the top level's entries cannot be added to, removed or
    /// renamed. The entries themselves are as writable as the share.
    pub fn subset(
        tag: &str,
        shared_dir: &Path,
        read_only: bool,
        entries: &[String],
    ) -> Result<Fs, FsError> {
        let access = Access {
            read_only,
            stable: read_only,
            visible: Some(visible_names(entries)?),
        };
        Self::with_access(tag, shared_dir, access)
    }

    fn with_access(tag: &str, shared_dir: &Path, access: Access) -> Result<Fs, FsError> {
        let config_space = config_space(tag)?;
        let server = backend::new_server(shared_dir, access)?;
        Ok(Fs {
            config_space,
            server,
            worker: None,
        })
    }
}

/// `entries` as the names a subset shows: plain file names each.
fn visible_names(entries: &[String]) -> Result<BTreeSet<CString>, FsError> {
    entries
        .iter()
        .map(|name| {
            let valid = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
            valid
                .then(|| CString::new(name.as_str()).ok())
                .flatten()
                .ok_or_else(|| FsError::InvalidEntry(name.clone()))
        })
        .collect()
}

fn config_space(tag: &str) -> Result<[u8; CONFIG_SPACE_LEN], FsError> {
    if !tag::is_valid(tag) {
        return Err(FsError::InvalidTag(tag.to_owned()));
    }
    let mut config = [0u8; CONFIG_SPACE_LEN];
    config[..tag.len()].copy_from_slice(tag.as_bytes());
    config[MAX_TAG_LEN..].copy_from_slice(&NUM_REQUEST_QUEUES.to_le_bytes());
    Ok(config)
}

impl VirtioDevice for Fs {
    fn device_type(&self) -> u32 {
        device_type::FS
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_MAX_SIZES
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | 1 << VIRTIO_RING_F_INDIRECT_DESC
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_space(&self.config_space, offset, data);
    }

    fn activate(
        &mut self,
        mem: GuestMemory,
        _features: u64,
        interrupt: Arc<Interrupt>,
        queues: Vec<ActiveQueue>,
        worker: WorkerSlot,
    ) -> Result<(), ActivateError> {
        if self.worker.is_some() {
            return Err(ActivateError::Backend(
                "virtio-fs device is already active".into(),
            ));
        }
        if queues.len() != QUEUE_MAX_SIZES.len() {
            return Err(ActivateError::QueueCount {
                expected: QUEUE_MAX_SIZES.len(),
                got: queues.len(),
            });
        }
        let worker = worker::spawn(mem, interrupt, queues, Arc::clone(&self.server), worker)
            .map_err(ActivateError::Worker)?;
        self.worker = Some(worker);
        Ok(())
    }
}
