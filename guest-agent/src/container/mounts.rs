//! The run spec's mounts over the container's root: volumes and bind mounts
//! (virtio-fs shares of the host) and tmpfs, made by the container's init
//! in its own mount namespace, over the root the agent reaches at
//! [`super::rootfs::ROOT_DIR`], before it pivots there (see
//! [`super::sandbox`]). The generic mount calls are in [`super::mount`].
//!
//! As runc does:
//! - targets are resolved inside the container's root ([`secure_join`]),
//!   after the mounts before them, in the order given;
//! - a missing target is made: a directory (mode 0755, with its parents),
//!   or an empty file for a single file;
//! - a read-only mount is a bind remounted read-only;
//! - a tmpfs gets the mode asked for, else that of the directory it covers,
//!   else the kernel's 1777; Docker's nosuid, nodev and noexec.
//!
//! Each share is mounted once, by tag, under [`STAGING_DIR`] (left behind
//! with the agent's root at the pivot), and bound from there onto its
//! targets. Volumes to fill from the image ([`copy_up`]) are filled first,
//! from the image alone, as Docker's daemon fills them before runc mounts
//! anything.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use hull_protocol::{MountSource, MountSpec};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;

use super::copy_up::copy_up;
use super::mount::{bind_mount, mount_fs, remount_read_only};
use super::secure_join::secure_join;
use crate::workdir;

/// Where the shares are mounted before they are bound onto their targets.
const STAGING_DIR: &str = "/run/hull/mounts";
/// The mode of a tmpfs over nothing, the kernel's default.
const TMPFS_MODE: u32 = 0o1777;
/// Mode of the directories made as mount points (runc's).
const MOUNT_POINT_MODE: u32 = 0o755;
/// Mode of the empty files made as mount points for single files.
const FILE_MOUNT_POINT_MODE: u32 = 0o644;

/// Mounts `mounts`, in order, over the container's root at `root`.
pub fn apply(root: &Path, mounts: &[MountSpec]) -> anyhow::Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let shares = Shares::mount(mounts)?;
    for mount in mounts {
        if let MountSource::Share {
            tag, copy_up: true, ..
        } = &mount.source
        {
            fill_volume(root, mount, shares.dir(tag)).with_context(|| {
                format!("filling volume {tag} from the image's {}", mount.target)
            })?;
        }
    }
    for mount in mounts {
        mount_one(root, mount, &shares).with_context(|| describe(mount))?;
    }
    Ok(())
}

/// The shares, each mounted once, by tag.
struct Shares(Vec<(String, PathBuf)>);

impl Shares {
    fn mount(mounts: &[MountSpec]) -> anyhow::Result<Shares> {
        let mut shares: Vec<(String, PathBuf)> = Vec::new();
        for mount in mounts {
            let MountSource::Share { tag, .. } = &mount.source else {
                continue;
            };
            if shares.iter().any(|(known, _)| known == tag) {
                continue;
            }
            let dir = PathBuf::from(format!("{STAGING_DIR}/{}", shares.len()));
            mount_fs(tag, &dir, "virtiofs", MsFlags::empty(), None)
                .with_context(|| format!("mounting the host's share {tag}"))?;
            shares.push((tag.clone(), dir));
        }
        Ok(Shares(shares))
    }

    fn dir(&self, tag: &str) -> &Path {
        self.0
            .iter()
            .find(|(known, _)| known == tag)
            .map(|(_, dir)| dir.as_path())
            .expect("every share of the mounts is mounted")
    }
}

fn describe(mount: &MountSpec) -> String {
    match &mount.source {
        MountSource::Share {
            tag,
            entry: None,
            subpath: Some(subpath),
            ..
        } => format!(
            "mounting {subpath:?} of volume share {tag} on {}",
            mount.target
        ),
        MountSource::Share {
            tag, entry: None, ..
        } => format!("mounting share {tag} on {}", mount.target),
        MountSource::Share {
            tag,
            entry: Some(entry),
            ..
        } => format!("mounting {entry:?} of share {tag} on {}", mount.target),
        MountSource::Tmpfs { .. } => format!("mounting a tmpfs on {}", mount.target),
    }
}

/// Fills the share of a volume, if it is empty, with what the image has at
/// the mount's target.
fn fill_volume(root: &Path, mount: &MountSpec, share: &Path) -> anyhow::Result<()> {
    match &mount.source {
        MountSource::Share {
            entry: Some(entry), ..
        } => bail!("a single entry ({entry:?}) of a share cannot be filled from the image"),
        MountSource::Share {
            subpath: Some(subpath),
            ..
        } => bail!("a volume's subpath ({subpath:?}) cannot be filled from the image"),
        _ => {}
    }
    let image_dir = secure_join(root, &target_path(&mount.target)?)
        .with_context(|| format!("resolving {}", mount.target))?;
    copy_up(&image_dir, share)?;
    Ok(())
}

fn mount_one(root: &Path, mount: &MountSpec, shares: &Shares) -> anyhow::Result<()> {
    let target = secure_join(root, &target_path(&mount.target)?)
        .with_context(|| format!("resolving {}", mount.target))?;
    ensure!(
        target != root,
        "{} is the container's root itself",
        mount.target
    );
    match &mount.source {
        MountSource::Share {
            tag,
            entry,
            subpath,
            ..
        } => {
            let share = shares.dir(tag);
            // Open until it is mounted: the mount is made from it.
            let opened;
            let source = match (entry, subpath) {
                (Some(entry), _) => share.join(plain_entry(entry)?),
                (None, Some(subpath)) => {
                    opened = open_volume_subpath(share, subpath)?;
                    descriptor_path(&opened)
                }
                (None, None) => share.to_owned(),
            };
            bind_onto(&source, &target, mount.read_only)?;
        }
        MountSource::Tmpfs { size_bytes, mode } => {
            let covered_mode = match fs::metadata(&target) {
                Ok(meta) => Some(meta.mode() & 0o7777),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    make_mount_point(&target, true)?;
                    None
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("reading {}", target.display()))
                }
            };
            let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            if mount.read_only {
                flags |= MsFlags::MS_RDONLY;
            }
            let options = tmpfs_options(*size_bytes, mode.or(covered_mode));
            mount_fs("tmpfs", &target, "tmpfs", flags, Some(&options))?;
        }
    }
    Ok(())
}

/// Binds `source` (a directory or a file) onto `target`, made if missing
/// as a directory or a file like the source.
fn bind_onto(source: &Path, target: &Path, read_only: bool) -> anyhow::Result<()> {
    let is_dir = fs::metadata(source)
        .with_context(|| format!("reading {}", source.display()))?
        .is_dir();
    make_mount_point(target, is_dir)?;
    bind_mount(source, target)?;
    if read_only {
        remount_read_only(target)?;
    }
    Ok(())
}

/// A mount's target as a clean absolute container path.
fn target_path(target: &str) -> anyhow::Result<PathBuf> {
    ensure!(
        target.starts_with('/'),
        "mount target {target:?} is not an absolute path"
    );
    Ok(workdir::clean(Path::new(target)))
}

/// The directory or file `subpath` names below the volume share `share`,
/// opened (`O_PATH`) as resolved within it: a link on the way cannot lead
/// out of the volume, and as the mount is made from this descriptor
/// ([`descriptor_path`]), neither can one that another container sharing
/// the volume swaps in meanwhile. It must exist, as Docker's
/// `volume-subpath`.
fn open_volume_subpath(share: &Path, subpath: &str) -> anyhow::Result<fs::File> {
    let volume = fs::File::open(share).with_context(|| format!("opening {}", share.display()))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(volume.as_raw_fd(), subpath, how) {
        // SAFETY: openat2 returned a new descriptor that nothing else owns.
        Ok(fd) => Ok(unsafe { fs::File::from_raw_fd(fd) }),
        Err(Errno::ENOENT) => {
            bail!("subpath {subpath:?} is not in the volume: make it there first")
        }
        Err(err) => Err(err).with_context(|| format!("opening subpath {subpath:?} of the volume")),
    }
}

/// A path the kernel resolves to what `file` is open on, whatever has
/// become of its names since.
fn descriptor_path(file: &fs::File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// A share's entry: one plain name in its directory.
fn plain_entry(entry: &str) -> anyhow::Result<&str> {
    let plain = !entry.is_empty()
        && entry != "."
        && entry != ".."
        && !entry.contains('/')
        && !entry.contains('\0');
    ensure!(plain, "share entry {entry:?} is not a plain file name");
    Ok(entry)
}

/// The tmpfs mount options: its root's mode (the kernel's 1777 unless
/// given) and its size limit (the kernel's half of memory unless given).
fn tmpfs_options(size_bytes: Option<u64>, mode: Option<u32>) -> String {
    let mode = mode.unwrap_or(TMPFS_MODE) & 0o7777;
    match size_bytes {
        Some(size) => format!("mode={mode:04o},size={size}"),
        None => format!("mode={mode:04o}"),
    }
}

/// Makes `path` (resolved inside the container's root) if it is missing: a
/// directory with its parents, or an empty file in them.
fn make_mount_point(path: &Path, directory: bool) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    }
    let mut dirs = DirBuilder::new();
    dirs.recursive(true).mode(MOUNT_POINT_MODE);
    let made = if directory {
        dirs.create(path)
    } else {
        let parent = path.parent().unwrap_or(path);
        dirs.create(parent).and_then(|()| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MOUNT_POINT_MODE)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map(drop)
        })
    };
    made.with_context(|| format!("creating the mount point {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::super::mount::tests::in_mount_namespace;
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn is_read_only(path: &Path) -> bool {
        let probe = path.join(".probe");
        match fs::write(&probe, "x") {
            Ok(()) => {
                fs::remove_file(&probe).unwrap();
                false
            }
            Err(err) => err.raw_os_error() == Some(libc::EROFS),
        }
    }

    #[test]
    fn tmpfs_targets_resolve_inside_the_root_with_their_modes_and_read_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("srv/cache")).unwrap();
        fs::set_permissions(root.join("srv/cache"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("/srv/cache", root.join("cache")).unwrap();
        symlink("..", root.join("up")).unwrap();
        let tmpfs = |target: &str, mode, read_only| MountSpec {
            target: target.into(),
            source: MountSource::Tmpfs {
                size_bytes: Some(1 << 20),
                mode,
            },
            read_only,
        };
        let mounts = [
            tmpfs("/cache", None, false),
            tmpfs("/up/up/escape", None, true),
            tmpfs("/run/app", Some(0o700), false),
        ];
        let checked = in_mount_namespace(|| {
            apply(&root, &mounts).unwrap();
            // Through the absolute link, with the covered directory's mode.
            assert_eq!(mode(&root.join("srv/cache")), 0o750);
            assert!(!is_read_only(&root.join("srv/cache")));
            // `..` stayed in the root; the kernel's mode; read-only.
            assert!(!tmp.path().join("escape").exists());
            assert_eq!(mode(&root.join("escape")), 0o1777);
            assert!(is_read_only(&root.join("escape")));
            assert_eq!(mode(&root.join("run/app")), 0o700);
        });
        assert_ne!(checked, Some(false), "see the child's panic above");
    }

    #[test]
    fn single_files_and_directories_are_bound_read_only_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let share = tmp.path().join("share");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(share.join("dir")).unwrap();
        fs::write(share.join("app.conf"), "listen 80\n").unwrap();
        let checked = in_mount_namespace(|| {
            let file = root.join("etc/app/app.conf");
            bind_onto(&share.join("app.conf"), &file, true).unwrap();
            assert_eq!(fs::read_to_string(&file).unwrap(), "listen 80\n");
            let err = fs::write(&file, "x").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EROFS));
            let dir = root.join("data");
            bind_onto(&share.join("dir"), &dir, false).unwrap();
            fs::write(dir.join("written"), "x").unwrap();
            assert!(share.join("dir/written").is_file());
        });
        assert_ne!(checked, Some(false), "see the child's panic above");
    }

    #[test]
    fn volume_subpaths_resolve_within_the_share_and_must_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let share = tmp.path().join("share");
        fs::create_dir_all(share.join("db/data")).unwrap();
        symlink("/db", share.join("abs")).unwrap();
        symlink("../../..", share.join("up")).unwrap();
        let opens = |subpath: &str, expected: &str| {
            let opened = open_volume_subpath(&share, subpath).unwrap();
            let expected = fs::metadata(share.join(expected)).unwrap();
            let found = fs::metadata(descriptor_path(&opened)).unwrap();
            assert_eq!(found.ino(), expected.ino(), "{subpath}");
        };
        opens("db/data", "db/data");
        // Links resolve from the volume's root, never above it.
        opens("abs/data", "db/data");
        opens("up/db", "db");
        let err = open_volume_subpath(&share, "up/etc").unwrap_err();
        assert!(format!("{err:#}").contains("not in the volume"), "{err:#}");
    }

    #[test]
    fn targets_are_clean_absolute_paths() {
        assert_eq!(target_path("/data").unwrap(), Path::new("/data"));
        assert_eq!(
            target_path("/var/./lib/../log/").unwrap(),
            Path::new("/var/log")
        );
        assert_eq!(target_path("/../../etc").unwrap(), Path::new("/etc"));
        for bad in ["", "data", "./data", "../data"] {
            assert!(target_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn share_entries_are_plain_names() {
        assert_eq!(plain_entry("app.conf").unwrap(), "app.conf");
        assert_eq!(plain_entry(".env").unwrap(), ".env");
        for bad in ["", ".", "..", "a/b", "../x", "/abs", "a\0b"] {
            assert!(plain_entry(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tmpfs_mode_is_the_one_asked_for_else_the_covered_directory_s_else_1777() {
        assert_eq!(tmpfs_options(None, None), "mode=1777");
        assert_eq!(tmpfs_options(Some(1 << 20), None), "mode=1777,size=1048576");
        assert_eq!(tmpfs_options(None, Some(0o755)), "mode=0755");
        assert_eq!(
            tmpfs_options(Some(65536), Some(0o40700)),
            "mode=0700,size=65536"
        );
    }

    #[test]
    fn mount_points_are_made_as_directories_or_files_with_their_parents() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("var/lib/data");
        make_mount_point(&dir, true).unwrap();
        assert!(dir.is_dir());
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o022, 0o755 & !0o022);

        let file = root.path().join("etc/app/app.conf");
        make_mount_point(&file, false).unwrap();
        assert!(file.is_file());
        assert_eq!(fs::metadata(&file).unwrap().len(), 0);

        // What exists is left as it is, whatever it is.
        fs::write(&file, "kept").unwrap();
        make_mount_point(&file, true).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "kept");

        let below_a_file = root.path().join("etc/app/app.conf/x");
        assert!(make_mount_point(&below_a_file, true).is_err());
    }
}
