//! File operations relative to directory descriptors, never following a
//! symlink: what keeps every entry of a layer inside it.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::quote::quoted;

/// Opens the directory `name` in `dir` (or the current directory's
/// `name` for `None`), failing with `ELOOP` on a symlink.
pub(super) fn open_dir(dir: Option<RawFd>, name: &OsStr) -> nix::Result<OwnedFd> {
    let fd = openat(
        dir,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the existing directory `components` under `root`, through real
/// directories only.
pub(super) fn lookup_dir<'a>(
    root: &OwnedFd,
    components: impl IntoIterator<Item = &'a OsStr>,
) -> nix::Result<OwnedFd> {
    let mut current = open_dir(Some(root.as_raw_fd()), OsStr::new("."))?;
    for name in components {
        current = open_dir(Some(current.as_raw_fd()), name)?;
    }
    Ok(current)
}

/// What `name` in `parent` is, without following a symlink; `None` when
/// nothing is there.
pub(super) fn stat_nofollow(parent: &OwnedFd, name: &OsStr) -> Result<Option<libc::stat>> {
    match fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Sets the mtime (and atime) of `name` in `parent`, a symlink's own.
pub(super) fn set_mtime(parent: &OwnedFd, name: &OsStr, mtime: u64) -> Result<()> {
    let seconds = libc::time_t::try_from(mtime).unwrap_or(libc::time_t::MAX);
    let time = TimeSpec::new(seconds, 0);
    utimensat(
        Some(parent.as_raw_fd()),
        name,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .context("cannot set mtime")
}

/// Sets the extended attribute `key` of `name` in `parent` (a symlink's
/// own); skipped with a warning where the file system has no xattrs.
pub(super) fn set_xattr(parent: &OwnedFd, name: &OsStr, key: &str, value: &[u8]) -> Result<()> {
    let path = CString::new(proc_fd_path(parent, name).into_os_string().into_vec())?;
    let key_c = CString::new(key)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the value
    // pointer and length describe a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key_c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
        log::warn!(
            "file system does not support xattr {}; skipped",
            quoted(key)
        );
        return Ok(());
    }
    Err(err).with_context(|| format!("cannot set xattr {}", quoted(key)))
}

/// `/proc/self/fd/N/NAME`: `name` inside the directory `parent` refers to,
/// with no path resolution beyond that directory.
fn proc_fd_path(parent: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new("/proc/self/fd")
        .join(parent.as_raw_fd().to_string())
        .join(name)
}
