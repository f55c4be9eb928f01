//! The container's view of the machine, set up by its init inside the new
//! mount and UTS namespaces: its own root, /proc, /dev, /sys and hostname.
//!
//! /dev/pts is the machine's own: the machine runs only this container, and
//! a terminal the agent opens for a process (`-t`) then has the same name
//! inside the container as outside.

use std::io::Write;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;
use hull_protocol::EtcFile;
use nix::fcntl::{open, OFlag};
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sys::stat::{fchmodat, makedev, mknod, FchmodatFlags, Mode, SFlag};
use nix::unistd::{chdir, close, fchdir, pivot_root, sethostname};

use super::mount::mount_fs;

/// Character devices every container gets in /dev: name, major, minor.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Symlinks every container gets in /dev: link name, target.
const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Makes `root` the root of the calling process's (new) mount namespace,
/// detaches everything else, mounts the container's file systems, writes
/// `etc_files` into its /etc and sets the hostname (unless empty).
pub fn enter(root: &str, hostname: &str, etc_files: &[EtcFile]) -> anyhow::Result<()> {
    // Nothing done from here on may propagate back to the agent's mounts.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making all mounts private")?;
    mount_dev(&format!("{root}/dev"))?;
    pivot_into(root)?;
    mount_container_filesystems()?;
    write_etc_files(Path::new("/etc"), etc_files)?;
    if !hostname.is_empty() {
        sethostname(hostname).with_context(|| format!("setting hostname {hostname:?}"))?;
    }
    Ok(())
}

/// pivot_root(".", ".") stacks the old root on top of the new one, with no
/// directory needed in the image; unmounting it lazily from inside detaches
/// it and every mount below it (the overlay keeps its own references to its
/// layers).
fn pivot_into(root: &str) -> anyhow::Result<()> {
    let old_root = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening the old root")?;
    chdir(root).with_context(|| format!("entering {root}"))?;
    pivot_root(".", ".").with_context(|| format!("pivot_root to {root}"))?;
    fchdir(old_root).context("entering the old root")?;
    close(old_root).context("closing the old root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    chdir("/").context("entering the new root")
}

/// Mounts the container's /dev at `dev` (a path in the agent's root: it must
/// be done before the pivot, while the machine's /dev/pts is reachable).
fn mount_dev(dev: &str) -> anyhow::Result<()> {
    let is_symlink = std::fs::symlink_metadata(dev).is_ok_and(|meta| meta.is_symlink());
    anyhow::ensure!(!is_symlink, "the image's /dev is a symbolic link");
    mount_fs(
        "tmpfs",
        dev,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    populate_dev(dev)?;
    let pts = format!("{dev}/pts");
    std::fs::create_dir(&pts).with_context(|| format!("creating {pts}"))?;
    nix::mount::mount(
        Some("/dev/pts"),
        pts.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("binding the machine's /dev/pts on {pts}"))?;
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs(
        "shm",
        format!("{dev}/shm"),
        "tmpfs",
        hardened,
        Some("mode=1777,size=65536k"),
    )
}

fn mount_container_filesystems() -> anyhow::Result<()> {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", "/proc", "proc", hardened, None)?;
    mount_fs(
        "sysfs",
        "/sys",
        "sysfs",
        hardened | MsFlags::MS_RDONLY,
        None,
    )
}

/// Writes each file into `etc` (the container's, from inside its root, so
/// the image's symbolic links resolve within it), replacing what the image
/// has under that name, as Docker does for hosts, resolv.conf and hostname.
fn write_etc_files(etc: &Path, files: &[EtcFile]) -> anyhow::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(etc).with_context(|| format!("creating {}", etc.display()))?;
    for file in files {
        let plain = !file.name.is_empty()
            && file.name != "."
            && file.name != ".."
            && !file.name.contains('/');
        anyhow::ensure!(plain, "{:?} is not a plain file name", file.name);
        let path = etc.join(&file.name);
        let replaceable = std::fs::symlink_metadata(&path)
            .map(|meta| !meta.is_dir())
            .unwrap_or(false);
        if replaceable {
            std::fs::remove_file(&path).with_context(|| format!("replacing {}", path.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true).mode(0o644);
        options
            .open(&path)
            .and_then(|mut out| out.write_all(file.contents.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn populate_dev(dev: &str) -> anyhow::Result<()> {
    let everyone = Mode::from_bits_truncate(0o666);
    for (name, major, minor) in DEVICES {
        let path = format!("{dev}/{name}");
        mknod(
            path.as_str(),
            SFlag::S_IFCHR,
            everyone,
            makedev(major, minor),
        )
        .with_context(|| format!("creating {path}"))?;
        // mknod applied the umask.
        fchmodat(None, path.as_str(), everyone, FchmodatFlags::FollowSymlink)
            .with_context(|| format!("setting the mode of {path}"))?;
    }
    for (name, target) in DEV_LINKS {
        symlink(target, format!("{dev}/{name}"))
            .with_context(|| format!("linking /dev/{name} to {target}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, contents: &str) -> EtcFile {
        EtcFile {
            name: name.into(),
            contents: contents.into(),
        }
    }

    #[test]
    fn etc_files_replace_files_and_links_of_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("hosts"), "image's hosts\n").unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "untouched\n").unwrap();
        symlink(&outside, etc.join("resolv.conf")).unwrap();
        write_etc_files(
            &etc,
            &[
                file("hosts", "10.0.0.2\tweb\n"),
                file("resolv.conf", "nameserver 10.0.0.1\n"),
            ],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(etc.join("hosts")).unwrap(),
            "10.0.0.2\tweb\n"
        );
        let resolv = std::fs::symlink_metadata(etc.join("resolv.conf")).unwrap();
        assert!(resolv.is_file());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched\n");
    }

    #[test]
    fn etc_files_are_created_with_their_directory_and_names_stay_plain() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        write_etc_files(&etc, &[file("hostname", "box\n")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(etc.join("hostname")).unwrap(),
            "box\n"
        );
        for bad in ["", ".", "..", "../passwd", "a/b"] {
            assert!(write_etc_files(&etc, &[file(bad, "x")]).is_err(), "{bad:?}");
        }
    }
}
