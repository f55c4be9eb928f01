//! virtio-blk: a request chain served by the device's `request::serve` on
//! a small sparse disk image.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::guest::{guest_memory, laid_out_chain};
use crate::devices::virtio::block::image::{DiskImage, SECTOR_SIZE};
use crate::devices::virtio::block::request::serve;

/// The disk: 128 sectors, then a tail of less than a sector, which the
/// guest never sees.
const DISK_SECTORS: u64 = 128;
const TAIL: &[u8] = b"past the last whole sector";
/// The disk's first sector; the rest of the disk is a hole.
const FIRST_SECTOR: [u8; SECTOR_SIZE as usize] = [0x5a; SECTOR_SIZE as usize];

/// Serves one virtio-blk request to a disk image of 128 sectors and a
/// 26-byte tail, as the device's worker serves a guest's request queue:
/// the first byte picks the disk (bit 0: read-only), the rest lays out the
/// chain as [`super::vsock_tx_packet`]'s input does (256 bytes of
/// descriptor table, then the bytes at 0x10000). Nothing is written past the disk's last
/// whole sector (the image keeps its length and tail), nothing at all on a
/// read-only disk, and nothing beside the image; the used length is at
/// most what the chain's buffers hold.
pub fn virtio_blk_requests(data: &[u8]) {
    let Some((&mode, chain)) = data.split_first() else {
        return;
    };
    let read_only = mode & 1 == 1;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = make_disk(dir.path());
    let before = fs::read(&path).expect("the disk image");

    let image = DiskImage::open(&path, read_only).expect("the disk image");
    let mem = guest_memory();
    let chain = laid_out_chain(&mem, chain);
    let writable: u64 = chain
        .clone()
        .filter(|desc| desc.is_write_only())
        .map(|desc| u64::from(desc.len()))
        .sum();
    let used = serve(&image, &mem, chain);
    assert!(u64::from(used) <= writable, "used {used} of {writable}");
    drop(image);

    let after = assert_within_disk(&path);
    if read_only {
        assert!(after == before, "a read-only disk was written");
    }
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("the image's directory")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert_eq!(names, ["disk.img"], "beside the image");
}

/// Asserts the image at `path` kept its length and its tail: nothing was
/// written past the disk's last whole sector. Returns the image.
pub(super) fn assert_within_disk(path: &Path) -> Vec<u8> {
    let image = fs::read(path).expect("the disk image");
    let disk_len = (DISK_SECTORS * SECTOR_SIZE) as usize;
    assert_eq!(image.len(), disk_len + TAIL.len(), "the image's length");
    assert_eq!(image[disk_len..], *TAIL, "the image's tail");
    image
}

/// Makes the sparse disk image in `dir`: 128 sectors, the first all 0x5a,
/// the rest a hole, then a tail of less than a sector. Returns its path.
pub(super) fn make_disk(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("disk.img");
    let file = fs::File::create(&path).expect("the disk image");
    let disk_len = DISK_SECTORS * SECTOR_SIZE;
    file.set_len(disk_len + TAIL.len() as u64)
        .expect("the disk image's size");
    file.write_all_at(&FIRST_SECTOR, 0)
        .expect("the disk's first sector");
    file.write_all_at(TAIL, disk_len).expect("the disk's tail");
    path
}

#[cfg(test)]
mod tests {
    use vm_memory::{Bytes, GuestAddress};

    use super::*;
    use crate::fuzz::guest::BUFFERS;
    use crate::fuzz::test_support::{run, seed, COSTLY_MUTATIONS};

    #[test]
    fn virtio_blk_requests_corpus_and_mutations() {
        run(
            "virtio_blk_requests",
            virtio_blk_requests,
            COSTLY_MUTATIONS / 2,
        );
    }

    /// Serves the seed `name` on a fresh disk; returns the used length,
    /// the status byte at `status` and the image after.
    fn outcome(name: &str, status: u64) -> (u32, u8, Vec<u8>) {
        let input = seed("virtio_blk_requests", name);
        let (&mode, chain) = input.split_first().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = make_disk(dir.path());
        let image = DiskImage::open(&path, mode & 1 == 1).unwrap();
        let mem = guest_memory();
        let used = serve(&image, &mem, laid_out_chain(&mem, chain));
        let status = mem.read_obj(GuestAddress(BUFFERS + status)).unwrap();
        (used, status, fs::read(&path).unwrap())
    }

    /// The seeds reach the device: a read and a write of a sector, a
    /// discard, and the requests it must refuse.
    #[test]
    fn block_seeds_reach_the_device() {
        // Status bytes: 0 OK, 1 IOERR, 2 UNSUPP.
        let (used, status, _) = outcome("read-first-sector", 0x210);
        assert_eq!((used, status), (513, 0));
        let (used, status, image) = outcome("write-second-sector", 0x210);
        assert_eq!((used, status), (1, 0));
        assert_eq!(image[512..1024], [0xa5; 512]);
        let (_, status, image) = outcome("discard-first-sector", 0x20);
        assert_eq!(status, 0);
        assert_eq!(image[..512], [0; 512]);
        for (name, status_at, expected) in [
            ("write-past-the-end", 0x210, 1),
            ("write-read-only", 0x210, 1),
            ("unknown-type", 0x10, 2),
        ] {
            assert_eq!(outcome(name, status_at).1, expected, "{name}");
        }
    }
}
