//! hull's state directory as given (`--root`, `HULL_ROOT`), checked once
//! before any command uses it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::AccessFlags;

/// `given` made absolute (helper processes leave this directory, and a
/// volume's `Mountpoint` is shown as a path from anywhere), refused with
/// the fix when it cannot be hull's root: a file, or a directory this
/// user cannot create.
pub fn resolve(given: &Path) -> Result<PathBuf> {
    let root = std::path::absolute(given)
        .with_context(|| format!("cannot find the --root {}", given.display()))?;
    match root.metadata() {
        Ok(metadata) if metadata.is_dir() => {
            check_writable(&root, &root)?;
            Ok(root)
        }
        Ok(_) => bail!(
            "the --root {} is not a directory: give hull's state directory with --root or \
             HULL_ROOT",
            root.display()
        ),
        Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            check_creatable(&root)?;
            Ok(root)
        }
        Err(err) => Err(err).with_context(|| format!("cannot use the --root {}", root.display())),
    }
}

/// Refuses a missing `root` whose nearest existing ancestor this user
/// cannot write (`/var/lib/hull` for anyone but root).
fn check_creatable(root: &Path) -> Result<()> {
    let Some(existing) = root.ancestors().skip(1).find(|dir| dir.exists()) else {
        return Ok(());
    };
    if !existing.is_dir() {
        bail!(
            "the --root {} cannot be made: {} is not a directory",
            root.display(),
            existing.display()
        );
    }
    check_writable(root, existing)
}

/// Refuses `dir` (`root` or the directory it is to be made in) when this
/// user may not write it. A read-only file system is no refusal: the hull
/// machine sees this host's root read-only, and reading commands work.
fn check_writable(root: &Path, dir: &Path) -> Result<()> {
    match nix::unistd::access(dir, AccessFlags::W_OK | AccessFlags::X_OK) {
        Err(errno @ (Errno::EACCES | Errno::EPERM)) => bail!(
            "cannot use {} as hull's state directory: {}: run hull as root, or give a \
             directory you can write with --root or HULL_ROOT",
            root.display(),
            std::io::Error::from(errno)
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_root_is_made_absolute() {
        let root = resolve(Path::new("some/state")).unwrap();
        assert!(root.is_absolute(), "{}", root.display());
        assert!(root.ends_with("some/state"), "{}", root.display());
    }

    #[test]
    fn a_file_is_no_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = resolve(&file).unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
        let under = resolve(&file.join("root")).unwrap_err().to_string();
        assert!(under.contains("cannot be made"), "{under}");
        assert!(resolve(dir.path()).is_ok());
        assert!(resolve(&dir.path().join("new/root")).is_ok());
    }
}
