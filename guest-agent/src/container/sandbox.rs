//! The container's view of the machine, set up by its init inside the new
//! mount and UTS namespaces: its own root, /proc, /dev, /sys and hostname.
//!
//! /dev/pts is the machine's own: the machine runs only this container, and
//! a terminal the agent opens for a process (`-t`) then has the same name
//! inside the container as outside.

use std::os::unix::fs::symlink;

use anyhow::Context;
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
/// detaches everything else, mounts the container's file systems and sets
/// the hostname (unless empty).
pub fn enter(root: &str, hostname: &str) -> anyhow::Result<()> {
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
