//! virtio-mmio: register reads and writes, and the guest memory a driver
//! sets queues up in, against the transport of a virtio-blk device on a
//! small sparse disk image (as `virtio_blk_requests` makes it), started (its worker thread serving the queue)
//! when the driver sets DRIVER_OK.

use std::path::Path;

use virtio_bindings::virtio_mmio::{
    VIRTIO_MMIO_DEVICE_ID, VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION,
};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::block::{assert_within_disk, make_disk};
use super::guest::guest_memory;
use crate::devices::bus::BusDevice;
use crate::devices::virtio::block::Block;
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::{device_type, Interrupt, WorkerSlot};

/// Bytes of one operation of the input.
const OP_LEN: usize = 8;
/// Operations one input may hold.
const MAX_OPS: usize = 256;

/// Drives the MMIO window of a virtio-blk device with the operations in
/// `data`, 8 bytes each: a kind, a size, a little-endian u16 offset and
/// u32 value. By kind (the low two bits):
///
/// - 0: write `value` to the register at `offset`;
/// - 1: read `size` bytes (mod 9) at `offset`; the identity registers
///   (magic, version, device ID) always read as the spec says;
/// - 2: write `size` bytes (mod 9) of `value`, repeated, at `offset`;
/// - 3: write `value` into guest memory at `offset` (descriptor tables,
///   rings and buffers for the queue the driver sets up).
///
/// No panic, whatever the order: queues set up with bogus addresses,
/// activation twice or after a reset, notifications before activation.
/// The device, once started, serves its queue from its own thread;
/// nothing is ever written past the disk's last whole sector.
pub fn virtio_mmio_registers(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = make_disk(dir.path());
    // Dropping the transport stops the device's worker, if it started.
    drop(drive(&path, data));
    assert_within_disk(&path);
}

/// Runs the operations in `data` on a transport over the disk at `path`,
/// and returns the transport, its device still running.
fn drive(path: &Path, data: &[u8]) -> MmioTransport {
    let mem = guest_memory();
    let device = Block::new(path, false).expect("the disk image");
    let interrupt = Interrupt::new(EventFd::new(EFD_NONBLOCK).expect("an irqfd"));
    let worker = WorkerSlot::spawn("fuzz-blk", None).expect("a worker thread");
    let mut transport =
        MmioTransport::new(Box::new(device), mem.clone(), interrupt, worker).expect("a transport");
    for op in data.chunks_exact(OP_LEN).take(MAX_OPS) {
        let (kind, size) = (op[0] & 3, usize::from(op[1]) % 9);
        let offset = u16::from_le_bytes([op[2], op[3]]);
        let value = u32::from_le_bytes([op[4], op[5], op[6], op[7]]);
        match kind {
            0 => transport.write(offset.into(), &value.to_le_bytes()),
            1 => {
                let mut bytes = vec![0; size];
                transport.read(offset.into(), &mut bytes);
                check_identity(u32::from(offset), &bytes);
            }
            2 => {
                let bytes: Vec<u8> = value.to_le_bytes().into_iter().cycle().take(size).collect();
                transport.write(offset.into(), &bytes);
            }
            _ => mem
                .write_obj(value, GuestAddress(offset.into()))
                .expect("within the guest memory"),
        }
    }
    transport
}

/// Asserts a 4-byte read of an identity register read what it must.
fn check_identity(offset: u32, bytes: &[u8]) {
    let Ok(bytes) = <[u8; 4]>::try_from(bytes) else {
        return;
    };
    let expected = match offset {
        VIRTIO_MMIO_MAGIC_VALUE => 0x7472_6976,
        VIRTIO_MMIO_VERSION => 2,
        VIRTIO_MMIO_DEVICE_ID => device_type::BLOCK,
        _ => return,
    };
    assert_eq!(u32::from_le_bytes(bytes), expected, "register {offset:#x}");
}

#[cfg(test)]
mod tests {
    use std::thread::sleep;
    use std::time::{Duration, Instant};

    use virtio_bindings::virtio_config::{VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_NEEDS_RESET};
    use virtio_bindings::virtio_mmio::VIRTIO_MMIO_STATUS;

    use super::*;
    use crate::devices::virtio::block::SECTOR_SIZE;
    use crate::fuzz::test_support::{run, seed, COSTLY_MUTATIONS};

    #[test]
    fn virtio_mmio_registers_corpus_and_mutations() {
        run(
            "virtio_mmio_registers",
            virtio_mmio_registers,
            COSTLY_MUTATIONS,
        );
    }

    fn status(transport: &mut MmioTransport) -> u32 {
        let mut status = [0; 4];
        transport.read(VIRTIO_MMIO_STATUS.into(), &mut status);
        u32::from_le_bytes(status)
    }

    /// The seeds reach the device: a driver's whole setup starts it and
    /// its worker writes the sector the request names; a queue outside
    /// guest memory keeps it from starting.
    #[test]
    fn mmio_seeds_reach_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = make_disk(dir.path());
        let mut started = drive(&path, &seed("virtio_mmio_registers", "start-and-notify"));
        let started_status = status(&mut started);
        assert_eq!(
            started_status & VIRTIO_CONFIG_S_DRIVER_OK,
            VIRTIO_CONFIG_S_DRIVER_OK
        );
        assert_eq!(started_status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
        let sector = SECTOR_SIZE as usize..SECTOR_SIZE as usize + 64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&path).unwrap()[sector.clone()] != [0x5a; 64] {
            assert!(Instant::now() < deadline, "the worker never wrote sector 1");
            sleep(Duration::from_millis(10));
        }
        drop(started);

        let dir = tempfile::tempdir().unwrap();
        let mut refused = drive(
            &make_disk(dir.path()),
            &seed("virtio_mmio_registers", "queue-outside-memory"),
        );
        assert_ne!(status(&mut refused) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    }
}
