//! `--cidfile`: the file `hull run` and `hull create` write the new
//! container's ID to, claimed before the container is made so that two
//! runs cannot share one, as Docker claims it.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

/// A claimed ID file: removed again unless the ID is written to it.
pub struct CidFile {
    path: PathBuf,
    file: Option<File>,
}

impl CidFile {
    /// Fails as [`CidFile::claim`] would for a file that exists, without
    /// claiming it: for a front end that has the container made elsewhere
    /// (the hull machine) to fail before it pulls.
    pub fn check_free(path: &Path) -> Result<()> {
        match path.symlink_metadata() {
            Ok(_) => Err(found(path)),
            Err(_) => Ok(()),
        }
    }

    /// Creates the file at `path`, which must not exist.
    pub fn claim(path: &Path) -> Result<CidFile> {
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(file) => Ok(CidFile {
                path: path.to_owned(),
                file: Some(file),
            }),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => Err(found(path)),
            Err(err) => {
                Err(err).with_context(|| format!("--cidfile {}: cannot create it", path.display()))
            }
        }
    }

    /// Writes `id` and keeps the file.
    pub fn write(mut self, id: &str) -> Result<()> {
        let mut file = self.file.take().expect("a claimed ID file is open");
        file.write_all(id.as_bytes())
            .with_context(|| format!("--cidfile {}: cannot write it", self.path.display()))
    }
}

/// Docker's error for an ID file that is already there.
fn found(path: &Path) -> anyhow::Error {
    anyhow!(
        "container ID file found, make sure the other container isn't running or delete {}",
        path.display()
    )
}

impl Drop for CidFile {
    /// A file whose ID was never written goes: the container was not made.
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_and_kept_only_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cid");
        let claimed = CidFile::claim(&path).unwrap();
        let err = CidFile::claim(&path).err().unwrap().to_string();
        assert!(err.starts_with("container ID file found"), "{err}");
        assert!(CidFile::check_free(&path).is_err());
        drop(claimed);
        assert!(!path.exists(), "an unwritten claim stays behind");
        CidFile::check_free(&path).unwrap();
        CidFile::claim(&path).unwrap().write("abc123").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abc123");
        assert!(CidFile::claim(&path).is_err());
    }
}
