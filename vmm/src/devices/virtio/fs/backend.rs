//! The FUSE server behind the device: fuse-backend-rs's passthrough
//! filesystem over the shared directory, wrapped in [`Subset`] for shares
//! showing only some entries of their root, in [`ReadOnly`] for read-only
//! shares, and in [`Bounded`] for every share:
//!
//! ```text
//! Bounded<ReadOnly<Subset<PassthroughFs>>>   read-only subset (image layers)
//! Bounded<Subset<PassthroughFs>>             writable subset (a file's bind)
//! Bounded<ReadOnly<PassthroughFs>>           read-only share
//! Bounded<PassthroughFs>                     writable share (a volume)
//! ```
//!
//! Each adapter has one job and the order keeps it so. [`Bounded`] is
//! outermost: it counts every handle the server hands out. [`ReadOnly`]
//! comes before [`Subset`], so a read-only share answers every mutation
//! with `EROFS`, at the root as anywhere, whether or not it is a subset;
//! [`Subset`] then only ever deals with the root's namespace.
//!
//! # Caching
//!
//! Stable shares, read-only and taken not to change while the guest runs
//! (image layers, a directory root filesystem), are cached for long.
//!
//! Writable shares, and read-only ones that change elsewhere (a volume
//! mounted `:ro` while another container writes it), are volumes and bind mounts: several machines (each
//! container is one) may share a host directory at once, and the host may
//! change it too. Docker users expect a write from one container to be seen
//! from another, as on one kernel. So for writable shares:
//!
//! - no writeback cache: every `write(2)` in the guest reaches the host
//!   file before it returns, `O_APPEND` appends at the host file's end, and
//!   `fsync` syncs the host file;
//! - entries and attributes are not cached (timeouts of 0): each path walk
//!   and `stat` asks the host, so files made, removed or grown elsewhere
//!   show at once, and a read past the end of the cached size fetches the
//!   new size first;
//! - file data is cached close-to-open ([`CachePolicy::Auto`]): an open
//!   drops pages cached earlier. Uncached I/O ([`CachePolicy::Never`], FUSE
//!   direct I/O) would be fully coherent, but guest kernels refuse shared
//!   writable `mmap` of such files, which databases need (SQLite's WAL
//!   index, LMDB). What close-to-open leaves out, as NFS does: a process
//!   keeping a file open may read pages it cached before another machine
//!   rewrote them in place.

use std::collections::BTreeSet;
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
use super::subset::Subset;

/// How long the guest may cache entries and attributes of a stable share.
/// Nothing changes it behind the guest's back while it runs.
const STABLE_CACHE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A FUSE server, with its filesystem type erased so the device and its
/// worker need not be generic.
pub(crate) trait FuseServer: Send + Sync {
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
pub(crate) struct Access {
    /// Every request that could change the share is refused.
    pub(crate) read_only: bool,
    /// Nothing changes the share while the guest runs: see "Caching".
    pub(crate) stable: bool,
    /// When set, the only names at the top of the share, which cannot be
    /// added to, removed or renamed (see [`Subset`]).
    pub(crate) visible: Option<BTreeSet<CString>>,
}

/// Builds the FUSE server sharing `shared_dir` with the given access.
pub(crate) fn new_server(
    shared_dir: &Path,
    access: Access,
) -> Result<Arc<dyn FuseServer>, FsError> {
    let root = shared_root(shared_dir)?;
    raise_open_file_limit();

    let passthrough_error = |source| FsError::Passthrough {
        path: root.clone(),
        source,
    };
    let root_dir = root
        .to_str()
        .ok_or_else(|| FsError::UnsupportedPath(root.clone()))?;
    let fs = PassthroughFs::<()>::new(passthrough_config(root_dir, access.stable))
        .map_err(passthrough_error)?;
    // FUSE_INIT imports the root again (`do_import`); importing now reports
    // an unusable share when the device is created rather than at mount.
    fs.import().map_err(passthrough_error)?;

    // The layering the module docs describe.
    Ok(match (access.read_only, access.visible) {
        (false, None) => serve(fs),
        (true, None) => serve(ReadOnly::new(fs)),
        (false, Some(visible)) => serve(Subset::new(fs, visible)),
        (true, Some(visible)) => serve(ReadOnly::new(Subset::new(fs, visible))),
    })
}

/// A server for `fs`, bounded as every share is.
fn serve<F>(fs: F) -> Arc<dyn FuseServer>
where
    F: FileSystem + Send + Sync + 'static,
{
    Arc::new(Server::new(Bounded::new(fs)))
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

fn passthrough_config(root_dir: &str, stable: bool) -> Config {
    let mut config = Config {
        root_dir: root_dir.to_owned(),
        xattr: true,
        do_import: true,
        // Never for writable shares (see "Caching"); nothing to write back
        // in read-only ones.
        writeback: false,
        no_open: false,
        no_opendir: false,
        killpriv_v2: false,
        // Inodes are held as O_PATH fds; see `raise_open_file_limit`.
        inode_file_handles: false,
        ..Config::default()
    };
    // See "Caching" in the module docs.
    if stable {
        config.cache_policy = CachePolicy::Always;
        config.entry_timeout = STABLE_CACHE_TIMEOUT;
        config.attr_timeout = STABLE_CACHE_TIMEOUT;
    } else {
        config.cache_policy = CachePolicy::Auto;
        config.entry_timeout = Duration::ZERO;
        config.attr_timeout = Duration::ZERO;
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
