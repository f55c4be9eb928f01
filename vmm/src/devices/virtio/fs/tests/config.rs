//! Device identity, configuration space and construction errors.

use std::sync::Arc;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::driver::Driver;
use super::fixture;
use crate::devices::virtio::fs::{Fs, FsError};
use crate::devices::virtio::{
    device_type, ActivateError, GuestMemory, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1,
};

fn read_config(device: &Fs, offset: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0xaa; len];
    device.read_config(offset, &mut data);
    data
}

#[test]
fn identifies_as_virtio_fs_with_two_queues() {
    let dir = fixture();
    let device = Fs::new("hullroot", dir.path(), true).unwrap();
    assert_eq!(device.device_type(), device_type::FS);
    assert_eq!(device.device_type(), 26);
    assert_eq!(device.queue_max_sizes().len(), 2);
    assert_ne!(device.features() & VIRTIO_F_VERSION_1, 0);
}

#[test]
fn config_space_holds_tag_and_one_request_queue() {
    let dir = fixture();
    let device = Fs::new("hullroot", dir.path(), true).unwrap();

    let mut tag = b"hullroot".to_vec();
    tag.resize(36, 0);
    assert_eq!(read_config(&device, 0, 36), tag);
    assert_eq!(read_config(&device, 36, 4), 1u32.to_le_bytes());
    assert_eq!(read_config(&device, 4, 4), b"root");
    assert_eq!(read_config(&device, 0, 40)[..8], *b"hullroot");

    // Reads past the end leave the buffer untouched.
    assert_eq!(read_config(&device, 38, 4), [0xaa; 4]);
    assert_eq!(read_config(&device, 40, 1), [0xaa]);
    assert_eq!(read_config(&device, u64::MAX, 2), [0xaa; 2]);
}

#[test]
fn a_full_length_tag_fills_the_field() {
    let dir = fixture();
    let tag = "t".repeat(36);
    let device = Fs::new(&tag, dir.path(), false).unwrap();
    assert_eq!(read_config(&device, 0, 36), tag.as_bytes());
}

#[test]
fn invalid_tags_are_rejected() {
    let dir = fixture();
    for tag in ["", "a\0b", &"t".repeat(37)] {
        let err = Fs::new(tag, dir.path(), true).err().expect("tag accepted");
        assert!(matches!(err, FsError::InvalidTag(_)), "{tag:?}: {err}");
    }
}

#[test]
fn missing_shared_dir_fails_naming_it() {
    let dir = fixture();
    let missing = dir.path().join("no-such-rootfs");
    let err = Fs::new("hullroot", &missing, true)
        .err()
        .expect("missing dir accepted");
    let message = err.to_string();
    assert!(message.contains(missing.to_str().unwrap()), "{message}");
    assert!(message.contains("No such file"), "{message}");
}

#[test]
fn shared_file_fails_naming_it() {
    let dir = fixture();
    let file = dir.path().join(super::HELLO);
    let err = Fs::new("hullroot", &file, true)
        .err()
        .expect("file accepted");
    assert!(matches!(err, FsError::NotADirectory(_)), "{err}");
    assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
}

#[test]
fn activation_needs_both_queues() {
    let dir = fixture();
    let mut device = Fs::new("hullroot", dir.path(), true).unwrap();
    let mem = GuestMemory::from_ranges(&[(vm_memory::GuestAddress(0), 0x1_0000)]).unwrap();
    let interrupt = Interrupt::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let err = device
        .activate(
            mem,
            VIRTIO_F_VERSION_1,
            Arc::clone(&interrupt),
            Vec::new(),
            crate::devices::virtio::WorkerSlot::spawn("test", None).unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ActivateError::QueueCount {
                expected: 2,
                got: 0
            }
        ),
        "{err}"
    );
}

#[test]
fn activation_happens_once() {
    let dir = fixture();
    let mut driver = Driver::new(dir.path(), true, VIRTIO_F_VERSION_1);
    let mem = driver.mem().clone();
    let interrupt = Interrupt::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let err = driver
        .device_mut()
        .activate(
            mem,
            VIRTIO_F_VERSION_1,
            interrupt,
            Vec::new(),
            crate::devices::virtio::WorkerSlot::spawn("test", None).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(err, ActivateError::Backend(_)), "{err}");
    // The first activation keeps serving.
    driver.init();
}
