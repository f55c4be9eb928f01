//! Directory mtimes, set once a layer is unpacked: creating entries in a
//! directory changes its mtime, so each directory entry's time is noted
//! as it is made and applied at the end.
//!
//! The notes go to an unnamed temporary file beside the layer, not to
//! memory: a layer may hold a million directories with paths up to the
//! header limit long. They are applied in the layer's order (setting a
//! directory's time does not touch its parent's, and of two entries for
//! one directory the later wins, as in GNU tar), each only if its path
//! still names the directory it was noted for: a later entry may have
//! replaced it with a file.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::AtFlags;
use nix::sys::stat::fstatat;

use super::at::{lookup_dir, set_mtime};

/// Directory mtimes noted while unpacking.
pub(super) struct DirTimes {
    notes: BufWriter<File>,
}

impl DirTimes {
    /// Keeps its notes in an unnamed file in `dir` (not the layer itself).
    pub(super) fn new(dir: &Path) -> Result<DirTimes> {
        let file = tempfile::tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(DirTimes {
            notes: BufWriter::new(file),
        })
    }

    /// Notes that the directory at `path` (components joined by `/`),
    /// inode `ino`, gets `mtime`.
    pub(super) fn note(&mut self, path: &[u8], ino: u64, mtime: u64) -> Result<()> {
        let len = u32::try_from(path.len()).context("directory path too long")?;
        let mut write = || -> io::Result<()> {
            self.notes.write_all(&mtime.to_le_bytes())?;
            self.notes.write_all(&ino.to_le_bytes())?;
            self.notes.write_all(&len.to_le_bytes())?;
            self.notes.write_all(path)
        };
        write().context("cannot note a directory's time")
    }

    /// Sets every noted directory's mtime under `root`.
    pub(super) fn apply(self, root: &OwnedFd) -> Result<()> {
        let mut file = self
            .notes
            .into_inner()
            .map_err(|err| err.into_error())
            .context("cannot note a directory's time")?;
        file.rewind()?;
        let mut notes = BufReader::new(file);
        let mut path = Vec::new();
        while !notes.fill_buf()?.is_empty() {
            let mtime = read_u64(&mut notes)?;
            let ino = read_u64(&mut notes)?;
            let mut len = [0u8; 4];
            notes.read_exact(&mut len)?;
            path.resize(u32::from_le_bytes(len) as usize, 0);
            notes.read_exact(&mut path)?;
            let mut components = path.split(|&b| b == b'/').map(OsStr::from_bytes);
            let name = components.next_back().expect("split yields one at least");
            let Ok(parent) = lookup_dir(root, components) else {
                continue; // Replaced on the way by something else.
            };
            let still_it = fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR && st.st_ino == ino);
            if still_it {
                set_mtime(&parent, name, mtime)?;
            }
        }
        Ok(())
    }
}

fn read_u64(from: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    from.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}
