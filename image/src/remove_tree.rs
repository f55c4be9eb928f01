//! Removing a directory tree of any depth with a bounded number of file
//! descriptors.
//!
//! `std::fs::remove_dir_all` keeps a descriptor open for every level it
//! descends, so a layer nested deeper than the process's descriptor limit
//! (a few thousand one-letter directories) cannot be removed with it. Here
//! the walk goes down one level at a time and back up through `..`,
//! checking each parent's device and inode against the one it came from,
//! and holds at most three descriptors whatever the depth. No symlink is
//! followed: a symlink is removed, never entered.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// A directory's identity, to know it again after `..`.
type Identity = (libc::dev_t, libc::ino_t);

/// Removes `path`: a file, a symlink (not what it points to), or a
/// directory with everything below it. Nothing there is not an error.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("cannot remove {}", path.display())))?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let parent = OwnedFd::from(File::open(parent)?);
    remove_tree_at(&parent, name)
}

/// Removes `name` in the directory `parent`, as [`remove_tree`].
pub(crate) fn remove_tree_at(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let top = match fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if top.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return ignore_gone(unlinkat(
            Some(parent.as_raw_fd()),
            name,
            UnlinkatFlags::NoRemoveDir,
        ));
    }
    let mut current = open_dir(parent, name)?;
    expect_identity(&current, (top.st_dev, top.st_ino))?;
    // The directories between `parent` and `current`, top first.
    let mut above: Vec<Identity> = Vec::new();
    loop {
        match empty_except_one(&current)? {
            Some(full) => {
                let below = open_dir(&current, &full)?;
                above.push(identity(&current)?);
                current = below;
            }
            None => match above.pop() {
                // `current` is empty now; its parent removes it when it
                // is emptied in turn.
                Some(expected) => {
                    let up = open_dir(&current, OsStr::new(".."))?;
                    expect_identity(&up, expected)?;
                    current = up;
                }
                None => {
                    drop(current);
                    return ignore_gone(unlinkat(
                        Some(parent.as_raw_fd()),
                        name,
                        UnlinkatFlags::RemoveDir,
                    ));
                }
            },
        }
    }
}

/// A directory for work in progress (a layer being unpacked, an archive
/// being read), removed with everything in it, however deep, when dropped
/// unless [`Staging::keep`] took it.
pub(crate) struct Staging {
    path: Option<PathBuf>,
}

impl Staging {
    /// A new directory in `dir` named `prefix` and random characters.
    pub(crate) fn new_in(dir: &Path, prefix: &str) -> io::Result<Staging> {
        let path = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(dir)?
            .keep();
        Ok(Staging { path: Some(path) })
    }

    pub(crate) fn path(&self) -> &Path {
        self.path.as_deref().expect("present until kept or dropped")
    }

    /// Leaves the directory (or what took its name) in place.
    pub(crate) fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            if let Err(err) = remove_tree(path) {
                // The store's next garbage collection sweeps it.
                log::warn!("cannot remove {}: {err}", path.display());
            }
        }
    }
}

/// Removes the entries of `dir` up to the first directory that is not
/// empty, and returns that one's name; `None` when `dir` is empty now.
fn empty_except_one(dir: &OwnedFd) -> io::Result<Option<OsString>> {
    let mut listing = Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    for entry in listing.iter() {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(kind) => kind == Type::Directory,
            None => match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => stat.st_mode & libc::S_IFMT == libc::S_IFDIR,
                Err(Errno::ENOENT) => continue,
                Err(err) => return Err(err.into()),
            },
        };
        if !is_dir {
            ignore_gone(unlinkat(
                Some(dir.as_raw_fd()),
                name,
                UnlinkatFlags::NoRemoveDir,
            ))?;
            continue;
        }
        match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => {
                return Ok(Some(OsStr::from_bytes(name.to_bytes()).to_owned()))
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(None)
}

/// Opens the directory `name` in `dir`, never through a symlink.
fn open_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn identity(dir: &OwnedFd) -> io::Result<Identity> {
    let stat = fstat(dir.as_raw_fd())?;
    Ok((stat.st_dev, stat.st_ino))
}

/// Fails unless `dir` is the directory `expected` (it was not moved
/// while being removed).
fn expect_identity(dir: &OwnedFd, expected: Identity) -> io::Result<()> {
    if identity(dir)? == expected {
        Ok(())
    } else {
        Err(io::Error::other(
            "a directory moved while it was being removed",
        ))
    }
}

/// Success when what was to be removed is already gone.
fn ignore_gone(result: nix::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    use super::*;

    /// The number of entries at and below `path`.
    fn count_entries(path: &Path) -> usize {
        let mut count = 0;
        let mut pending = vec![path.to_owned()];
        while let Some(path) = pending.pop() {
            count += 1;
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                pending.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
        count
    }

    /// Makes `depth` nested directories `d/d/d/...` under `dir` with a file
    /// at the bottom, one level at a time (the path gets too long for one
    /// call).
    fn nest(dir: &Path, depth: usize) {
        let mut current = OwnedFd::from(File::open(dir).unwrap());
        for _ in 0..depth {
            nix::sys::stat::mkdirat(Some(current.as_raw_fd()), "d", Mode::S_IRWXU).unwrap();
            current = open_dir(&current, OsStr::new("d")).unwrap();
        }
        let fd = openat(
            Some(current.as_raw_fd()),
            "bottom",
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::S_IRUSR,
        )
        .unwrap();
        nix::unistd::close(fd).unwrap();
    }

    #[test]
    fn removes_files_symlinks_and_trees_but_never_what_a_symlink_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"k").unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("a/b/c")).unwrap();
        fs::create_dir_all(tree.join("empty")).unwrap();
        fs::write(tree.join("a/file"), b"x").unwrap();
        fs::write(tree.join("a/b/c/deep"), b"x").unwrap();
        symlink(&outside, tree.join("a/b/link")).unwrap();
        symlink(&outside, dir.path().join("toplink")).unwrap();
        fs::write(dir.path().join("file"), b"f").unwrap();

        remove_tree(&tree).unwrap();
        remove_tree(&dir.path().join("toplink")).unwrap();
        remove_tree(&dir.path().join("file")).unwrap();
        remove_tree(&dir.path().join("absent")).unwrap();
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["outside"]);
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"k");
    }

    #[test]
    fn staging_goes_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new_in(dir.path(), "work-").unwrap();
        nest(staging.path(), 3);
        drop(staging);
        let kept = Staging::new_in(dir.path(), "work-").unwrap();
        let path = kept.path().to_owned();
        kept.keep();
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, [path]);
    }

    /// In a child with a descriptor limit of 64 (this test's binary run
    /// again): a tree 2000 levels deep, which `remove_dir_all` cannot
    /// remove there, goes.
    #[test]
    fn removes_trees_deeper_than_the_descriptor_limit() {
        let dir = tempfile::tempdir().unwrap();
        nest(dir.path(), 2000);
        assert_eq!(count_entries(dir.path()), 2002);
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "remove_tree::tests::child_removes_under_a_low_fd_limit",
            ])
            .args(["--ignored", "--test-threads=1", "--nocapture"])
            .env("HULL_TEST_TREE", dir.path().join("d"))
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            count_entries(dir.path()),
            1,
            "only the temporary dir is left"
        );
    }

    /// The child of the test above.
    #[test]
    #[ignore = "run by removes_trees_deeper_than_the_descriptor_limit"]
    fn child_removes_under_a_low_fd_limit() {
        let tree = std::env::var_os("HULL_TEST_TREE").expect("run by its parent test");
        let limit = libc::rlimit {
            rlim_cur: 64,
            rlim_max: 64,
        };
        // SAFETY: a valid rlimit struct that outlives the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let err = fs::remove_dir_all(&tree).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        remove_tree(Path::new(&tree)).unwrap();
        assert!(!Path::new(&tree).exists());
    }
}
