//! The FUSE server behind the device: fuse-backend-rs's passthrough
//! filesystem over the shared directory, wrapped in [`ReadOnly`] for
//! read-only shares, and in [`Bounded`] for every share.

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuse_backend_rs::api::filesystem::FileSystem;
use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};
use fuse_backend_rs::transport::{Reader, Writer};

use super::bounded::Bounded;
use super::error::FsError;
use super::read_only::ReadOnly;

/// How long the guest may cache entries and attributes of a read-only share.
/// Nothing changes a read-only share behind the guest's back while it runs.
const READ_ONLY_CACHE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A FUSE server, with its filesystem type erased so the device and its
/// worker need not be generic.
pub(super) trait FuseServer: Send + Sync {
    /// Serves the FUSE request in `r`, writing the reply (for opcodes that
    /// have one) to `w`. Returns the number of reply bytes written.
    fn handle_message(&self, r: Reader<'_>, w: Writer<'_>) -> fuse_backend_rs::Result<usize>;
}

impl<F: FileSystem + Send + Sync> FuseServer for Server<F> {
    fn handle_message(&self, r: Reader<'_>, w: Writer<'_>) -> fuse_backend_rs::Result<usize> {
        Server::handle_message(self, r, w, None, None)
    }
}

/// What the guest may do with a share.
pub(super) enum Access {
    Writable,
    ReadOnly,
    /// Read-only, and only these names exist at the top of the share.
    ReadOnlySubset(HashSet<CString>),
}

/// Builds the FUSE server sharing `shared_dir` with the given access.
pub(super) fn new_server(
    shared_dir: &Path,
    access: Access,
) -> Result<Arc<dyn FuseServer>, FsError> {
    let read_only = !matches!(access, Access::Writable);
    let root = shared_root(shared_dir)?;
    raise_open_file_limit();

    let passthrough_error = |source| FsError::Passthrough {
        path: root.clone(),
        source,
    };
    let root_dir = root
        .to_str()
        .ok_or_else(|| FsError::UnsupportedPath(root.clone()))?;
    let fs = PassthroughFs::<()>::new(passthrough_config(root_dir, read_only))
        .map_err(passthrough_error)?;
    // FUSE_INIT imports the root again (`do_import`); importing now reports
    // an unusable share when the device is created rather than at mount.
    fs.import().map_err(passthrough_error)?;

    // Bounded is outermost, so it sees every request the server dispatches.
    Ok(match access {
        Access::Writable => Arc::new(Server::new(Bounded::new(fs))),
        Access::ReadOnly => Arc::new(Server::new(Bounded::new(ReadOnly::new(fs, None)))),
        Access::ReadOnlySubset(entries) => {
            Arc::new(Server::new(Bounded::new(ReadOnly::new(fs, Some(entries)))))
        }
    })
}

/// Resolves `shared_dir` to the absolute directory the passthrough serves.
fn shared_root(shared_dir: &Path) -> Result<PathBuf, FsError> {
    let root = shared_dir
        .canonicalize()
        .map_err(|source| FsError::SharedDir {
            path: shared_dir.to_path_buf(),
            source,
        })?;
    if !root.is_dir() {
        return Err(FsError::NotADirectory(shared_dir.to_path_buf()));
    }
    Ok(root)
}

fn passthrough_config(root_dir: &str, read_only: bool) -> Config {
    let mut config = Config {
        root_dir: root_dir.to_owned(),
        xattr: true,
        do_import: true,
        writeback: false,
        no_open: false,
        no_opendir: false,
        killpriv_v2: false,
        // Inodes are held as O_PATH fds; see `raise_open_file_limit`.
        inode_file_handles: false,
        ..Config::default()
    };
    if read_only {
        config.cache_policy = CachePolicy::Always;
        config.entry_timeout = READ_ONLY_CACHE_TIMEOUT;
        config.attr_timeout = READ_ONLY_CACHE_TIMEOUT;
    } else {
        config.cache_policy = CachePolicy::Auto;
    }
    config
}

/// Most open files [`raise_open_file_limit`] asks for: the kernel's default
/// `fs.nr_open`, well above what [`Bounded`] lets guests hold in handles.
const MAX_OPEN_FILE_LIMIT: libc::rlim_t = 1 << 20;

/// The passthrough keeps an O_PATH descriptor for every inode the guest has
/// looked up, and a container root filesystem has far more files than the
/// usual soft limit of 1024 descriptors. Raise the soft limit towards the hard
/// one, as virtiofsd does, but not past [`MAX_OPEN_FILE_LIMIT`]: an unlimited
/// hard limit must not leave a guest free to exhaust the host's file table.
/// Failing to raise it is not fatal, only limiting.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        log::warn!(
            "virtio-fs: cannot read the open file limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    let Some(raised) = raised_open_file_limit(limit.rlim_cur, limit.rlim_max) else {
        return;
    };
    limit.rlim_cur = raised;
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        log::warn!(
            "virtio-fs: cannot raise the open file limit to {raised}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The soft open file limit to raise `soft` to, given the `hard` limit, if
/// it is to be raised at all.
fn raised_open_file_limit(soft: libc::rlim_t, hard: libc::rlim_t) -> Option<libc::rlim_t> {
    let target = hard.min(MAX_OPEN_FILE_LIMIT);
    (soft < target).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_file_limit_is_raised_to_the_hard_limit_within_a_bound() {
        assert_eq!(raised_open_file_limit(1024, 4096), Some(4096));
        assert_eq!(
            raised_open_file_limit(1024, libc::RLIM_INFINITY),
            Some(MAX_OPEN_FILE_LIMIT)
        );
        assert_eq!(raised_open_file_limit(4096, 4096), None);
        assert_eq!(
            raised_open_file_limit(libc::RLIM_INFINITY, libc::RLIM_INFINITY),
            None
        );
    }
}
