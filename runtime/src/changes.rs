//! `hull diff`: what a container changed, as Docker lists it (`A /path`,
//! `C /path`, `D /path`), read from its writable layer (an OCI layer tar,
//! as the agent sends it) against the read-only layers below it (unpacked
//! directories with overlayfs's records: a whiteout is a character device
//! 0/0, an opaque directory has `user.overlay.opaque=y`).
//!
//! As Docker's: a path the layers below have is changed, else added; a
//! whiteout is a deletion; a directory that changed its mode or owner, or
//! holds a change, is changed (its time alone is not: the agent's own
//! writes into `/etc` move it). Paths in walk order, parents first.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// One path a container changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened to it.
    pub kind: ChangeKind,
    /// The absolute path in the container.
    pub path: String,
}

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// New: no layer below has it.
    Added,
    /// Its contents or metadata changed, or, for a directory, something
    /// in it.
    Changed,
    /// Removed.
    Deleted,
}

impl ChangeKind {
    /// Docker's letter for it: `A`, `C`, `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// The changes the layer tar `layer` makes over `lower`, the unpacked
/// layer directories below it, bottom first.
pub fn changes(layer: impl Read, lower: &[PathBuf]) -> Result<Vec<Change>> {
    let below = Below { layers: lower };
    let mut found: BTreeMap<PathBuf, ChangeKind> = BTreeMap::new();
    let mut archive = tar::Archive::new(layer);
    for entry in archive
        .entries()
        .context("cannot read the container's layer")?
    {
        let entry = entry.context("corrupt layer from the guest agent")?;
        let archived = entry.path().context("a layer entry's name")?;
        let path: PathBuf = Path::new("/").join(
            archived
                .components()
                .filter(|part| matches!(part, Component::Normal(_)))
                .collect::<PathBuf>(),
        );
        let name = path.file_name().map(|name| name.to_string_lossy());
        match name.as_deref() {
            // The directory replaced what was below it: it changed (unless
            // it is new).
            Some(OPAQUE_MARKER) => {
                if let Some(dir) = path.parent() {
                    found.entry(dir.to_owned()).or_insert(ChangeKind::Changed);
                }
            }
            Some(name) if name.starts_with(WHITEOUT_PREFIX) => {
                let gone = path.with_file_name(&name[WHITEOUT_PREFIX.len()..]);
                found.insert(gone, ChangeKind::Deleted);
            }
            _ => {
                let header = entry.header();
                let kind = match below.metadata(&path)? {
                    None => Some(ChangeKind::Added),
                    // A directory is changed by what is in it, or its own
                    // mode or owner.
                    Some(old) if old.is_dir() && header.entry_type().is_dir() => {
                        let same = header.mode().ok() == Some(old.mode() & 0o7777)
                            && header.uid().ok() == Some(u64::from(old.uid()))
                            && header.gid().ok() == Some(u64::from(old.gid()));
                        (!same).then_some(ChangeKind::Changed)
                    }
                    Some(_) => Some(ChangeKind::Changed),
                };
                if let Some(kind) = kind {
                    found.entry(path).or_insert(kind);
                }
            }
        }
    }
    // Every directory holding a change changed, unless it is new itself.
    let parents: Vec<PathBuf> = found
        .keys()
        .flat_map(|path| path.ancestors().skip(1))
        .filter(|dir| *dir != Path::new("/"))
        .map(Path::to_owned)
        .collect();
    for dir in parents {
        found.entry(dir).or_insert(ChangeKind::Changed);
    }
    Ok(found
        .into_iter()
        .map(|(path, kind)| Change {
            kind,
            path: path.display().to_string(),
        })
        .collect())
}

/// The layers below a container's writable layer, as overlayfs merges them.
struct Below<'a> {
    /// Bottom first.
    layers: &'a [PathBuf],
}

impl Below<'_> {
    /// The metadata of `path` (absolute) in the merged layers, if it is
    /// there.
    fn metadata(&self, path: &Path) -> Result<Option<Metadata>> {
        let relative: PathBuf = path
            .components()
            .filter(|part| matches!(part, Component::Normal(_)))
            .collect();
        for layer in self.layers.iter().rev() {
            match in_layer(layer, &relative)? {
                InLayer::Present(metadata) => return Ok(Some(metadata)),
                InLayer::Hidden => return Ok(None),
                InLayer::Absent => {}
            }
        }
        Ok(None)
    }
}

/// What one layer says of a path.
enum InLayer {
    /// It has it.
    Present(Metadata),
    /// It deletes it, or a directory above it hides the layers below.
    Hidden,
    /// The layers below decide.
    Absent,
}

fn in_layer(layer: &Path, relative: &Path) -> Result<InLayer> {
    let mut dir = layer.to_owned();
    let parts: Vec<_> = relative.components().collect();
    for (index, part) in parts.iter().enumerate() {
        dir.push(part);
        let metadata = match fs::symlink_metadata(&dir) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(InLayer::Absent),
            // A file where a directory was expected: nothing below it.
            Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => return Ok(InLayer::Absent),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
        };
        if metadata.file_type().is_char_device() && metadata.rdev() == 0 {
            return Ok(InLayer::Hidden);
        }
        let last = index + 1 == parts.len();
        if last {
            return Ok(InLayer::Present(metadata));
        }
        if !metadata.is_dir() {
            return Ok(InLayer::Absent);
        }
        if is_opaque(&dir)? {
            // The layers below show nothing under this directory; this one
            // decides alone.
            return match fs::symlink_metadata(layer.join(relative)) {
                Ok(metadata) => Ok(InLayer::Present(metadata)),
                Err(_) => Ok(InLayer::Hidden),
            };
        }
    }
    Ok(InLayer::Absent)
}

/// Whether the unpacked layer directory `dir` hides the layers below it.
fn is_opaque(dir: &Path) -> Result<bool> {
    let path = CString::new(dir.as_os_str().as_bytes()).context("a path with a NUL byte")?;
    let name = CString::new(OPAQUE_XATTR).expect("no NUL byte");
    let mut value = [0u8; 2];
    // SAFETY: both strings are NUL-terminated and `value` holds
    // `value.len()` writable bytes.
    let len = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len >= 0 {
        return Ok(&value[..len as usize] == b"y");
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODATA | libc::ENOTSUP | libc::ERANGE) => Ok(false),
        _ => Err(err).with_context(|| format!("cannot read the xattrs of {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use nix::sys::stat::{mknod, Mode, SFlag};

    use super::*;

    /// A layer tar of `entries`, owned as this process's files are: a name
    /// ending in `/` is a directory.
    fn layer(entries: &[(&str, u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(*mode);
            header.set_uid(u64::from(nix::unistd::getuid().as_raw()));
            header.set_gid(u64::from(nix::unistd::getgid().as_raw()));
            header.set_size(0);
            let kind = match name.ends_with('/') {
                true => tar::EntryType::Directory,
                false => tar::EntryType::Regular,
            };
            header.set_entry_type(kind);
            builder
                .append_data(&mut header, name.trim_end_matches('/'), io::empty())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|change| format!("{} {}", change.kind.letter(), change.path))
            .collect()
    }

    #[test]
    fn added_changed_and_deleted_paths_with_their_directories() {
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path().join("base");
        fs::create_dir_all(base.join("etc")).unwrap();
        fs::create_dir_all(base.join("bin")).unwrap();
        fs::create_dir_all(base.join("srv")).unwrap();
        fs::write(base.join("etc/motd"), "hi").unwrap();
        fs::write(base.join("bin/tool"), "").unwrap();
        fs::write(base.join("bin/gone-below"), "").unwrap();
        for dir in ["etc", "bin", "srv"] {
            fs::set_permissions(base.join(dir), fs::Permissions::from_mode(0o755)).unwrap();
        }
        // A later layer deletes bin/gone-below: writing it again adds it.
        let top = temp.path().join("top");
        fs::create_dir_all(top.join("bin")).unwrap();
        mknod(
            &top.join("bin/gone-below"),
            SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .unwrap();

        let tar = layer(&[
            ("bin/", 0o755),
            ("bin/.wh.tool", 0o600),
            ("bin/gone-below", 0o644),
            ("etc/", 0o755),
            ("etc/motd", 0o644),
            ("etc/new.d/", 0o755),
            ("etc/new.d/a", 0o644),
            ("srv/", 0o700),
            ("tmp-new/", 0o755),
        ]);
        let found = changes(tar.as_slice(), &[base, top]).unwrap();
        assert_eq!(
            lines(&found),
            [
                "C /bin",
                "A /bin/gone-below",
                "D /bin/tool",
                "C /etc",
                "C /etc/motd",
                "A /etc/new.d",
                "A /etc/new.d/a",
                "C /srv",
                "A /tmp-new",
            ]
        );
    }

    #[test]
    fn untouched_directories_and_opaque_ones() {
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path().join("base");
        fs::create_dir_all(base.join("etc")).unwrap();
        fs::create_dir_all(base.join("data/old")).unwrap();
        fs::set_permissions(base.join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        // The agent's /etc/hosts is left out of the layer; /etc stays.
        let tar = layer(&[
            ("./etc/", 0o755),
            ("data/", 0o755),
            ("data/.wh..wh..opq", 0o600),
            ("fresh/", 0o755),
            ("fresh/.wh..wh..opq", 0o600),
        ]);
        let found = changes(tar.as_slice(), std::slice::from_ref(&base)).unwrap();
        assert_eq!(lines(&found), ["C /data", "A /fresh"]);
    }
}
