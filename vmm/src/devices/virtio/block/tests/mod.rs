//! Device tests without KVM: a mock driver posts requests on a
//! virtio-queue mock split queue and the real worker thread serves them
//! against a temporary image file.

mod driver;
mod malformed;
mod requests;
mod setup;

use std::path::PathBuf;

/// A sparse temporary image of `sectors` sectors, filled with nothing.
fn sparse_image(sectors: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(sectors * super::SECTOR_SIZE).unwrap();
    (dir, path)
}
