//! The container's scratch disk: a sparse file with an ext4 file system that
//! holds the container's writable layer. Only the blocks the container
//! writes take space on the host.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Apparent size of a scratch disk: what a container may write at most.
pub const DEFAULT_SIZE: u64 = 10 << 30;

/// Creates `path` as a sparse file of `size` bytes holding an empty ext4 file
/// system; on failure, nothing is left at `path` (a later boot would take a
/// half-made disk for the container's writes).
pub fn create(path: &Path, size: u64) -> Result<PathBuf> {
    let made = make(path, size);
    if made.is_err() && path.exists() {
        let _ = std::fs::remove_file(path);
    }
    made
}

fn make(path: &Path, size: u64) -> Result<PathBuf> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the scratch disk {}", path.display()))?;
    file.set_len(size)
        .with_context(|| format!("cannot size the scratch disk {}", path.display()))?;
    drop(file);
    // Lazy initialisation keeps the file sparse and mkfs fast; the guest
    // kernel finishes the job in the background if it ever needs to.
    let output = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        ])
        .arg(path)
        .output()
        .context("cannot run mkfs.ext4: install e2fsprogs")?;
    if !output.status.success() {
        bail!(
            "mkfs.ext4 failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileExt, MetadataExt};

    use super::*;

    #[test]
    fn scratch_disks_are_sparse_ext4_images() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scratch.img");
        create(&path, 1 << 30).unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.len(), 1 << 30);
        assert!(
            metadata.blocks() * 512 < 64 << 20,
            "not sparse: {} blocks",
            metadata.blocks()
        );
        // The ext4 superblock magic sits at offset 1024 + 0x38.
        let mut magic = [0u8; 2];
        File::open(&path)
            .unwrap()
            .read_exact_at(&mut magic, 1024 + 0x38)
            .unwrap();
        assert_eq!(magic, [0x53, 0xef]);
        assert!(
            create(&path, 1 << 30).is_err(),
            "an existing disk is never overwritten"
        );
        // Too big for the host's file system: an error, and no disk left.
        let huge = dir.path().join("huge.img");
        assert!(create(&huge, u64::MAX / 2).is_err());
        assert!(!huge.exists());
    }
}
