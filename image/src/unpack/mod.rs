//! Unpacking one layer tar into its own directory, in overlayfs format.
//!
//! Every entry is placed relative to the layer root through directory file
//! descriptors opened with `O_NOFOLLOW`, one path component at a time, so no
//! entry can reach outside the layer: paths are cleaned as Docker cleans
//! them and a `..` that would climb out of the layer is refused, absolute
//! paths are taken relative to the layer root, and a symlink (planted by an
//! earlier entry or not) is never followed. OCI whiteouts become what
//! overlayfs expects of a lower layer: `.wh.NAME` a character device 0/0 named
//! NAME, `.wh..wh..opq` the xattr `user.overlay.opaque=y` on its directory.
//!
//! A later entry replaces an earlier one of the same name, as GNU tar and
//! Docker do, a directory with everything in it (a directory entry over a
//! directory only updates it). PAX global headers are ignored, as Docker
//! ignores them.
//!
//! The layer is held to [`Limits`]: its uncompressed stream to
//! `max_layer_bytes`, its entries (and the directories made for them) to
//! `max_layer_entries`, its header records to `max_header_bytes` (see
//! `tar_guard`). Memory stays bounded whatever the layer holds.
//!
//! The `user.` namespace (overlayfs's `userxattr` mount option) rather than
//! `trusted.`: it survives every hop to the guest, including the KVM test
//! host's 9p share, which passes `user.*` xattrs only.

mod at;
mod dir_times;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};
use tar::EntryType;

use crate::capped::Capped;
use crate::limits::{limit_alone, LimitExceeded, Limits};
use crate::quote::{quoted, quoted_path};
use crate::remove_tree::remove_tree_at;
use crate::tar_guard::TarGuard;
use at::{lookup_dir, open_dir, set_mtime, set_xattr, stat_nofollow};
use dir_times::DirTimes;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "user.overlay.opaque";
/// overlayfs's own xattrs, in both the namespaces it may read them from.
const OVERLAY_XATTR_PREFIXES: [&str; 2] = ["user.overlay.", "trusted.overlay."];
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";
/// PAX keys of GNU's sparse files.
const PAX_SPARSE_PREFIX: &str = "GNU.sparse.";

/// Unpacks the tar stream `layer` into the existing, empty directory `dest`
/// (its parent holds a temporary file meanwhile), reading `layer` to its
/// end. A limit it goes over is the error, alone.
pub fn unpack_layer(layer: impl Read, dest: &Path, limits: &Limits) -> Result<()> {
    unpack(layer, dest, limits).map_err(limit_alone)
}

fn unpack(layer: impl Read, dest: &Path, limits: &Limits) -> Result<()> {
    let root = open_dir(None, dest.as_os_str())
        .with_context(|| format!("cannot open {}", dest.display()))?;
    let beside = dest
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stream = Capped::new(layer, limits.max_layer_bytes, || {
        LimitExceeded::layer_bytes("the layer's uncompressed tar", None, limits)
    });
    let mut archive = tar::Archive::new(TarGuard::new(stream, limits));
    let mut unpacker = Unpacker {
        root,
        limits,
        entries: 0,
        dir_times: DirTimes::new(beside)?,
    };
    for entry in archive.entries().context("cannot read the layer tar")? {
        let mut entry = entry.context("corrupt layer tar")?;
        unpacker.entry(&mut entry)?;
    }
    // Creating entries changed the directories' mtimes: restore them last.
    let Unpacker {
        root, dir_times, ..
    } = unpacker;
    dir_times.apply(&root)?;
    // The uncompressed digest covers everything, including the padding after
    // the end-of-archive blocks.
    io::copy(&mut archive.into_inner(), &mut io::sink()).context("cannot read the layer tar")?;
    Ok(())
}

/// One layer being unpacked.
struct Unpacker<'l> {
    /// The layer's directory.
    root: OwnedFd,
    limits: &'l Limits,
    /// Entries so far, and directories made for them.
    entries: u64,
    dir_times: DirTimes,
}

impl Unpacker<'_> {
    /// Places one tar entry.
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        self.count_entry()?;
        if entry.header().entry_type() == EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw_path = entry.path().context("corrupt entry path")?.into_owned();
        let components = safe_components(&raw_path)?;
        let Some((name, parents)) = components.split_last() else {
            return Ok(()); // The layer root itself: its metadata is the store's.
        };
        let parent = self
            .open_parents(parents)
            .with_context(|| format!("layer entry {}", quoted_path(&raw_path)))?;
        let name = name.as_os_str();
        let unpacked = unpack_entry(entry, &self.root, &parent, name)
            .with_context(|| format!("cannot unpack layer entry {}", quoted_path(&raw_path)))?;
        if unpacked == Unpacked::Directory {
            let st = stat_nofollow(&parent, name)?.context("a directory just made is gone")?;
            let path = components
                .iter()
                .map(|c| c.as_os_str().as_bytes())
                .collect::<Vec<_>>()
                .join(&b'/');
            self.dir_times
                .note(&path, st.st_ino, entry.header().mtime().unwrap_or(0))?;
        }
        Ok(())
    }

    /// One more entry (or directory made for one), within the limit.
    fn count_entry(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_layer_entries {
            return Err(LimitExceeded::layer_entries("the layer", self.limits).into());
        }
        Ok(())
    }

    /// Opens (creating as needed, mode 0755) the directory `components`
    /// under the root, refusing to pass through anything that is not a
    /// real directory.
    fn open_parents(&mut self, components: &[PathBuf]) -> Result<OwnedFd> {
        let mut current = open_dir(Some(self.root.as_raw_fd()), OsStr::new("."))?;
        for component in components {
            let name = component.as_os_str();
            let next = match open_dir(Some(current.as_raw_fd()), name) {
                Err(Errno::ENOENT) => {
                    self.count_entry()?;
                    mkdirat(
                        Some(current.as_raw_fd()),
                        name,
                        Mode::from_bits_truncate(0o755),
                    )?;
                    open_dir(Some(current.as_raw_fd()), name)
                }
                other => other,
            };
            current = match next {
                Ok(fd) => fd,
                Err(Errno::ELOOP | Errno::ENOTDIR) => bail!(
                    "path component {} is a symlink or not a directory",
                    quoted_path(component)
                ),
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("cannot open {}", quoted_path(component)))
                }
            };
        }
        Ok(current)
    }
}

#[derive(PartialEq)]
enum Unpacked {
    Directory,
    Other,
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<R>,
    root: &OwnedFd,
    parent: &OwnedFd,
    name: &OsStr,
) -> Result<Unpacked> {
    let name_bytes = name.as_bytes();
    if name_bytes == OPAQUE_MARKER.as_bytes() {
        set_xattr(parent, OsStr::new("."), OPAQUE_XATTR, b"y")?;
        return Ok(Unpacked::Other);
    }
    if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        if matches!(hidden, b"" | b"." | b"..") {
            bail!("invalid whiteout name {}", quoted(name_bytes));
        }
        let hidden = OsStr::from_bytes(hidden);
        remove_existing(parent, hidden)?;
        mknodat(
            Some(parent.as_raw_fd()),
            hidden,
            SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .context("cannot create whiteout")?;
        return Ok(Unpacked::Other);
    }

    refuse_pax_sparse(entry)?;
    let header = entry.header().clone();
    let kind = header.entry_type();
    let mode = Mode::from_bits_truncate(header.mode().context("bad mode")? & 0o7777);
    match kind {
        EntryType::Directory => match stat_nofollow(parent, name)? {
            Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
            Some(_) => {
                remove_existing(parent, name)?;
                mkdirat(Some(parent.as_raw_fd()), name, Mode::S_IRWXU)?;
            }
            None => mkdirat(Some(parent.as_raw_fd()), name, Mode::S_IRWXU)?,
        },
        EntryType::Regular | EntryType::Continuous => {
            remove_existing(parent, name)?;
            let fd = openat(
                Some(parent.as_raw_fd()),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::S_IRUSR | Mode::S_IWUSR,
            )?;
            // SAFETY: `openat` just returned this descriptor and nothing else owns it.
            let mut file = unsafe { File::from_raw_fd(fd) };
            io::copy(entry, &mut file).context("cannot write file contents")?;
        }
        EntryType::Symlink => {
            let target = entry
                .link_name()?
                .ok_or_else(|| anyhow!("symlink without a target"))?;
            remove_existing(parent, name)?;
            symlinkat(target.as_ref(), Some(parent.as_raw_fd()), name)?;
        }
        EntryType::Link => {
            let target = entry
                .link_name()?
                .ok_or_else(|| anyhow!("hard link without a target"))?;
            let target_components = safe_components(&target)?;
            let (target_name, target_parents) = target_components
                .split_last()
                .ok_or_else(|| anyhow!("hard link to the layer root"))?;
            let cannot_link = || format!("cannot link to {}", quoted_path(&target));
            let target_parent = lookup_dir(root, target_parents.iter().map(|c| c.as_os_str()))
                .with_context(cannot_link)?;
            remove_existing(parent, name)?;
            linkat(
                Some(target_parent.as_raw_fd()),
                target_name.as_os_str(),
                Some(parent.as_raw_fd()),
                name,
                AtFlags::empty(),
            )
            .with_context(cannot_link)?;
            // A hard link shares its target's inode and metadata.
            return Ok(Unpacked::Other);
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let sflag = match kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let device = if kind == EntryType::Fifo {
                0
            } else {
                let major = header.device_major()?.unwrap_or(0);
                let minor = header.device_minor()?.unwrap_or(0);
                libc::makedev(major, minor)
            };
            remove_existing(parent, name)?;
            mknodat(Some(parent.as_raw_fd()), name, sflag, mode, device)?;
        }
        other => bail!("unsupported tar entry type {other:?}"),
    }

    let is_symlink = kind == EntryType::Symlink;
    let uid = header.uid().context("bad uid")?;
    let gid = header.gid().context("bad gid")?;
    let owner = Some(Uid::from_raw(
        u32::try_from(uid).context("uid out of range")?,
    ));
    let group = Some(Gid::from_raw(
        u32::try_from(gid).context("gid out of range")?,
    ));
    fchownat(
        Some(parent.as_raw_fd()),
        name,
        owner,
        group,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("cannot set owner")?;
    if !is_symlink {
        // After chown, which clears set-id bits. The entry is not a symlink
        // and was created by us in a directory only we write to.
        fchmodat(
            Some(parent.as_raw_fd()),
            name,
            mode,
            FchmodatFlags::FollowSymlink,
        )
        .context("cannot set mode")?;
    }
    for (key, value) in pax_xattrs(entry)? {
        // overlayfs reads these from lower layers (redirects, opaque dirs,
        // metacopy): only our own whiteout conversion may set them.
        if OVERLAY_XATTR_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
        {
            log::warn!("ignoring xattr {} recorded in a layer", quoted(&key));
            continue;
        }
        set_xattr(parent, name, &key, &value)?;
    }
    if kind == EntryType::Directory {
        return Ok(Unpacked::Directory);
    }
    set_mtime(parent, name, header.mtime().unwrap_or(0))?;
    Ok(Unpacked::Other)
}

/// The normal components of an entry path, cleaned as Docker cleans it
/// (`./a/./b/../c` is `a/c`, by its text alone: no link is followed).
/// Absolute paths are taken relative to the layer root; a `..` that would
/// climb out of it is refused.
fn safe_components(path: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(PathBuf::from(part)),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    bail!(
                        "layer entry {} escapes the layer with '..'",
                        quoted_path(path)
                    )
                }
            }
        }
    }
    Ok(out)
}

/// Removes whatever `name` is in `parent` (a later entry replaces an
/// earlier one): a directory with everything in it, at any depth, never
/// following a symlink.
fn remove_existing(parent: &OwnedFd, name: &OsStr) -> Result<()> {
    remove_tree_at(parent, name)
        .with_context(|| format!("cannot replace {}", quoted(name.as_bytes())))
}

/// Fails for a sparse file in PAX's GNU format (`tar --format=posix -S`):
/// its data is a map of holes and the pieces between them, under a
/// made-up name, which written as it is would be a wrong file.
fn refuse_pax_sparse<R: Read>(entry: &mut tar::Entry<R>) -> Result<()> {
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(());
    };
    for extension in extensions {
        let Ok(key) = extension?.key() else { continue };
        if key.starts_with(PAX_SPARSE_PREFIX) {
            bail!(
                "{} is a sparse file (GNU.sparse in its PAX header), which hull does not \
                 unpack: make the layer without tar's -S",
                quoted_path(&entry.path()?)
            );
        }
    }
    Ok(())
}

/// Extended attributes recorded in the entry's PAX header.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<R>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut xattrs = Vec::new();
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            if let Ok(key) = extension.key() {
                if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    xattrs.push((name.to_owned(), extension.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(xattrs)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    use super::*;

    /// Builds tars entry by entry, with names written verbatim (the tar
    /// crate's own builder refuses the hostile ones these tests need).
    struct TarBuilder(tar::Builder<Vec<u8>>);

    impl TarBuilder {
        fn new() -> Self {
            TarBuilder(tar::Builder::new(Vec::new()))
        }

        fn entry(
            &mut self,
            name: &str,
            kind: EntryType,
            data: &[u8],
            link: Option<&str>,
        ) -> &mut Self {
            let mut header = tar::Header::new_gnu();
            let field = &mut header.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            });
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_000_000);
            if let Some(link) = link {
                header.set_link_name_literal(link).unwrap();
            }
            header.set_cksum();
            self.0.append(&header, data).unwrap();
            self
        }

        fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
            self.entry(name, EntryType::Regular, data, None)
        }

        fn dir(&mut self, name: &str) -> &mut Self {
            self.entry(name, EntryType::Directory, b"", None)
        }

        fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
            self.entry(name, EntryType::Symlink, b"", Some(target))
        }

        fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
            self.entry(name, EntryType::Link, b"", Some(target))
        }

        fn header(&mut self, mut header: tar::Header, data: &[u8]) -> &mut Self {
            header.set_size(data.len() as u64);
            header.set_cksum();
            self.0.append(&header, data).unwrap();
            self
        }

        fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
            let mut data = Vec::new();
            for (key, value) in records {
                let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
                let mut len = body_len + 1;
                while len.to_string().len() + body_len != len {
                    len = len.to_string().len() + body_len;
                }
                data.extend_from_slice(format!("{len} {key}=").as_bytes());
                data.extend_from_slice(value);
                data.push(b'\n');
            }
            self.entry("PaxHeaders/x", EntryType::XHeader, &data, None)
        }

        /// A file whose name, verbatim, goes in a GNU long name record.
        fn long_name_file(&mut self, name: &str) -> &mut Self {
            let mut record = name.as_bytes().to_vec();
            record.push(0);
            self.entry("././@LongLink", EntryType::GNULongName, &record, None);
            self.file("short", b"")
        }

        fn build(&mut self) -> Vec<u8> {
            std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()))
                .into_inner()
                .unwrap()
        }
    }

    /// A sandbox: `layer/` to unpack into, next to `outside/` that no layer
    /// may touch.
    struct Sandbox {
        dir: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Sandbox {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("layer")).unwrap();
            fs::create_dir(dir.path().join("outside")).unwrap();
            Sandbox { dir }
        }

        fn layer(&self) -> PathBuf {
            self.dir.path().join("layer")
        }

        fn outside(&self) -> PathBuf {
            self.dir.path().join("outside")
        }

        fn unpack(&self, tar: &[u8]) -> Result<()> {
            unpack_layer(tar, &self.layer(), &Limits::default())
        }

        fn assert_outside_untouched(&self) {
            assert_eq!(
                fs::read_dir(self.outside()).unwrap().count(),
                0,
                "a layer wrote outside its directory"
            );
        }
    }

    #[test]
    fn unpacks_files_dirs_links_devices_with_metadata() {
        let sandbox = Sandbox::new();
        let mut setuid = tar::Header::new_gnu();
        setuid.set_path("usr/bin/tool").unwrap();
        setuid.set_mode(0o4755);
        setuid.set_uid(1000);
        setuid.set_gid(2000);
        setuid.set_mtime(1_234_567);
        let mut device = tar::Header::new_gnu();
        device.set_path("dev/null").unwrap();
        device.set_entry_type(EntryType::Char);
        device.set_mode(0o666);
        device.set_device_major(1).unwrap();
        device.set_device_minor(3).unwrap();
        device.set_uid(0);
        device.set_gid(0);
        device.set_mtime(0);
        let mut fifo = tar::Header::new_gnu();
        fifo.set_path("run/pipe").unwrap();
        fifo.set_entry_type(EntryType::Fifo);
        fifo.set_mode(0o600);
        fifo.set_uid(0);
        fifo.set_gid(0);
        fifo.set_mtime(0);
        let tar = TarBuilder::new()
            .dir("etc")
            .file("etc/hosts", b"127.0.0.1 localhost\n")
            .header(setuid, b"#!/bin/sh\n")
            .symlink("bin", "usr/bin")
            .hardlink("etc/hosts.link", "etc/hosts")
            .header(device, b"")
            .header(fifo, b"")
            .pax(&[("SCHILY.xattr.user.note", b"kept")])
            .file("etc/noted", b"x")
            .build();
        sandbox.unpack(&tar).unwrap();

        let layer = sandbox.layer();
        assert_eq!(
            fs::read(layer.join("etc/hosts")).unwrap(),
            b"127.0.0.1 localhost\n"
        );
        let tool = fs::metadata(layer.join("usr/bin/tool")).unwrap();
        assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(
            (tool.uid(), tool.gid(), tool.mtime()),
            (1000, 2000, 1_234_567)
        );
        assert_eq!(
            fs::read_link(layer.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        let hosts = fs::metadata(layer.join("etc/hosts")).unwrap();
        let link = fs::metadata(layer.join("etc/hosts.link")).unwrap();
        assert_eq!((hosts.ino(), hosts.nlink()), (link.ino(), 2));
        let null = fs::symlink_metadata(layer.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert!(fs::symlink_metadata(layer.join("run/pipe"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            get_xattr(&layer.join("etc/noted"), "user.note").as_deref(),
            Some(&b"kept"[..])
        );
        assert_eq!(
            fs::metadata(layer.join("etc")).unwrap().mtime(),
            1_000_000,
            "directory mtimes restored last"
        );
    }

    #[test]
    fn whiteouts_become_overlayfs_devices_and_opaque_xattrs() {
        let sandbox = Sandbox::new();
        let tar = TarBuilder::new()
            .dir("etc")
            .file("etc/.wh.passwd", b"")
            .dir("var/cache")
            .file("var/cache/.wh..wh..opq", b"")
            .build();
        sandbox.unpack(&tar).unwrap();
        let layer = sandbox.layer();
        let whiteout = fs::symlink_metadata(layer.join("etc/passwd")).unwrap();
        assert!(whiteout.file_type().is_char_device());
        assert_eq!(whiteout.rdev(), 0);
        assert!(!layer.join("etc/.wh.passwd").exists());
        assert_eq!(
            get_xattr(&layer.join("var/cache"), OPAQUE_XATTR).as_deref(),
            Some(&b"y"[..])
        );
        assert!(!layer.join("var/cache/.wh..wh..opq").exists());
    }

    #[test]
    fn overlay_xattrs_recorded_in_a_layer_are_ignored() {
        let sandbox = Sandbox::new();
        let tar = TarBuilder::new()
            .pax(&[
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                ("SCHILY.xattr.user.overlay.opaque", b"y"),
                ("SCHILY.xattr.user.ok", b"1"),
            ])
            .dir("d")
            .build();
        sandbox.unpack(&tar).unwrap();
        for overlay_xattr in ["trusted.overlay.redirect", "user.overlay.opaque"] {
            assert_eq!(get_xattr(&sandbox.layer().join("d"), overlay_xattr), None);
        }
        assert_eq!(
            get_xattr(&sandbox.layer().join("d"), "user.ok").as_deref(),
            Some(&b"1"[..])
        );
    }

    #[test]
    fn refuses_dot_dot_paths() {
        let sandbox = Sandbox::new();
        let tar = TarBuilder::new().file("../outside/evil", b"x").build();
        let err = format!("{:#}", sandbox.unpack(&tar).unwrap_err());
        assert!(err.contains("escapes the layer"), "{err}");
        let tar = TarBuilder::new()
            .dir("a")
            .file("a/../../outside/evil", b"x")
            .build();
        assert!(sandbox.unpack(&tar).is_err());
        // A `..` that stays inside is cleaned away, as Docker cleans it.
        let tar = TarBuilder::new()
            .dir("a")
            .dir("a/b")
            .file("./a/./b/../c", b"inside")
            .build();
        sandbox.unpack(&tar).unwrap();
        assert_eq!(fs::read(sandbox.layer().join("a/c")).unwrap(), b"inside");
        sandbox.assert_outside_untouched();
    }

    #[test]
    fn absolute_paths_stay_inside_the_layer() {
        let sandbox = Sandbox::new();
        let absolute = format!("{}/evil", sandbox.outside().display());
        let tar = TarBuilder::new()
            .file(&absolute, b"x")
            .file("/etc/motd", b"hi")
            .build();
        sandbox.unpack(&tar).unwrap();
        sandbox.assert_outside_untouched();
        assert_eq!(fs::read(sandbox.layer().join("etc/motd")).unwrap(), b"hi");
        assert!(sandbox
            .layer()
            .join(absolute.trim_start_matches('/'))
            .is_file());
    }

    #[test]
    fn never_writes_through_a_symlink_planted_earlier() {
        let sandbox = Sandbox::new();
        let outside = sandbox.outside().display().to_string();
        // A directory symlink pointing out, then a file beneath it.
        let tar = TarBuilder::new()
            .symlink("escape", &outside)
            .file("escape/evil", b"x")
            .build();
        let err = format!("{:#}", sandbox.unpack(&tar).unwrap_err());
        assert!(err.contains("symlink"), "{err}");
        // The same with a relative target.
        let tar = TarBuilder::new()
            .symlink("up", "../outside")
            .file("up/evil", b"x")
            .build();
        assert!(sandbox.unpack(&tar).is_err());
        // A file symlink pointing out, then a file of the same name: the
        // symlink is replaced, its target untouched.
        let tar = TarBuilder::new()
            .symlink("motd", &format!("{outside}/motd"))
            .file("motd", b"inside")
            .build();
        sandbox.unpack(&tar).unwrap();
        assert_eq!(fs::read(sandbox.layer().join("motd")).unwrap(), b"inside");
        // Whiteouts and opaque markers below a symlink are refused too.
        let tar = TarBuilder::new()
            .symlink("w", &outside)
            .file("w/.wh.x", b"")
            .build();
        assert!(sandbox.unpack(&tar).is_err());
        let tar = TarBuilder::new()
            .symlink("o", &outside)
            .file("o/.wh..wh..opq", b"")
            .build();
        assert!(sandbox.unpack(&tar).is_err());
        sandbox.assert_outside_untouched();
    }

    #[test]
    fn whiteouts_cannot_name_the_parent_directory() {
        let sandbox = Sandbox::new();
        fs::write(sandbox.outside().join("keep"), b"k").unwrap();
        for name in [".wh...", "sub/.wh...", ".wh..", ".wh."] {
            let tar = TarBuilder::new().dir("sub").file(name, b"").build();
            let err = format!("{:#}", sandbox.unpack(&tar).unwrap_err());
            assert!(err.contains("invalid whiteout"), "{name}: {err}");
        }
        assert!(sandbox.layer().is_dir() && sandbox.outside().join("keep").is_file());
    }

    #[test]
    fn hard_links_cannot_reach_outside() {
        let sandbox = Sandbox::new();
        fs::write(sandbox.outside().join("secret"), b"s").unwrap();
        let tar = TarBuilder::new()
            .hardlink("stolen", "../outside/secret")
            .build();
        assert!(sandbox.unpack(&tar).is_err());
        let outside = sandbox.outside().display().to_string();
        let tar = TarBuilder::new()
            .symlink("s", &outside)
            .hardlink("stolen", "s/secret")
            .build();
        assert!(sandbox.unpack(&tar).is_err());
        assert!(!sandbox.layer().join("stolen").exists());
        assert_eq!(
            fs::metadata(sandbox.outside().join("secret"))
                .unwrap()
                .nlink(),
            1
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let sandbox = Sandbox::new();
        let tar = TarBuilder::new()
            .dir("x")
            .file("x/inner", b"1")
            .file("x", b"now a file")
            .file("y", b"old")
            .file("y", b"new")
            .build();
        sandbox.unpack(&tar).unwrap();
        assert_eq!(fs::read(sandbox.layer().join("x")).unwrap(), b"now a file");
        assert_eq!(fs::read(sandbox.layer().join("y")).unwrap(), b"new");
    }

    /// A directory entry `name` with modification time `mtime`.
    fn dir_header(name: &str, mtime: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_entry_type(EntryType::Directory);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header
    }

    #[test]
    fn a_directory_replaced_by_a_file_is_accepted_the_later_entry_winning() {
        let sandbox = Sandbox::new();
        // As GNU tar and Docker accept it: x was a tree, then a file.
        let tar = TarBuilder::new()
            .header(dir_header("x", 1), b"")
            .header(dir_header("x/sub", 2), b"")
            .file("x/sub/inner", b"1")
            .header(dir_header("x/sub/deeper", 3), b"")
            .file("x", b"now a file")
            .header(dir_header("kept", 4_000), b"")
            .file("kept/f", b"f")
            .header(dir_header("twice", 5_000), b"")
            .header(dir_header("twice", 6_000), b"")
            .build();
        sandbox.unpack(&tar).unwrap();
        let layer = sandbox.layer();
        assert_eq!(fs::read(layer.join("x")).unwrap(), b"now a file");
        // The file keeps its own time, not the directory's it replaced.
        assert_eq!(fs::metadata(layer.join("x")).unwrap().mtime(), 1_000_000);
        assert_eq!(fs::metadata(layer.join("kept")).unwrap().mtime(), 4_000);
        assert_eq!(fs::metadata(layer.join("twice")).unwrap().mtime(), 6_000);
        sandbox.assert_outside_untouched();

        // Replaced by a symlink pointing out, the name is never followed.
        let outside = sandbox.outside().display().to_string();
        let tar = TarBuilder::new()
            .dir("d")
            .dir("d/e")
            .symlink("d", &outside)
            .file("d/evil", b"x")
            .build();
        let err = format!("{:#}", sandbox.unpack(&tar).unwrap_err());
        assert!(err.contains("symlink"), "{err}");
        sandbox.assert_outside_untouched();
    }

    #[test]
    fn a_directory_tree_of_any_depth_is_replaced() {
        let sandbox = Sandbox::new();
        let deep = vec!["d"; 1500].join("/");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        // A GNU long name: the path is 3 KB.
        builder
            .append_data(&mut header, format!("{deep}/f"), &b"x"[..])
            .unwrap();
        builder.append_data(&mut header, "d", &b"y"[..]).unwrap();
        sandbox.unpack(&builder.into_inner().unwrap()).unwrap();
        assert_eq!(fs::read(sandbox.layer().join("d")).unwrap(), b"y");
    }

    #[test]
    fn a_pax_sparse_file_is_refused_naming_it() {
        let sandbox = Sandbox::new();
        let tar = TarBuilder::new()
            .pax(&[
                ("GNU.sparse.major", b"1"),
                ("GNU.sparse.minor", b"0"),
                ("GNU.sparse.name", b"disk.img"),
                ("GNU.sparse.realsize", b"104857600"),
            ])
            .file("GNUSparseFile.7/disk.img", b"1\n0\n4\n")
            .build();
        let err = format!("{:#}", sandbox.unpack(&tar).unwrap_err());
        assert!(err.contains("is a sparse file"), "{err}");
    }

    #[test]
    fn pax_global_headers_are_ignored() {
        let sandbox = Sandbox::new();
        let mut global = tar::Header::new_ustar();
        global.set_path("pax_global_header").unwrap();
        global.set_entry_type(EntryType::XGlobalHeader);
        let tar = TarBuilder::new()
            .header(
                global,
                b"52 comment=a commit id, as git archive writes it\n",
            )
            .file("f", b"x")
            .build();
        sandbox.unpack(&tar).unwrap();
        let names: Vec<_> = fs::read_dir(sandbox.layer())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
    }

    #[test]
    fn entries_and_the_directories_made_for_them_are_counted() {
        let limits = Limits {
            max_layer_entries: 5,
            ..Limits::default()
        };
        let sandbox = Sandbox::new();
        let five = TarBuilder::new()
            .file("1", b"")
            .file("2", b"")
            .dir("a")
            .file("a/3", b"")
            .file("4", b"")
            .build();
        unpack_layer(&five[..], &sandbox.layer(), &limits).unwrap();
        let six = TarBuilder::new()
            .file("1", b"")
            .file("2", b"")
            .file("3", b"")
            .file("4", b"")
            .file("5", b"")
            .file("6", b"")
            .build();
        let err = unpack_layer(&six[..], &sandbox.layer(), &limits)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the layer has over the limit of 5 entries \
             (image-limits.max-layer-entries in <hull root>/config.json)"
        );
        // One entry, five directories made for it.
        let nested = TarBuilder::new().file("p/q/r/s/t/u", b"").build();
        let err = unpack_layer(&nested[..], &sandbox.layer(), &limits).unwrap_err();
        assert!(
            err.to_string().contains("over the limit of 5 entries"),
            "{err}"
        );
    }

    #[test]
    fn the_uncompressed_stream_is_capped() {
        let limits = Limits {
            max_layer_bytes: 8 << 10,
            ..Limits::default()
        };
        let sandbox = Sandbox::new();
        let small = TarBuilder::new().file("f", &[1; 4 << 10]).build();
        assert!(small.len() <= 8 << 10);
        unpack_layer(&small[..], &sandbox.layer(), &limits).unwrap();
        let big = TarBuilder::new().file("f", &[1; 9 << 10]).build();
        let err = unpack_layer(&big[..], &sandbox.layer(), &limits)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the layer's uncompressed tar is over the limit of 8192 bytes \
             (image-limits.max-layer-bytes in <hull root>/config.json)"
        );
    }

    #[test]
    fn a_header_bomb_fails_at_once_with_a_short_line() {
        let sandbox = Sandbox::new();
        let claimed: u64 = 256 << 20;
        let mut long_name = tar::Header::new_gnu();
        long_name.set_path("././@LongLink").unwrap();
        long_name.set_entry_type(EntryType::GNULongName);
        long_name.set_size(claimed);
        long_name.set_cksum();
        // What the 261 KB gzip layer expands to: a name of 256 MiB of 'a'.
        let stream = io::Cursor::new(long_name.as_bytes().to_vec())
            .chain(io::repeat(b'a').take(claimed))
            .chain(io::repeat(0).take(1024));
        let started = std::time::Instant::now();
        let err = unpack_layer(stream, &sandbox.layer(), &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("claims 268435456 bytes, over the limit of 1048576"),
            "{err}"
        );
        assert!(err.len() < 200, "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn error_lines_quote_a_short_prefix_of_a_long_name() {
        let sandbox = Sandbox::new();
        let long = format!("../{}", "n".repeat(100_000));
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, "ok", &b""[..]).unwrap();
        let mut tar = builder.into_inner().unwrap();
        tar.truncate(tar.len() - 1024);
        tar.extend(TarBuilder::new().long_name_file(&long).build());
        let err = format!("{:#}", sandbox.unpack(&tar).unwrap_err());
        assert!(err.contains("escapes the layer"), "{err}");
        assert!(err.contains("(100003 bytes)"), "{err}");
        assert!(err.len() < 300, "{} bytes: {err:.400}", err.len());
    }

    fn get_xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
        let path = CString::new(path.as_os_str().as_bytes()).unwrap();
        let key = CString::new(key).unwrap();
        let mut buf = vec![0u8; 256];
        // SAFETY: valid NUL-terminated strings and a live buffer of the given length.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                key.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        (n >= 0).then(|| buf[..n as usize].to_vec())
    }
}
