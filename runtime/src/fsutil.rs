//! Small filesystem helpers.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::FlockArg;

/// Writes `contents` to `path` so that readers see either the old file or
/// the complete new one: write a sibling temp file, sync it, rename it.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(path)
        .with_context(|| format!("cannot move the new {} into place", path.display()))?;
    Ok(())
}

/// Creates (or truncates) `path` as a log only its owner and group read,
/// as Docker's container logs are.
pub fn create_log(path: &Path) -> std::io::Result<fs::File> {
    fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)
}

/// Opens (creating it) the lock file `path` and holds an exclusive flock(2)
/// on it until the returned guard is dropped.
pub fn lock_file(path: &Path) -> Result<nix::fcntl::Flock<fs::File>> {
    nix::fcntl::Flock::lock(open_lock_file(path)?, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("cannot lock {}", path.display()))
}

/// As [`lock_file`], but `None` at once if another holds the lock.
pub fn try_lock_file(path: &Path) -> Result<Option<nix::fcntl::Flock<fs::File>>> {
    match nix::fcntl::Flock::lock(open_lock_file(path)?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno).with_context(|| format!("cannot lock {}", path.display())),
    }
}

fn open_lock_file(path: &Path) -> Result<fs::File> {
    // Private: a lock others could open, they could hold.
    fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Bytes of the files under `path` as Docker counts a volume's: their
/// lengths, directories not counted, hard links once, symbolic links not
/// followed.
pub fn content_size(path: &std::path::Path) -> u64 {
    tree_bytes(path, |meta| match meta.is_dir() {
        true => 0,
        false => meta.len(),
    })
}

/// Bytes the files under `path` take on the host (allocated blocks; hard
/// links counted once), without following symbolic links.
pub fn disk_usage(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    tree_bytes(path, |meta| meta.blocks() * 512)
}

/// The sum of `bytes` over what is at and under `path`, each file once
/// however many links it has, symbolic links not followed.
fn tree_bytes(path: &std::path::Path, bytes: impl Fn(&fs::Metadata) -> u64) -> u64 {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut pending = vec![path.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += bytes(&meta);
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        }
    }
    total
}
