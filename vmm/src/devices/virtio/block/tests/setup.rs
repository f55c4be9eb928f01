//! Opening images: configuration space, features, locking.

use std::mem::offset_of;

use virtio_bindings::virtio_blk::{
    virtio_blk_config, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_WRITE_ZEROES,
};

use super::sparse_image;
use crate::devices::virtio::block::{Block, BlockError};
use crate::devices::virtio::{device_type, VirtioDevice, VIRTIO_F_VERSION_1};

fn config_u32(device: &Block, offset: usize) -> u32 {
    let mut data = [0u8; 4];
    device.read_config(offset as u64, &mut data);
    u32::from_le_bytes(data)
}

#[test]
fn config_space_describes_the_disk() {
    let (_dir, path) = sparse_image(12345);
    let device = Block::new(&path, false).unwrap();
    assert_eq!(device.device_type(), device_type::BLOCK);
    assert_eq!(device.queue_max_sizes(), &[256]);
    assert_eq!(device.capacity_sectors(), 12345);

    let mut capacity = [0u8; 8];
    device.read_config(0, &mut capacity);
    assert_eq!(u64::from_le_bytes(capacity), 12345);
    assert_eq!(
        config_u32(&device, offset_of!(virtio_blk_config, seg_max)),
        128
    );
    assert_eq!(
        config_u32(&device, offset_of!(virtio_blk_config, size_max)),
        1 << 20
    );
    assert_eq!(
        config_u32(&device, offset_of!(virtio_blk_config, blk_size)),
        512
    );
    assert_eq!(
        config_u32(&device, offset_of!(virtio_blk_config, max_discard_seg)),
        32
    );
    assert_eq!(
        config_u32(
            &device,
            offset_of!(virtio_blk_config, discard_sector_alignment)
        ),
        8
    );
    assert_ne!(
        config_u32(&device, offset_of!(virtio_blk_config, max_discard_sectors)),
        0
    );
    // A read of the high half of capacity on its own.
    let mut high = [0xffu8; 4];
    device.read_config(4, &mut high);
    assert_eq!(high, [0; 4]);
    // Reads past the end leave the buffer alone.
    let mut past = [0xaau8; 4];
    device.read_config(58, &mut past);
    assert_eq!(past, [0xaa; 4]);
    device.read_config(u64::MAX, &mut past);
    assert_eq!(past, [0xaa; 4]);
}

#[test]
fn features_follow_the_read_only_flag() {
    let (_dir, path) = sparse_image(8);
    let common = VIRTIO_F_VERSION_1
        | 1 << VIRTIO_BLK_F_FLUSH
        | 1 << VIRTIO_BLK_F_SEG_MAX
        | 1 << VIRTIO_BLK_F_SIZE_MAX
        | 1 << VIRTIO_BLK_F_BLK_SIZE;
    let discard = 1 << VIRTIO_BLK_F_DISCARD | 1 << VIRTIO_BLK_F_WRITE_ZEROES;

    let writable = Block::new(&path, false).unwrap().features();
    assert_eq!(writable & common, common);
    assert_eq!(writable & discard, discard);
    assert_eq!(writable & 1 << VIRTIO_BLK_F_RO, 0);

    let read_only = Block::new(&path, true).unwrap();
    assert_eq!(read_only.features() & common, common);
    assert_eq!(read_only.features() & discard, 0);
    assert_ne!(read_only.features() & 1 << VIRTIO_BLK_F_RO, 0);
    assert_eq!(
        config_u32(
            &read_only,
            offset_of!(virtio_blk_config, max_discard_sectors)
        ),
        0
    );
}

#[test]
fn an_image_in_use_is_a_clear_error_naming_it() {
    let (_dir, path) = sparse_image(8);
    let first = Block::new(&path, false).unwrap();
    for read_only in [false, true] {
        let err = Block::new(&path, read_only).err().expect("second open");
        assert!(matches!(err, BlockError::Locked { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(path.to_str().unwrap()), "{message}");
        assert!(message.contains("in use"), "{message}");
    }
    drop(first);
    // Readers share the image, and keep writers out.
    let reader = Block::new(&path, true).unwrap();
    let other_reader = Block::new(&path, true).unwrap();
    assert!(matches!(
        Block::new(&path, false),
        Err(BlockError::Locked { .. })
    ));
    drop((reader, other_reader));
    Block::new(&path, false).unwrap();
}

#[test]
fn missing_and_empty_images_are_refused() {
    let (dir, path) = sparse_image(0);
    assert!(matches!(
        Block::new(&path, false),
        Err(BlockError::Empty { .. })
    ));
    let missing = dir.path().join("missing.img");
    let err = Block::new(&missing, false).err().expect("missing image");
    assert!(matches!(err, BlockError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.img"), "{err}");
}
