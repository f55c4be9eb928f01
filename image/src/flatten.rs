//! An image's root file system as one tar, as its containers see it: each
//! layer's entries over those of the layers below, whiteouts and opaque
//! directories hiding what is under them (`hull build --output`).
//!
//! Layers are read as the store keeps them, in overlayfs form: a whiteout
//! is a character device 0/0, an opaque directory carries
//! `user.overlay.opaque=y`. Neither is written out.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::quote::quoted_path;

/// The xattr an opaque directory carries.
const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// What an upper layer has at a path, for the layers below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upper {
    /// A directory: lower entries in it still show.
    Directory,
    /// A directory that hides everything below it.
    Opaque,
    /// A file, link or device, or a whiteout: nothing below shows.
    Covering,
}

/// Writes the root file system of an image whose unpacked layers are
/// `layers` (bottom to top, as [`crate::Image::layers`]) into `out` as a
/// tar.
pub fn flatten(layers: &[PathBuf], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut uppers: HashMap<PathBuf, Upper> = HashMap::new();
    for layer in layers.iter().rev() {
        let found = add_layer(&mut tar, layer, &uppers)
            .with_context(|| format!("cannot read the layer {}", layer.display()))?;
        uppers.extend(found);
    }
    tar.into_inner()
        .context("cannot write the file system's tar")?
        .flush()
        .context("cannot write the file system's tar")
}

/// Writes the root file system of the image whose layers are `layers`
/// into the directory `dir` (made if missing), as buildx's local exporter
/// writes it: files, directories and links, owned by this process's user;
/// device nodes and FIFOs left out. None is placed outside `dir`: the tar
/// crate's unpacking refuses `..` and paths through links, and `dir` must
/// be one no other user can write (who could swap a directory in it for a
/// link while the files go in).
pub fn flatten_into(layers: &[PathBuf], dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    check_private(dir)?;
    let (reader, writer) = std::io::pipe().context("cannot make a pipe")?;
    let layers = layers.to_vec();
    let flattening = std::thread::spawn(move || flatten(&layers, writer));
    // A failed write ends the reading (with a broken pipe): its own error
    // is the one to tell.
    let unpacked = unpack_files(reader, dir)
        .with_context(|| format!("cannot write the image's files into {}", dir.display()));
    let flattened = flattening
        .join()
        .map_err(|_| anyhow::anyhow!("reading the image's layers failed"))?;
    unpacked.and(flattened)
}

/// An error unless `dir` is this user's and no one else can write in it.
fn check_private(dir: &Path) -> Result<()> {
    let metadata = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let others_write = metadata.permissions().mode() & 0o022 != 0;
    // SAFETY: geteuid takes nothing and cannot fail.
    let mine = metadata.uid() == unsafe { libc::geteuid() };
    match metadata.is_dir() && mine && !others_write {
        true => Ok(()),
        false => bail!(
            "{} is not a directory of yours that only you can write: give a new \
             directory, or one of your own",
            dir.display()
        ),
    }
}

/// Unpacks the tar `reader` into `dir`, leaving out device nodes and FIFOs.
fn unpack_files(reader: impl Read, dir: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            continue;
        }
        entry.unpack_in(dir)?;
    }
    Ok(())
}

/// Adds the entries of the layer at `dir` that `uppers` (what the layers
/// above have) leave visible; returns what this layer has, for those below.
fn add_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    uppers: &HashMap<PathBuf, Upper>,
) -> Result<HashMap<PathBuf, Upper>> {
    let mut found = HashMap::new();
    // Depth first, without recursion: layers may be deeper than the stack.
    let mut pending: Vec<PathBuf> = children(dir, Path::new(""))?;
    while let Some(relative) = pending.pop() {
        let path = dir.join(&relative);
        let metadata = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", quoted_path(&path)))?;
        let here = kind(&path, &metadata);
        let upper = uppers.get(&relative).copied();
        if upper.is_none() && here != Whiteout {
            append(tar, &path, &relative, &metadata)
                .with_context(|| format!("cannot add {}", quoted_path(&path)))?;
        }
        let descend = matches!(
            (upper, here),
            (None | Some(Upper::Directory), Directory | OpaqueDirectory)
        );
        if descend {
            pending.extend(children(dir, &relative)?);
        }
        // What the layers below see at this path: this layer's entry, but
        // under a directory from above a directory of its own changes
        // nothing, while a whiteout, a file or an opaque directory here
        // still hides what is below it.
        let shown = match here {
            Directory => Upper::Directory,
            OpaqueDirectory => Upper::Opaque,
            Whiteout | Other => Upper::Covering,
        };
        match upper {
            None => {
                found.insert(relative, shown);
            }
            Some(Upper::Directory) if shown != Upper::Directory => {
                found.insert(relative, shown);
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

/// Adds the entry at `path` to `tar` as `name`. The tar crate adds files,
/// directories and links; device nodes and FIFOs get a header made here
/// (its own way sets their path from `path`, not `name`).
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    metadata: &Metadata,
) -> std::io::Result<()> {
    let file_type = metadata.file_type();
    let kind = match file_type {
        t if t.is_char_device() => tar::EntryType::Char,
        t if t.is_block_device() => tar::EntryType::Block,
        t if t.is_fifo() => tar::EntryType::Fifo,
        _ => return tar.append_path_with_name(path, name),
    };
    let mut header = tar::Header::new_gnu();
    header.set_metadata(metadata);
    header.set_entry_type(kind);
    header.set_size(0);
    let device = metadata.rdev();
    header.set_device_major(libc::major(device))?;
    header.set_device_minor(libc::minor(device))?;
    tar.append_data(&mut header, name, std::io::empty())
}

use EntryKind::*;

/// What a layer has at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryKind {
    Directory,
    OpaqueDirectory,
    Whiteout,
    Other,
}

fn kind(path: &Path, metadata: &Metadata) -> EntryKind {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return match xattr::get(path, OPAQUE_XATTR) {
            Ok(Some(value)) if value == b"y" => OpaqueDirectory,
            _ => Directory,
        };
    }
    match file_type.is_char_device() && metadata.rdev() == 0 {
        true => Whiteout,
        false => Other,
    }
}

/// The entries of `dir/relative`, as paths relative to `dir`, in reverse
/// name order (popped from a stack, they come out in name order).
fn children(dir: &Path, relative: &Path) -> Result<Vec<PathBuf>> {
    let listed = dir.join(relative);
    let mut names: Vec<OsString> = fs::read_dir(&listed)
        .with_context(|| format!("cannot list {}", quoted_path(&listed)))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", quoted_path(&listed)))?;
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names.into_iter().map(|name| relative.join(name)).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Path, and a file's contents, a symlink's target (`-> target`) or `/`
    /// for a directory, of every entry of `tar`.
    fn listing(tar: &[u8]) -> BTreeMap<String, String> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().display().to_string();
                let shown = match entry.header().entry_type() {
                    tar::EntryType::Directory => "/".to_owned(),
                    tar::EntryType::Symlink => {
                        format!("-> {}", entry.link_name().unwrap().unwrap().display())
                    }
                    _ => std::io::read_to_string(&mut entry).unwrap(),
                };
                (path, shown)
            })
            .collect()
    }

    fn whiteout(path: &Path) {
        nix::sys::stat::mknod(
            path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
    }

    #[test]
    fn upper_layers_win_and_whiteouts_and_opaque_directories_hide_what_is_below() {
        let dir = tempfile::tempdir().unwrap();
        let [bottom, top] = ["bottom", "top"].map(|name| dir.path().join(name));
        for layer in [&bottom, &top] {
            fs::create_dir(layer).unwrap();
        }
        // Bottom: an app, a cache, config files, a directory replaced by a
        // file above.
        fs::create_dir_all(bottom.join("app/lib")).unwrap();
        fs::write(bottom.join("app/lib/old.py"), "old").unwrap();
        fs::write(bottom.join("app/main.py"), "v1").unwrap();
        fs::create_dir_all(bottom.join("cache/deep")).unwrap();
        fs::write(bottom.join("cache/deep/blob"), "stale").unwrap();
        fs::create_dir(bottom.join("etc")).unwrap();
        fs::write(bottom.join("etc/keep"), "kept").unwrap();
        fs::write(bottom.join("etc/gone"), "deleted").unwrap();
        fs::create_dir_all(bottom.join("was-dir/inner")).unwrap();
        fs::write(bottom.join("was-dir/inner/f"), "hidden").unwrap();
        // Top: main.py changed, lib/ emptied (opaque), old.py whited out
        // elsewhere, cache/ deleted, was-dir a file now, a new symlink.
        fs::create_dir_all(top.join("app/lib")).unwrap();
        fs::write(top.join("app/main.py"), "v2").unwrap();
        xattr::set(top.join("app/lib"), OPAQUE_XATTR, b"y").unwrap();
        fs::write(top.join("app/lib/new.py"), "new").unwrap();
        whiteout(&top.join("cache"));
        fs::create_dir(top.join("etc")).unwrap();
        whiteout(&top.join("etc/gone"));
        fs::write(top.join("was-dir"), "a file").unwrap();
        std::os::unix::fs::symlink("/etc/keep", top.join("link")).unwrap();
        fs::set_permissions(top.join("app/main.py"), fs::Permissions::from_mode(0o755)).unwrap();

        let mut tar = Vec::new();
        flatten(&[bottom, top], &mut tar).unwrap();
        let expected: BTreeMap<String, String> = [
            ("app", "/"),
            ("app/lib", "/"),
            ("app/lib/new.py", "new"),
            ("app/main.py", "v2"),
            ("etc", "/"),
            ("etc/keep", "kept"),
            ("link", "-> /etc/keep"),
            ("was-dir", "a file"),
        ]
        .into_iter()
        .map(|(path, shown)| (path.to_owned(), shown.to_owned()))
        .collect();
        assert_eq!(listing(&tar), expected);
        // Each entry once, with the upper layer's metadata.
        let mut archive = tar::Archive::new(&tar[..]);
        let modes: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let path = entry.path().unwrap().display().to_string();
                (path, entry.header().mode().unwrap() & 0o777)
            })
            .filter(|(path, _)| path == "app/main.py")
            .collect();
        assert_eq!(modes, [("app/main.py".to_owned(), 0o755)]);
    }

    #[test]
    fn what_a_middle_layer_deleted_stays_deleted_under_a_directory_from_above() {
        // RUN mkdir /app && echo key > /app/secret; RUN rm -rf /app;
        // COPY main.py /app/ -- and the same with the directory made
        // again (opaque) in the middle layer.
        for middle_deletes_with in ["whiteout", "opaque directory", "file"] {
            let dir = tempfile::tempdir().unwrap();
            let [bottom, middle, top] =
                ["bottom", "middle", "top"].map(|name| dir.path().join(name));
            fs::create_dir_all(bottom.join("app")).unwrap();
            fs::write(bottom.join("app/secret"), "key").unwrap();
            fs::create_dir(&middle).unwrap();
            match middle_deletes_with {
                "whiteout" => whiteout(&middle.join("app")),
                "file" => fs::write(middle.join("app"), "a file").unwrap(),
                _ => {
                    fs::create_dir(middle.join("app")).unwrap();
                    xattr::set(middle.join("app"), OPAQUE_XATTR, b"y").unwrap();
                    fs::write(middle.join("app/kept"), "middle").unwrap();
                }
            }
            fs::create_dir_all(top.join("app")).unwrap();
            fs::write(top.join("app/main.py"), "v1").unwrap();
            let mut tar = Vec::new();
            flatten(&[bottom, middle, top], &mut tar).unwrap();
            let listed = listing(&tar);
            assert!(
                !listed.contains_key("app/secret"),
                "{middle_deletes_with}: {listed:?}"
            );
            assert_eq!(listed["app/main.py"], "v1", "{middle_deletes_with}");
            assert_eq!(
                listed.contains_key("app/kept"),
                middle_deletes_with == "opaque directory",
                "{middle_deletes_with}: {listed:?}"
            );
        }
    }

    #[test]
    fn flattened_files_are_written_into_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(layer.join("out/bin")).unwrap();
        fs::write(layer.join("out/bin/tool"), "binary").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", layer.join("out/escape")).unwrap();
        nix::sys::stat::mknod(
            &layer.join("out/fifo"),
            nix::sys::stat::SFlag::S_IFIFO,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            0,
        )
        .unwrap();
        // A tar keeps the FIFO as one; a directory gets none.
        let mut tar = Vec::new();
        flatten(std::slice::from_ref(&layer), &mut tar).unwrap();
        let fifos: Vec<tar::EntryType> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().unwrap() == Path::new("out/fifo"))
            .map(|entry| entry.header().entry_type())
            .collect();
        assert_eq!(fifos, [tar::EntryType::Fifo]);
        let dest = dir.path().join("dest");
        flatten_into(std::slice::from_ref(&layer), &dest).unwrap();
        assert!(!dest.join("out/fifo").exists(), "FIFOs are left out");
        assert_eq!(
            fs::read_to_string(dest.join("out/bin/tool")).unwrap(),
            "binary"
        );
        // A link is written as a link, never followed.
        assert_eq!(
            fs::read_link(dest.join("out/escape")).unwrap(),
            Path::new("/etc/passwd")
        );
        // Not into a directory others can write in.
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = flatten_into(&[layer], &shared).unwrap_err();
        assert!(format!("{err:#}").contains("only you can write"), "{err:#}");
        assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);
    }

    #[test]
    fn an_unreadable_layer_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-layer");
        let err = flatten(std::slice::from_ref(&missing), Vec::new()).unwrap_err();
        assert!(
            format!("{err:#}").starts_with(&format!("cannot read the layer {}", missing.display())),
            "{err:#}"
        );
    }
}
