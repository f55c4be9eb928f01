//! Unpacking one layer tar into its own directory, in overlayfs format.
//!
//! Every entry is placed relative to the layer root through directory file
//! descriptors opened with `O_NOFOLLOW`, one path component at a time, so no
//! entry can reach outside the layer: `..` components are refused, absolute
//! paths are taken relative to the layer root, and a symlink (planted by an
//! earlier entry or not) is never followed. OCI whiteouts become what
//! overlayfs expects of a lower layer: `.wh.NAME` a character device 0/0 named
//! NAME, `.wh..wh..opq` the xattr `user.overlay.opaque=y` on its directory.
//!
//! The `user.` namespace (overlayfs's `userxattr` mount option) rather than
//! `trusted.`: it survives every hop to the guest, including the KVM test
//! host's 9p share, which passes `user.*` xattrs only.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "user.overlay.opaque";
/// overlayfs's own xattrs, in both the namespaces it may read them from.
const OVERLAY_XATTR_PREFIXES: [&str; 2] = ["user.overlay.", "trusted.overlay."];
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Unpacks the tar stream `layer` into the existing, empty directory `dest`.
pub fn unpack_layer(layer: impl Read, dest: &Path) -> Result<()> {
    let root = open_dir(None, dest.as_os_str())
        .with_context(|| format!("cannot open {}", dest.display()))?;
    let mut archive = tar::Archive::new(layer);
    let mut dir_times = Vec::new();
    for entry in archive.entries().context("cannot read the layer tar")? {
        let mut entry = entry.context("corrupt layer tar")?;
        let raw_path = entry.path().context("corrupt entry path")?.into_owned();
        let components = safe_components(&raw_path)?;
        let Some((name, parents)) = components.split_last() else {
            continue; // The layer root itself: its metadata is the store's.
        };
        let parent = open_parents(&root, parents)
            .with_context(|| format!("layer entry {}", raw_path.display()))?;
        let name = name.as_os_str();
        let unpacked = unpack_entry(&mut entry, &root, &parent, name)
            .with_context(|| format!("cannot unpack layer entry {}", raw_path.display()))?;
        if unpacked == Unpacked::Directory {
            dir_times.push((components.clone(), entry.header().mtime().unwrap_or(0)));
        }
    }
    // Creating entries changed the directories' mtimes: restore them last,
    // deepest first.
    for (components, mtime) in dir_times.iter().rev() {
        let (name, parents) = components.split_last().expect("directories have a name");
        let parent = open_parents(&root, parents)?;
        set_mtime(&parent, name.as_os_str(), *mtime)?;
    }
    // The uncompressed digest covers everything, including the padding after
    // the end-of-archive blocks.
    io::copy(&mut archive.into_inner(), &mut io::sink()).context("cannot read the layer tar")?;
    Ok(())
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
            bail!("invalid whiteout name {:?}", name);
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
            let target_parent = open_parents(root, target_parents)?;
            remove_existing(parent, name)?;
            linkat(
                Some(target_parent.as_raw_fd()),
                target_name.as_os_str(),
                Some(parent.as_raw_fd()),
                name,
                AtFlags::empty(),
            )
            .with_context(|| format!("cannot link to {}", target.display()))?;
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
            log::warn!("ignoring xattr {key} recorded in a layer");
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

/// The normal components of an entry path. Absolute paths are taken relative
/// to the layer root; `..` is refused outright.
fn safe_components(path: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(PathBuf::from(part)),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                bail!("layer entry {} escapes the layer with '..'", path.display())
            }
        }
    }
    Ok(out)
}

/// Opens (creating as needed, mode 0755) the directory `components` under
/// `root`, refusing to pass through anything that is not a real directory.
fn open_parents(root: &OwnedFd, components: &[PathBuf]) -> Result<OwnedFd> {
    let mut current = open_dir(Some(root.as_raw_fd()), OsStr::new("."))?;
    for component in components {
        let name = component.as_os_str();
        let next = match open_dir(Some(current.as_raw_fd()), name) {
            Err(Errno::ENOENT) => {
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
                component.display()
            ),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot open {}", component.display()))
            }
        };
    }
    Ok(current)
}

fn open_dir(dir: Option<RawFd>, name: &OsStr) -> nix::Result<OwnedFd> {
    let fd = openat(
        dir,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stat_nofollow(parent: &OwnedFd, name: &OsStr) -> Result<Option<libc::stat>> {
    match fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Removes whatever `name` is in `parent` (a later entry replaces an earlier one).
fn remove_existing(parent: &OwnedFd, name: &OsStr) -> Result<()> {
    let Some(st) = stat_nofollow(parent, name)? else {
        return Ok(());
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        // Through the parent's descriptor, so no symlink on the way is followed;
        // remove_dir_all itself never follows symlinks inside.
        let path = proc_fd_path(parent, name);
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot replace directory {:?}", name))?;
    } else {
        unlinkat(Some(parent.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(())
}

fn set_mtime(parent: &OwnedFd, name: &OsStr, mtime: u64) -> Result<()> {
    let seconds = libc::time_t::try_from(mtime).unwrap_or(libc::time_t::MAX);
    let time = TimeSpec::new(seconds, 0);
    utimensat(
        Some(parent.as_raw_fd()),
        name,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .context("cannot set mtime")
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

fn set_xattr(parent: &OwnedFd, name: &OsStr, key: &str, value: &[u8]) -> Result<()> {
    let path = CString::new(proc_fd_path(parent, name).into_os_string().into_vec())?;
    let key_c = CString::new(key)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the value
    // pointer and length describe a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key_c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
        log::warn!("file system does not support xattr {key}; skipped");
        return Ok(());
    }
    Err(err).with_context(|| format!("cannot set xattr {key}"))
}

/// `/proc/self/fd/N/NAME`: `name` inside the directory `parent` refers to,
/// with no path resolution beyond that directory.
fn proc_fd_path(parent: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new("/proc/self/fd")
        .join(parent.as_raw_fd().to_string())
        .join(name)
}

#[cfg(test)]
mod tests {
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
            unpack_layer(tar, &self.layer())
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
