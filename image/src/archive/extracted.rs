//! An image archive extracted into a staging directory: its regular files
//! written out, its links (symbolic and hard) kept as names to resolve.
//! `docker save` before v25 links a layer an image holds twice, or two
//! images share, from the later directory to the first
//! (`<id>/layer.tar -> ../<id>/layer.tar`), and skopeo links its legacy
//! directories to the layers it names by digest; Docker follows such links
//! inside the archive, and so does [`Extracted::path`]. Nothing is ever
//! resolved out of the archive.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::limits::{LimitExceeded, Limits};
use crate::quote::{quoted, quoted_path};
use crate::remove_tree::Staging;
use crate::tar_guard::TarGuard;

/// Most links one name may pass through (Linux's limit for a path).
const MAX_LINK_HOPS: usize = 40;

/// The archive's files under a staging directory, removed on drop.
pub(super) struct Extracted {
    staging: Staging,
    /// Each link's plain relative name and where it points.
    links: HashMap<PathBuf, Link>,
}

enum Link {
    /// Relative to the link's directory; absolute from the archive's root.
    Symbolic(PathBuf),
    /// From the archive's root.
    Hard(PathBuf),
}

impl Extracted {
    /// Extracts the regular files of the tar `input` into `staging` and
    /// notes its links; anything else (directories, devices) is not part
    /// of an image archive and is skipped. Held to `limits`: its header
    /// records, its number of entries (`max_layer_entries`) and each file
    /// to `max_layer_bytes`.
    pub(super) fn new(input: impl Read, staging: Staging, limits: &Limits) -> Result<Extracted> {
        let mut archive = tar::Archive::new(TarGuard::new(input, limits));
        let mut links = HashMap::new();
        let mut entries = 0u64;
        for entry in archive.entries().context("cannot read the archive")? {
            let mut entry = entry.context("corrupt archive")?;
            entries += 1;
            if entries > limits.max_layer_entries {
                return Err(LimitExceeded::layer_entries("the archive", limits).into());
            }
            let kind = entry.header().entry_type();
            if !matches!(
                kind,
                tar::EntryType::Regular | tar::EntryType::Symlink | tar::EntryType::Link
            ) {
                continue;
            }
            let raw_name = entry.path_bytes().into_owned();
            let name = plain_path(&String::from_utf8_lossy(&raw_name))?;
            if kind != tar::EntryType::Regular {
                let target = entry
                    .link_name()?
                    .with_context(|| format!("link {} has no target", quoted(&raw_name)))?
                    .into_owned();
                let link = match kind {
                    tar::EntryType::Symlink => Link::Symbolic(target),
                    _ => Link::Hard(target),
                };
                links.insert(name, link);
                continue;
            }
            links.remove(&name);
            let size = entry.size();
            if size > limits.max_layer_bytes {
                let what = format!("file {}", quoted(&raw_name));
                return Err(LimitExceeded::layer_bytes(what, Some(size), limits).into());
            }
            let path = staging.path().join(&name);
            let cannot = || format!("cannot extract {}", quoted(&raw_name));
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).with_context(cannot)?;
            }
            let mut file = File::create(&path).with_context(cannot)?;
            io::copy(&mut entry, &mut file).with_context(cannot)?;
        }
        Ok(Extracted { staging, links })
    }

    /// Where the file the archive calls `name` is, its links followed
    /// inside the archive; it need not exist.
    pub(super) fn path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.staging.path().join(self.resolve(name)?))
    }

    /// Whether the archive holds a file called `name`.
    pub(super) fn has_file(&self, name: &str) -> bool {
        self.path(name).is_ok_and(|path| path.is_file())
    }

    /// The file `name` opened, or an error naming it.
    pub(super) fn open(&self, name: &str) -> Result<File> {
        File::open(self.path(name)?).with_context(|| format!("the archive lacks {}", quoted(name)))
    }

    /// `name` as a plain path from the archive's root, each link on the
    /// way replaced by what it points to.
    fn resolve(&self, name: &str) -> Result<PathBuf> {
        let mut pending: VecDeque<OsString> =
            plain_path(name)?.iter().map(OsString::from).collect();
        let mut resolved = PathBuf::new();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            resolved.push(part);
            let Some(link) = self.links.get(&resolved) else {
                continue;
            };
            hops += 1;
            if hops > MAX_LINK_HOPS {
                bail!(
                    "the archive's links from {} pass through more than {MAX_LINK_HOPS} links",
                    quoted(name)
                );
            }
            let link_name = resolved.clone();
            let (start, target) = match link {
                Link::Symbolic(target) if target.is_relative() => {
                    resolved.pop();
                    (resolved, target)
                }
                Link::Symbolic(target) | Link::Hard(target) => (PathBuf::new(), target),
            };
            resolved = start;
            let mut followed = Vec::new();
            for component in target.components() {
                match component {
                    Component::Normal(part) => followed.push(part.to_owned()),
                    Component::ParentDir => {
                        if followed.pop().is_none() && !resolved.pop() {
                            bail!(
                                "the archive's link {} points outside the archive",
                                quoted_path(&link_name)
                            );
                        }
                    }
                    Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                }
            }
            for part in followed.into_iter().rev() {
                pending.push_front(part);
            }
        }
        Ok(resolved)
    }
}

/// `name` (a path inside the archive) as a relative path of plain parts,
/// refusing escapes; a leading `/` is the archive's root, as Docker takes
/// it.
fn plain_path(name: &str) -> Result<PathBuf> {
    let mut path = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                bail!("archive path {} is not a plain relative path", quoted(name))
            }
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `files` (name, contents) and `links` (name, target, hard).
    fn archive(files: &[(&str, &str)], links: &[(&str, &str, bool)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            // Set by hand: the builder refuses the absolute names some
            // archives have.
            header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, contents.as_bytes()).unwrap();
        }
        for (name, target, hard) in links {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(match hard {
                true => tar::EntryType::Link,
                false => tar::EntryType::Symlink,
            });
            header.set_size(0);
            builder.append_link(&mut header, name, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn extracted(tar: &[u8]) -> (tempfile::TempDir, Extracted) {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new_in(dir.path(), "x-").unwrap();
        let extracted = Extracted::new(tar, staging, &Limits::default()).unwrap();
        (dir, extracted)
    }

    fn read(extracted: &Extracted, name: &str) -> Result<String> {
        let mut text = String::new();
        extracted.open(name)?.read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn links_are_followed_inside_the_archive() {
        let tar = archive(
            &[("a/layer.tar", "layer"), ("/blobs/sha256/beef", "blob")],
            &[
                // docker save before v25: a layer held twice.
                ("b/layer.tar", "../a/layer.tar", false),
                // A link to a link, and one through a linked directory.
                ("c/layer.tar", "../b/layer.tar", false),
                ("d", "a", false),
                ("abs", "/blobs/sha256/beef", false),
                ("hard", "blobs/sha256/beef", true),
            ],
        );
        let (_dir, extracted) = extracted(&tar);
        for name in ["a/layer.tar", "b/layer.tar", "c/layer.tar", "d/layer.tar"] {
            assert_eq!(read(&extracted, name).unwrap(), "layer", "{name}");
        }
        for name in ["abs", "hard", "./blobs/sha256/beef", "/blobs/sha256/beef"] {
            assert_eq!(read(&extracted, name).unwrap(), "blob", "{name}");
        }
        assert!(extracted.has_file("b/layer.tar"));
        assert!(!extracted.has_file("d"));
    }

    #[test]
    fn links_out_of_the_archive_and_in_circles_are_refused() {
        let tar = archive(
            &[],
            &[
                ("up", "../../etc/passwd", false),
                ("loop1", "loop2", false),
                ("loop2", "loop1", false),
            ],
        );
        let (_dir, extracted) = extracted(&tar);
        let err = format!("{:#}", read(&extracted, "up").unwrap_err());
        assert!(err.contains("points outside the archive"), "{err}");
        let err = format!("{:#}", read(&extracted, "loop1").unwrap_err());
        assert!(err.contains("more than 40 links"), "{err}");
        let err = format!("{:#}", read(&extracted, "../x").unwrap_err());
        assert!(err.contains("not a plain relative path"), "{err}");
        let err = format!("{:#}", read(&extracted, "missing").unwrap_err());
        assert_eq!(
            err,
            r#"the archive lacks "missing": No such file or directory (os error 2)"#
        );
    }
}
