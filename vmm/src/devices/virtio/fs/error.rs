//! Errors from setting up a virtio-fs device.

use std::io;
use std::path::PathBuf;

use super::tag::MAX_TAG_LEN;

/// Why a virtio-fs device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("virtio-fs tag {0:?} must be 1 to {MAX_TAG_LEN} bytes of UTF-8 without NUL")]
    InvalidTag(String),
    #[error("shared directory {}: {source}", path.display())]
    SharedDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("visible entry {0:?} is not a plain file name")]
    InvalidEntry(String),
    #[error("shared directory {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("shared directory path {} is not UTF-8", .0.display())]
    UnsupportedPath(PathBuf),
    #[error("cannot serve shared directory {}: {source}", path.display())]
    Passthrough {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
