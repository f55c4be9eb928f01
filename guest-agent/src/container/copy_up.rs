//! A volume's first fill from the image, as Docker's: when the volume is
//! empty and the image has a directory where it is mounted, what the image
//! has there is copied into the volume (owners, modes, times, symbolic
//! links, hard links, device nodes and fifos, extended attributes), and the
//! volume's root takes the owner, mode and times of the image's directory
//! (moby's `copyExistingContents`, continuity's `fs.CopyDir`). That is how
//! `postgres` finds its data directory owned by the postgres user. A volume
//! with anything in it is left as it is.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};

/// What [`copy_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyUp {
    /// The volume was empty: it now holds the image's content.
    Copied,
    /// The volume already holds something: left alone.
    NotEmpty,
    /// The image has no directory there: nothing to copy.
    NothingInImage,
}

/// Fills the empty directory `volume` with the content of the image's
/// directory `image_dir` (resolved inside the container's root already).
pub fn copy_up(image_dir: &Path, volume: &Path) -> anyhow::Result<CopyUp> {
    let source = match fs::metadata(image_dir) {
        Ok(meta) if meta.is_dir() => meta,
        // A file there cannot fill a directory; mounting over it fails
        // with a clearer message than a copy would.
        Ok(_) => return Ok(CopyUp::NothingInImage),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(CopyUp::NothingInImage),
        Err(err) => return Err(err).with_context(|| format!("reading {}", image_dir.display())),
    };
    let mut entries =
        fs::read_dir(volume).with_context(|| format!("reading {}", volume.display()))?;
    if entries.next().is_some() {
        return Ok(CopyUp::NotEmpty);
    }
    let mut copier = Copier {
        device: source.dev(),
        links: HashMap::new(),
    };
    copier.copy_contents(image_dir, volume)?;
    copy_attributes(image_dir, volume, &source)?;
    Ok(CopyUp::Copied)
}

struct Copier {
    /// The image directory's file system; directories on others (mount
    /// points) are not descended into.
    device: u64,
    /// Files with several links already copied, by device and inode: their
    /// other names become hard links to the copy.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier {
    fn copy_contents(&mut self, from: &Path, to: &Path) -> anyhow::Result<()> {
        let mut names: Vec<OsString> = fs::read_dir(from)
            .with_context(|| format!("reading {}", from.display()))?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<io::Result<_>>()
            .with_context(|| format!("reading {}", from.display()))?;
        names.sort();
        for name in names {
            self.copy_entry(&from.join(&name), &to.join(&name))?;
        }
        Ok(())
    }

    fn copy_entry(&mut self, from: &Path, to: &Path) -> anyhow::Result<()> {
        let meta =
            fs::symlink_metadata(from).with_context(|| format!("reading {}", from.display()))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            if meta.dev() != self.device {
                return Ok(());
            }
            fs::DirBuilder::new()
                .mode(0o700)
                .create(to)
                .with_context(|| format!("creating {}", to.display()))?;
            self.copy_contents(from, to)?;
        } else if meta.nlink() > 1 && self.links.contains_key(&(meta.dev(), meta.ino())) {
            let first = &self.links[&(meta.dev(), meta.ino())];
            // The link shares the first name's owner, mode and times.
            return fs::hard_link(first, to)
                .with_context(|| format!("linking {} to {}", to.display(), first.display()));
        } else if kind.is_file() {
            copy_file(from, to)?;
        } else if kind.is_symlink() {
            let target =
                fs::read_link(from).with_context(|| format!("reading {}", from.display()))?;
            symlink(&target, to).with_context(|| format!("creating {}", to.display()))?;
        } else {
            // Devices, fifos and sockets.
            let kind = SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            mknod(to, kind, Mode::from_bits_truncate(0o600), meta.rdev())
                .with_context(|| format!("creating {}", to.display()))?;
        }
        if !kind.is_dir() && meta.nlink() > 1 {
            self.links.insert((meta.dev(), meta.ino()), to.to_owned());
        }
        copy_attributes(from, to, &meta)
    }
}

fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut source = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("creating {}", to.display()))?;
    io::copy(&mut source, &mut copy)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Gives `to` the owner, mode, extended attributes and times of `from`
/// (whose metadata is `meta`), in that order: chown clears the set-id
/// bits, and everything but the times changes the change time only.
fn copy_attributes(from: &Path, to: &Path, meta: &Metadata) -> anyhow::Result<()> {
    let at = || format!("setting the attributes of {}", to.display());
    fchownat(
        None,
        to,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(|| format!("{}: chown {}:{}", at(), meta.uid(), meta.gid()))?;
    if !meta.file_type().is_symlink() {
        let mode = meta.permissions().mode() & 0o7777;
        fs::set_permissions(to, fs::Permissions::from_mode(mode))
            .with_context(|| format!("{}: chmod {mode:o}", at()))?;
    }
    copy_xattrs(from, to).with_context(at)?;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, to, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .with_context(|| format!("{}: utimensat", at()))?;
    Ok(())
}

/// Copies the extended attributes of `from` to `to`, without following
/// links. Those the volume's file system refuses (unsupported, or a
/// namespace the agent may not write there) are left out, as Docker leaves
/// out those a file system does not support.
fn copy_xattrs(from: &Path, to: &Path) -> anyhow::Result<()> {
    let from_c = c_path(from)?;
    let to_c = c_path(to)?;
    let names = match list_xattrs(&from_c) {
        Ok(names) => names,
        Err(errno) if ignorable_xattr_error(errno) => return Ok(()),
        Err(errno) => bail!(
            "listing the extended attributes of {}: {errno}",
            from.display()
        ),
    };
    for name in names {
        let value = match get_xattr(&from_c, &name) {
            Ok(value) => value,
            // Removed meanwhile, or not readable as such.
            Err(errno) if ignorable_xattr_error(errno) || errno == Errno::ENODATA => continue,
            Err(errno) => bail!(
                "reading the extended attribute {} of {}: {errno}",
                name.to_string_lossy(),
                from.display()
            ),
        };
        match set_xattr(&to_c, &name, &value) {
            Ok(()) => {}
            Err(errno) if ignorable_xattr_error(errno) => {}
            Err(errno) => bail!(
                "setting the extended attribute {} of {}: {errno}",
                name.to_string_lossy(),
                to.display()
            ),
        }
    }
    Ok(())
}

fn ignorable_xattr_error(errno: Errno) -> bool {
    matches!(errno, Errno::ENOTSUP | Errno::EPERM | Errno::EACCES)
}

fn c_path(path: &Path) -> anyhow::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} contains a NUL byte", path.display()))
}

/// Calls `fill` with a buffer of growing size until what it reports fits.
fn read_sized(mut fill: impl FnMut(&mut [u8]) -> isize) -> Result<Vec<u8>, Errno> {
    loop {
        let size = Errno::result(fill(&mut []))?;
        let mut buffer = vec![0u8; size.unsigned_abs()];
        match Errno::result(fill(&mut buffer)) {
            Ok(len) => {
                buffer.truncate(len.unsigned_abs());
                return Ok(buffer);
            }
            // Grew between the two calls.
            Err(Errno::ERANGE) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

fn list_xattrs(path: &CString) -> Result<Vec<CString>, Errno> {
    let list = read_sized(|buffer| {
        // SAFETY: the path is NUL-terminated and the buffer is valid for
        // its length (a null pointer with length 0 asks for the size).
        unsafe { libc::llistxattr(path.as_ptr(), buffer_ptr(buffer), buffer.len()) }
    })?;
    Ok(list
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .filter_map(|name| CString::new(name).ok())
        .collect())
}

fn get_xattr(path: &CString, name: &CString) -> Result<Vec<u8>, Errno> {
    read_sized(|buffer| {
        // SAFETY: as in `list_xattrs`; the name is NUL-terminated.
        unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buffer_ptr(buffer).cast(),
                buffer.len(),
            )
        }
    })
}

fn set_xattr(path: &CString, name: &CString, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: path and name are NUL-terminated, the value is valid for its
    // length.
    let result = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(result).map(drop)
}

/// A buffer's pointer, null for an empty one (a size query).
fn buffer_ptr(buffer: &mut [u8]) -> *mut libc::c_char {
    if buffer.is_empty() {
        std::ptr::null_mut()
    } else {
        buffer.as_mut_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn owner(path: &Path) -> (u32, u32) {
        let meta = fs::symlink_metadata(path).unwrap();
        (meta.uid(), meta.gid())
    }

    fn mtime(path: &Path) -> (i64, i64) {
        let meta = fs::symlink_metadata(path).unwrap();
        (meta.mtime(), meta.mtime_nsec())
    }

    /// An image directory like postgres's: owned by another user when the
    /// test runs as root (ourselves otherwise), mode 0700, with a nested
    /// tree, a link, a hard link and old times.
    fn image_tree(dir: &Path) -> (u32, u32) {
        let root = nix::unistd::geteuid().is_root();
        let (uid, gid) = if root {
            (999, 998)
        } else {
            (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        };
        fs::create_dir_all(dir.join("conf.d")).unwrap();
        fs::write(dir.join("PG_VERSION"), "16\n").unwrap();
        fs::write(dir.join("conf.d/main.conf"), "port = 5432\n").unwrap();
        fs::hard_link(dir.join("PG_VERSION"), dir.join("VERSION")).unwrap();
        symlink("conf.d/main.conf", dir.join("current.conf")).unwrap();
        set_mode(&dir.join("PG_VERSION"), 0o640);
        set_mode(&dir.join("conf.d"), 0o2750);
        set_mode(dir, 0o700);
        for path in [
            "",
            "PG_VERSION",
            "conf.d",
            "conf.d/main.conf",
            "current.conf",
        ] {
            let path = dir.join(path);
            fchownat(
                None,
                &path,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .unwrap();
        }
        let old = TimeSpec::new(1_000_000_000, 123_456_789);
        for path in [
            "conf.d/main.conf",
            "PG_VERSION",
            "current.conf",
            "conf.d",
            "",
        ] {
            utimensat(
                None,
                &dir.join(path),
                &old,
                &old,
                UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
        (uid, gid)
    }

    #[test]
    fn an_empty_volume_gets_the_image_tree_with_owners_modes_links_and_times() {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("image/var/lib/postgresql/data");
        let volume = tmp.path().join("volume");
        fs::create_dir(&volume).unwrap();
        set_mode(&volume, 0o755);
        let (uid, gid) = image_tree(&image);

        assert_eq!(copy_up(&image, &volume).unwrap(), CopyUp::Copied);

        assert_eq!(
            fs::read_to_string(volume.join("PG_VERSION")).unwrap(),
            "16\n"
        );
        assert_eq!(
            fs::read_to_string(volume.join("conf.d/main.conf")).unwrap(),
            "port = 5432\n"
        );
        assert_eq!(
            fs::read_link(volume.join("current.conf")).unwrap(),
            Path::new("conf.d/main.conf")
        );
        let first = fs::metadata(volume.join("PG_VERSION")).unwrap();
        let second = fs::metadata(volume.join("VERSION")).unwrap();
        assert_eq!(first.ino(), second.ino(), "hard links stay links");
        // The volume's root takes the image directory's owner and mode.
        assert_eq!(mode(&volume), 0o700);
        assert_eq!(owner(&volume), (uid, gid));
        assert_eq!(mode(&volume.join("PG_VERSION")), 0o640);
        assert_eq!(mode(&volume.join("conf.d")), 0o2750);
        for path in ["PG_VERSION", "conf.d", "conf.d/main.conf", "current.conf"] {
            assert_eq!(owner(&volume.join(path)), (uid, gid), "{path}");
            assert_eq!(mtime(&volume.join(path)), (1_000_000_000, 123_456_789));
        }
        assert_eq!(mtime(&volume), (1_000_000_000, 123_456_789));
    }

    #[test]
    fn an_empty_image_directory_still_gives_the_volume_its_owner_and_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("data");
        let volume = tmp.path().join("volume");
        fs::create_dir(&image).unwrap();
        fs::create_dir(&volume).unwrap();
        set_mode(&image, 0o1770);
        assert_eq!(copy_up(&image, &volume).unwrap(), CopyUp::Copied);
        assert_eq!(mode(&volume), 0o1770);
        assert_eq!(fs::read_dir(&volume).unwrap().count(), 0);
    }

    #[test]
    fn a_volume_with_anything_in_it_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("image");
        let volume = tmp.path().join("volume");
        image_tree(&image);
        fs::create_dir(&volume).unwrap();
        set_mode(&volume, 0o755);
        fs::write(volume.join(".keep"), "").unwrap();
        assert_eq!(copy_up(&image, &volume).unwrap(), CopyUp::NotEmpty);
        let names: Vec<_> = fs::read_dir(&volume)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from(".keep")]);
        assert_eq!(mode(&volume), 0o755);
    }

    #[test]
    fn nothing_is_copied_from_a_missing_path_or_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("volume");
        fs::create_dir(&volume).unwrap();
        set_mode(&volume, 0o755);
        let missing = tmp.path().join("missing");
        assert_eq!(copy_up(&missing, &volume).unwrap(), CopyUp::NothingInImage);
        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert_eq!(copy_up(&file, &volume).unwrap(), CopyUp::NothingInImage);
        assert_eq!(fs::read_dir(&volume).unwrap().count(), 0);
        assert_eq!(mode(&volume), 0o755);
    }

    #[test]
    fn fifos_are_recreated_and_user_xattrs_copied_where_supported() {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("image");
        let volume = tmp.path().join("volume");
        fs::create_dir(&image).unwrap();
        fs::create_dir(&volume).unwrap();
        nix::unistd::mkfifo(&image.join("pipe"), Mode::from_bits_truncate(0o600)).unwrap();
        set_mode(&image.join("pipe"), 0o620);
        fs::write(image.join("tagged"), "x").unwrap();
        let tagged = c_path(&image.join("tagged")).unwrap();
        let name = CString::new("user.hull.test").unwrap();
        let xattrs = set_xattr(&tagged, &name, b"yes").is_ok();

        copy_up(&image, &volume).unwrap();

        let pipe = fs::symlink_metadata(volume.join("pipe")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&pipe.file_type()));
        assert_eq!(mode(&volume.join("pipe")), 0o620);
        if xattrs {
            let copied = c_path(&volume.join("tagged")).unwrap();
            assert_eq!(get_xattr(&copied, &name).unwrap(), b"yes");
        }
    }
}
