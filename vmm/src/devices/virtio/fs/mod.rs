//! virtio-fs: shares a host directory with the guest.
//!
//! The guest's virtio-fs driver sends FUSE requests over the queues; a
//! worker thread serves them with fuse-backend-rs's passthrough filesystem
//! over the shared directory. Read-only shares are enforced on the host by
//! [`read_only::ReadOnly`], not left to the guest's mount flags; shares that
//! show only some entries of their root are enforced by [`subset::Subset`];
//! every share bounds the guest's requests with [`bounded::Bounded`]. See
//! [`backend`] for how they stack and how the guest may cache each share.

pub(crate) mod backend;
mod bounded;
mod device;
mod error;
mod handle_flags;
mod read_only;
mod subset;
mod tag;
pub(crate) mod worker;

#[cfg(test)]
mod tests;

pub use device::Fs;
pub use error::FsError;
