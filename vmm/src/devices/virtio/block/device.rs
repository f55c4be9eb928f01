//! The virtio-blk device model: feature bits, configuration space, queue.

use std::mem::offset_of;
use std::path::Path;
use std::sync::Arc;

use virtio_bindings::virtio_blk::{
    virtio_blk_config, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_WRITE_ZEROES,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::QueueT;

use super::error::BlockError;
use super::image::{DiskImage, SECTOR_SIZE};
use super::request::{MAX_RANGES, MAX_RANGE_SECTORS, SEG_MAX, SIZE_MAX};
use super::worker;
use crate::devices::virtio::worker_thread::WorkerThread;
use crate::devices::virtio::{
    device_type, read_config_space, ActivateError, ActiveQueue, GuestMemory, Interrupt,
    VirtioDevice, WorkerSlot, VIRTIO_F_VERSION_1,
};

/// One request queue.
const QUEUE_MAX_SIZES: [u16; 1] = [256];

/// The configuration space fields up to `write_zeroes_may_unmap`; the
/// secure-erase and zoned fields that follow belong to features not
/// offered.
const CONFIG_SPACE_LEN: usize = offset_of!(virtio_blk_config, max_secure_erase_sectors);

/// Discard granularity in sectors (4 KiB, the host's block size).
const DISCARD_ALIGNMENT_SECTORS: u32 = 8;

/// A virtio-blk device backed by a raw disk image. Disks appear in the
/// guest as `/dev/vda`, `/dev/vdb`, ... in the order they are attached.
pub struct Block {
    image: Arc<DiskImage>,
    config_space: [u8; CONFIG_SPACE_LEN],
    /// Set once the driver has activated the device.
    worker: Option<WorkerThread>,
}

impl Block {
    /// Opens and locks the raw image at `path` (see [`super::BlockError`]
    /// for why this can fail, notably another VM using the image). With
    /// `read_only`, the guest sees a read-only disk and the host refuses
    /// every request that would modify the image.
    pub fn new(path: &Path, read_only: bool) -> Result<Block, BlockError> {
        let image = DiskImage::open(path, read_only)?;
        let config_space = config_space(&image);
        Ok(Block {
            image: Arc::new(image),
            config_space,
            worker: None,
        })
    }

    /// The disk's size in 512-byte sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.image.sectors()
    }
}

fn config_space(image: &DiskImage) -> [u8; CONFIG_SPACE_LEN] {
    let mut config = [0u8; CONFIG_SPACE_LEN];
    let mut put = |offset: usize, bytes: &[u8]| {
        config[offset..offset + bytes.len()].copy_from_slice(bytes);
    };
    put(
        offset_of!(virtio_blk_config, capacity),
        &image.sectors().to_le_bytes(),
    );
    put(
        offset_of!(virtio_blk_config, size_max),
        &SIZE_MAX.to_le_bytes(),
    );
    put(
        offset_of!(virtio_blk_config, seg_max),
        &SEG_MAX.to_le_bytes(),
    );
    put(
        offset_of!(virtio_blk_config, blk_size),
        &(SECTOR_SIZE as u32).to_le_bytes(),
    );
    put(
        offset_of!(virtio_blk_config, num_queues),
        &(QUEUE_MAX_SIZES.len() as u16).to_le_bytes(),
    );
    if !image.read_only() {
        put(
            offset_of!(virtio_blk_config, max_discard_sectors),
            &MAX_RANGE_SECTORS.to_le_bytes(),
        );
        put(
            offset_of!(virtio_blk_config, max_discard_seg),
            &MAX_RANGES.to_le_bytes(),
        );
        put(
            offset_of!(virtio_blk_config, discard_sector_alignment),
            &DISCARD_ALIGNMENT_SECTORS.to_le_bytes(),
        );
        put(
            offset_of!(virtio_blk_config, max_write_zeroes_sectors),
            &MAX_RANGE_SECTORS.to_le_bytes(),
        );
        put(
            offset_of!(virtio_blk_config, max_write_zeroes_seg),
            &MAX_RANGES.to_le_bytes(),
        );
        put(offset_of!(virtio_blk_config, write_zeroes_may_unmap), &[1]);
    }
    config
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        device_type::BLOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_MAX_SIZES
    }

    fn features(&self) -> u64 {
        let common = VIRTIO_F_VERSION_1
            | 1 << VIRTIO_RING_F_EVENT_IDX
            | 1 << VIRTIO_RING_F_INDIRECT_DESC
            | 1 << VIRTIO_BLK_F_SIZE_MAX
            | 1 << VIRTIO_BLK_F_SEG_MAX
            | 1 << VIRTIO_BLK_F_BLK_SIZE
            | 1 << VIRTIO_BLK_F_FLUSH;
        if self.image.read_only() {
            common | 1 << VIRTIO_BLK_F_RO
        } else {
            common | 1 << VIRTIO_BLK_F_DISCARD | 1 << VIRTIO_BLK_F_WRITE_ZEROES
        }
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_space(&self.config_space, offset, data);
    }

    fn activate(
        &mut self,
        mem: GuestMemory,
        features: u64,
        interrupt: Arc<Interrupt>,
        queues: Vec<ActiveQueue>,
        worker: WorkerSlot,
    ) -> Result<(), ActivateError> {
        if self.worker.is_some() {
            return Err(ActivateError::Backend(
                "virtio-blk device is already active".into(),
            ));
        }
        let mut queue = match <[ActiveQueue; 1]>::try_from(queues) {
            Ok([queue]) => queue,
            Err(queues) => {
                return Err(ActivateError::QueueCount {
                    expected: QUEUE_MAX_SIZES.len(),
                    got: queues.len(),
                })
            }
        };
        queue
            .queue
            .set_event_idx(features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0);
        let worker = worker::spawn(mem, interrupt, queue, Arc::clone(&self.image), worker)
            .map_err(ActivateError::Worker)?;
        self.worker = Some(worker);
        Ok(())
    }
}
