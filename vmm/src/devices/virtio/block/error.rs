//! Errors from setting up a virtio-blk device.

use std::io;
use std::path::PathBuf;

/// Why a disk image could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("cannot open disk image {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "disk image {} is in use: another process, likely another VM, holds its lock",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error("cannot lock disk image {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot determine the size of disk image {}: {source}", path.display())]
    Size {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("disk image {} is smaller than one 512-byte sector", path.display())]
    Empty { path: PathBuf },
}
