//! The container's view of the machine, set up by its init inside the new
//! mount, UTS and IPC namespaces: its own root, /dev, /proc, /sys, the run
//! spec's mounts, hostname and kernel parameters, and, last, a read-only
//! root (`--read-only`).
//!
//! Everything is mounted before the pivot, in runc's order: /dev, /proc and
//! /sys, then the run spec's mounts (which may cover any of them, as
//! `-v /dev/shm:/dev/shm` does). The root is made read-only after the
//! working directory is created (by the container's init); the mounts, /dev,
//! /dev/shm and /proc stay writable, as with Docker.
//!
//! /dev/pts is the machine's own: the machine runs only this container, and
//! a terminal the agent opens for a process (`-t`) then has the same name
//! inside the container as outside.

use std::io::Write;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::Path;

use anyhow::{ensure, Context};
use hull_protocol::{EtcFile, MountSpec};
use nix::fcntl::{open, OFlag};
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sys::stat::{fchmodat, makedev, mknod, FchmodatFlags, Mode, SFlag};
use nix::unistd::{chdir, close, fchdir, pivot_root, sethostname};

use super::mount::{mount_fs, remount_read_only};
use super::{mounts, sysctl};
use crate::workdir;

/// Size of /dev/shm unless the run spec gives one (Docker's 64 MiB).
const DEFAULT_SHM_SIZE: &str = "65536k";

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

/// What the container's init sets up for it.
pub struct Sandbox {
    /// Set unless empty.
    pub hostname: String,
    /// The NIS domain name, set unless empty.
    pub domainname: String,
    /// Written into the container's /etc once its root is in place.
    pub etc_files: Vec<EtcFile>,
    /// Mounted over the root, in order.
    pub mounts: Vec<MountSpec>,
    /// Whether the root is made read-only (see [`make_root_read_only`]).
    pub read_only: bool,
    /// Size of /dev/shm, if not the default.
    pub shm_size_bytes: Option<u64>,
    /// Kernel parameters, set in the container's namespaces.
    pub sysctls: Vec<(String, String)>,
}

/// Makes `root` the root of the calling process's (new) mount namespace,
/// detaches everything else, mounts the container's file systems and the
/// run spec's mounts, writes the files of the container's /etc, sets the
/// hostname and the kernel parameters.
pub fn enter(root: &str, sandbox: &Sandbox) -> anyhow::Result<()> {
    // Nothing done from here on may propagate back to the agent's mounts.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making all mounts private")?;
    mount_dev(&kernel_mount_point(root, "dev")?, sandbox.shm_size_bytes)?;
    mount_container_filesystems(root)?;
    mounts::apply(Path::new(root), &sandbox.mounts)?;
    pivot_into(root)?;
    let etc_files: Vec<EtcFile> = sandbox
        .etc_files
        .iter()
        .filter(|file| !mounted_over(&sandbox.mounts, &file.name))
        .cloned()
        .collect();
    write_etc_files(Path::new("/etc"), &etc_files)?;
    let hostname = &sandbox.hostname;
    if !hostname.is_empty() {
        sethostname(hostname).with_context(|| format!("setting hostname {hostname:?}"))?;
    }
    if !sandbox.domainname.is_empty() {
        set_domain_name(&sandbox.domainname)?;
    }
    sysctl::apply(&sandbox.sysctls)
}

/// Sets the NIS domain name of the calling process's UTS namespace.
fn set_domain_name(name: &str) -> anyhow::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which
    // setdomainname(2) only reads.
    let done = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if done != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setting domain name {name:?}"));
    }
    Ok(())
}

/// Makes the container's root (the overlay) read-only, from inside it,
/// once nothing is left to write there. Only that mount: those on it stay
/// as they are.
pub fn make_root_read_only() -> anyhow::Result<()> {
    remount_read_only("/")
}

/// Whether a mount of the run spec covers the container's `/etc/NAME`, as a
/// bind mount of the user's own /etc/hosts does: then the agent does not
/// write the file, as Docker does not.
fn mounted_over(mounts: &[MountSpec], name: &str) -> bool {
    let file = Path::new("/etc").join(name);
    mounts
        .iter()
        .any(|mount| workdir::clean(Path::new(&mount.target)) == file)
}

/// `root/NAME`, where a file system of the kernel's is mounted before the
/// pivot; refused when the image has a symbolic link there, which would
/// lead out of the container's root (runc refuses them too).
fn kernel_mount_point(root: &str, name: &str) -> anyhow::Result<String> {
    let path = format!("{root}/{name}");
    let is_symlink = std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_symlink());
    ensure!(!is_symlink, "the image's /{name} is a symbolic link");
    Ok(path)
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
/// be done before the pivot, while the machine's /dev/pts is reachable),
/// with a /dev/shm of `shm_size_bytes` (default 64 MiB).
fn mount_dev(dev: &str, shm_size_bytes: Option<u64>) -> anyhow::Result<()> {
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
        Some(&shm_options(shm_size_bytes)),
    )
}

/// The mount options of /dev/shm.
fn shm_options(size_bytes: Option<u64>) -> String {
    match size_bytes {
        Some(size) => format!("mode=1777,size={size}"),
        None => format!("mode=1777,size={DEFAULT_SHM_SIZE}"),
    }
}

/// Mounts the container's /proc (of its pid namespace, which the init is
/// already in), a read-only /sys, and in it its cgroup (of its cgroup
/// namespace) read-only at /sys/fs/cgroup, where runtimes (the JVM, Go,
/// .NET) read their memory and CPU limits, under `root`.
fn mount_container_filesystems(root: &str) -> anyhow::Result<()> {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs(
        "proc",
        kernel_mount_point(root, "proc")?,
        "proc",
        hardened,
        None,
    )?;
    let sys = kernel_mount_point(root, "sys")?;
    mount_fs("sysfs", &sys, "sysfs", hardened | MsFlags::MS_RDONLY, None)?;
    mount_fs(
        "cgroup2",
        format!("{sys}/fs/cgroup"),
        "cgroup2",
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
    fn shm_gets_docker_s_default_size_unless_given() {
        assert_eq!(shm_options(None), "mode=1777,size=65536k");
        assert_eq!(shm_options(Some(1 << 30)), "mode=1777,size=1073741824");
    }

    #[test]
    fn etc_files_under_a_mount_of_the_run_spec_are_left_alone() {
        let mount = |target: &str| MountSpec {
            target: target.into(),
            source: hull_protocol::MountSource::Share {
                tag: "hull-bind-0".into(),
                entry: Some("hosts".into()),
                subpath: None,
                copy_up: false,
            },
            read_only: true,
        };
        let mounts = [mount("/data"), mount("/etc//hosts")];
        assert!(mounted_over(&mounts, "hosts"));
        assert!(!mounted_over(&mounts, "resolv.conf"));
        assert!(!mounted_over(&[], "hosts"));
    }

    #[test]
    fn kernel_file_systems_are_not_mounted_through_links() {
        let root = tempfile::tempdir().unwrap();
        let root_str = root.path().to_str().unwrap();
        symlink("/", root.path().join("proc")).unwrap();
        assert!(kernel_mount_point(root_str, "proc").is_err());
        assert_eq!(
            kernel_mount_point(root_str, "sys").unwrap(),
            format!("{root_str}/sys")
        );
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
