//! `RUN --mount=type=cache` directories: kept between builds under the
//! hull root, one per `id`, made with the owner and mode asked for; and
//! how a step holds one that other steps (of this or another build) may
//! use at the same time (BuildKit's `sharing=`).

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The owner and mode a cache directory is made with when it is new
/// (BuildKit's `uid=`, `gid=`, `mode=`; default root's, 0755).
#[derive(Clone, Copy, Debug)]
pub struct CacheOwner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// How a step shares its cache directory with steps running meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// All write it at once (the default).
    Shared,
    /// One at a time: a step waits for the one using it.
    Locked,
    /// One at a time: a step that finds it in use gets a fresh, empty
    /// directory of its own instead, gone after the step.
    Private,
}

impl Sharing {
    pub fn parse(value: &str) -> Result<Sharing> {
        Ok(match value {
            "shared" => Sharing::Shared,
            "locked" => Sharing::Locked,
            "private" => Sharing::Private,
            other => bail!("sharing={other}: use shared, private or locked"),
        })
    }
}

/// The directory of cache mount `id` under `cache_dir`, made with
/// `owner`'s owner and mode if missing (an existing one keeps what it has,
/// as in BuildKit).
pub fn directory(cache_dir: &Path, id: &str, owner: CacheOwner) -> Result<PathBuf> {
    let name = hex::encode(Sha256::digest(id.as_bytes()));
    let dir = cache_dir.join(&name[..32]);
    fs::create_dir_all(cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => set_owner(&dir, owner)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot create the cache mount {}", dir.display()))
        }
    }
    Ok(dir)
}

fn set_owner(dir: &Path, owner: CacheOwner) -> Result<()> {
    std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid))
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(owner.mode)))
        .with_context(|| format!("cannot set the owner of cache mount {}", dir.display()))
}

/// A cache directory a step holds for itself while it runs.
pub enum Held {
    /// The cache directory, locked until dropped.
    Locked { _lock: File },
    /// A fresh directory in place of one in use (`sharing=private`).
    Fresh(TempDir),
}

impl Held {
    /// The directory the step mounts: `dir`, or the fresh one.
    pub fn path<'a>(&'a self, dir: &'a Path) -> &'a Path {
        match self {
            Held::Locked { .. } => dir,
            Held::Fresh(fresh) => fresh.path(),
        }
    }
}

/// A cache directory one step at a time may use (`sharing=locked` or
/// `private`).
#[derive(Debug)]
pub struct ExclusiveCache {
    pub dir: PathBuf,
    pub sharing: Sharing,
    pub owner: CacheOwner,
}

impl ExclusiveCache {
    /// Holds the directory for one step: waits for its lock, or, for
    /// `Private`, takes a fresh directory under `tmp` made with the owner
    /// if another step holds it.
    pub fn hold(&self, tmp: &Path) -> Result<Held> {
        let lock_path = self.dir.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        let operation = match self.sharing {
            Sharing::Private => libc::LOCK_EX | libc::LOCK_NB,
            Sharing::Locked | Sharing::Shared => libc::LOCK_EX,
        };
        // SAFETY: flock(2) on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), operation) } == 0 {
            return Ok(Held::Locked { _lock: lock });
        }
        let err = std::io::Error::last_os_error();
        if self.sharing != Sharing::Private || err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(err).context("cannot lock a cache mount");
        }
        fs::create_dir_all(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let fresh = tempfile::Builder::new()
            .prefix("cache-private-")
            .tempdir_in(tmp)
            .with_context(|| format!("cannot make a private cache mount in {}", tmp.display()))?;
        set_owner(fresh.path(), self.owner)?;
        Ok(Held::Fresh(fresh))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn a_private_cache_in_use_gives_a_fresh_directory_and_a_locked_one_waits() {
        let temp = tempfile::tempdir().unwrap();
        // Ours: the test's directory's owner.
        let ours = fs::metadata(temp.path()).unwrap();
        let owner = CacheOwner {
            uid: ours.uid(),
            gid: ours.gid(),
            mode: 0o700,
        };
        let dir = directory(&temp.path().join("cache"), "pip", owner).unwrap();
        fs::write(dir.join("wheel"), "w").unwrap();
        let tmp = temp.path().join("tmp");

        let cache = |sharing| ExclusiveCache {
            dir: dir.clone(),
            sharing,
            owner,
        };
        let (private, locked) = (cache(Sharing::Private), cache(Sharing::Locked));

        let first = private.hold(&tmp).unwrap();
        assert_eq!(first.path(&dir), dir);
        let second = private.hold(&tmp).unwrap();
        let fresh = second.path(&dir).to_owned();
        assert!(fresh.starts_with(&tmp), "{}", fresh.display());
        assert_eq!(fs::read_dir(&fresh).unwrap().count(), 0);
        assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        drop(second);
        assert!(!fresh.exists());

        // sharing=locked waits until the holder is done.
        let (sender, receiver) = std::sync::mpsc::channel();
        let waiter = {
            let tmp = tmp.clone();
            std::thread::spawn(move || {
                let held = locked.hold(&tmp).unwrap();
                sender.send(held.path(&locked.dir) == locked.dir).unwrap();
            })
        };
        let waited = std::time::Duration::from_millis(200);
        assert!(receiver.recv_timeout(waited).is_err(), "it did not wait");
        drop(first);
        assert!(receiver.recv().unwrap());
        waiter.join().unwrap();
        // Free again, a private step gets the cache itself.
        let held = private.hold(&tmp).unwrap();
        assert_eq!(held.path(&dir), dir);
    }

    #[test]
    fn sharing_takes_buildkits_three_values() {
        assert_eq!(Sharing::parse("shared").unwrap(), Sharing::Shared);
        assert_eq!(Sharing::parse("locked").unwrap(), Sharing::Locked);
        assert_eq!(Sharing::parse("private").unwrap(), Sharing::Private);
        let err = Sharing::parse("exclusive").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sharing=exclusive: use shared, private or locked"
        );
    }
}
