//! virtio-blk: a raw disk image on the host as a block device in the guest.
//!
//! The image is a host file (normally sparse) opened once, locked against
//! other VMs, and served from a worker thread that reads and writes guest
//! memory directly with `pread`/`pwrite`. DISCARD and WRITE_ZEROES punch
//! holes in the file, so a guest filesystem that discards freed blocks
//! keeps the image sparse.

mod device;
mod error;
pub(crate) mod image;
pub(crate) mod request;
mod worker;

#[cfg(test)]
mod tests;

pub use device::Block;
pub use error::BlockError;
pub use image::SECTOR_SIZE;
