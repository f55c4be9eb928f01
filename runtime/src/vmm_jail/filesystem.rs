//! The host's files as the jailed VMM sees them: a mount namespace of its
//! own (with IPC, UTS and network namespaces: the tap is an inherited
//! descriptor, and the VMM needs nothing else of the host's network),
//! whose root is a small read-only tmpfs holding only what this VM is
//! built from (Firecracker's jailer does the same with a chroot):
//!
//! | in the jail | what |
//! | --- | --- |
//! | `/dev/kvm` | the KVM device |
//! | `/proc/self/fd`, `/proc/self/mountinfo` | this process's descriptors, which the virtio-fs servers reopen files through, and its (jailed) mounts |
//! | `/boot/kernel`, `/boot/initramfs` | read-only |
//! | `/run` | the VMM's own subdirectory of the run directory: its vsock sockets and the console log (not the VM's config, the VMM's recorded pid, the attach socket or the VMM's log beside it) |
//! | `/shares/N` | share N: its directory, or only the entries the guest may see of it; read-only where the share is |
//! | `/disks/N` | disk N's image file; read-only where the disk is |
//!
//! The root is pivoted onto that tmpfs and the host's tree detached, so
//! no path the VMM opens reaches anything else. Mounts are private to the
//! namespace: the host sees only the empty `jail` directory in the run
//! directory, removed with it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hull_vmm::{Console, VmConfig};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, pivot_root};

use crate::root;

/// The directory in the run directory the jail's root is mounted on.
const JAIL_DIR: &str = "jail";

/// Where the run directory is inside the jail.
const RUN: &str = "/run";

/// Moves the calling process (single-threaded) into namespaces of its own
/// and pivots its root onto a jail holding what `config` names, and
/// returns `config` with every path as the jail has it.
pub(super) fn enter(config: VmConfig, run_dir: &Path) -> Result<VmConfig> {
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNET,
    )
    .context("cannot make the VMM's namespaces")?;
    // Nothing mounted from here on may reach the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("cannot make the VMM's mounts private")?;
    let jail = Jail::create(&run_dir.join(JAIL_DIR))?;
    let config = jail.furnish(config, run_dir)?;
    jail.pivot()?;
    Ok(config)
}

/// The jail's root while it is being furnished, seen from the host's tree.
struct Jail {
    root: PathBuf,
}

impl Jail {
    fn create(root: &Path) -> Result<Jail> {
        fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        mount(
            Some("tmpfs"),
            root,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=0755,size=1m"),
        )
        .with_context(|| format!("cannot mount the VMM's jail on {}", root.display()))?;
        Ok(Jail {
            root: root.to_owned(),
        })
    }

    /// Binds into the jail what `config` needs, and rewrites its paths.
    fn furnish(&self, mut config: VmConfig, run_dir: &Path) -> Result<VmConfig> {
        let kvm = Path::new("/dev/kvm");
        // Without it, building the VM fails with the usual error.
        if kvm.exists() {
            self.bind(kvm, "/dev/kvm", Access::ReadWrite)?;
        }
        self.bind(
            Path::new("/proc/self/fd"),
            "/proc/self/fd",
            Access::ReadWrite,
        )?;
        // Opened, never read: the servers open files by handle with it,
        // which hull turns off.
        self.bind(
            Path::new("/proc/self/mountinfo"),
            "/proc/self/mountinfo",
            Access::ReadOnly,
        )?;
        config.kernel = self.bind(&config.kernel, "/boot/kernel", Access::ReadOnly)?;
        if let Some(initramfs) = &config.initramfs {
            config.initramfs = Some(self.bind(initramfs, "/boot/initramfs", Access::ReadOnly)?);
        }
        let vm_files = root::vm_files(run_dir);
        self.bind(&vm_files, RUN, Access::ReadWrite)?;
        if let Console::File(path) = &config.console {
            config.console = Console::File(in_vm_files(path, &vm_files)?);
        }
        if let Some(vsock) = &mut config.vsock {
            vsock.uds_path = in_vm_files(&vsock.uds_path, &vm_files)?;
        }
        for (index, share) in config.shares.iter_mut().enumerate() {
            let inside = format!("/shares/{index}");
            let access = Access::of(share.read_only);
            share.host_dir = match &share.visible_entries {
                None => self.bind(&share.host_dir, &inside, access)?,
                Some(entries) => {
                    // Only the entries the guest may see: the rest of the
                    // directory is not in the jail at all.
                    for entry in entries.iter().filter(|e| is_plain_name(e)) {
                        let source = share.host_dir.join(entry);
                        if source.symlink_metadata().is_ok() {
                            self.bind(&source, &format!("{inside}/{entry}"), access)?;
                        }
                    }
                    self.make_dir(&inside)?
                }
            };
        }
        for (index, disk) in config.disks.iter_mut().enumerate() {
            disk.path = self.bind(
                &disk.path,
                &format!("/disks/{index}"),
                Access::of(disk.read_only),
            )?;
        }
        Ok(config)
    }

    /// Binds `source` (a directory with everything mounted under it, or a
    /// file) at `inside`, and returns `inside` as a path.
    fn bind(&self, source: &Path, inside: &str, access: Access) -> Result<PathBuf> {
        let target = self.host_path(inside);
        let is_dir = fs::metadata(source)
            .with_context(|| format!("cannot bind {} into the VMM's jail", source.display()))?
            .is_dir();
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        match is_dir {
            true => fs::create_dir_all(&target),
            false => fs::write(&target, b""),
        }
        .with_context(|| format!("cannot create {}", target.display()))?;
        mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("cannot bind {} into the VMM's jail", source.display()))?;
        if access == Access::ReadOnly {
            remount_read_only(&target)?;
        }
        Ok(PathBuf::from(inside))
    }

    fn make_dir(&self, inside: &str) -> Result<PathBuf> {
        let target = self.host_path(inside);
        fs::create_dir_all(&target)
            .with_context(|| format!("cannot create {}", target.display()))?;
        Ok(PathBuf::from(inside))
    }

    fn host_path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Makes the jail the root, detaches the host's tree and makes the
    /// jail's own tmpfs read-only.
    fn pivot(self) -> Result<()> {
        chdir(&self.root).context("cannot enter the VMM's jail")?;
        // The old root is stacked under the new one, then detached.
        pivot_root(".", ".").context("cannot pivot into the VMM's jail")?;
        umount2(".", MntFlags::MNT_DETACH).context("cannot detach the host's tree")?;
        chdir("/").context("cannot enter the VMM's jail")?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .context("cannot make the VMM's jail read-only")
    }
}

/// Whether a bind may change what it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

impl Access {
    fn of(read_only: bool) -> Access {
        match read_only {
            true => Access::ReadOnly,
            false => Access::ReadWrite,
        }
    }
}

fn remount_read_only(target: &Path) -> Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .with_context(|| format!("cannot make {} read-only", target.display()))
}

/// `path`, which is in the VMM's directory `vm_files`, as the jail has it.
fn in_vm_files(path: &Path, vm_files: &Path) -> Result<PathBuf> {
    match path.strip_prefix(vm_files) {
        Ok(relative) => Ok(Path::new(RUN).join(relative)),
        Err(_) => bail!(
            "{} is outside the VMM's directory {}, the only one its jail lets it write to",
            path.display(),
            vm_files.display()
        ),
    }
}

/// A single file name, which cannot name anything outside its directory.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_the_vmms_directory_move_under_run_and_others_are_refused() {
        let vm_files = Path::new("/var/lib/hull/run/abc/vm");
        assert_eq!(
            in_vm_files(&vm_files.join("vsock.sock"), vm_files).unwrap(),
            Path::new("/run/vsock.sock")
        );
        for outside in ["/tmp/console.log", "/var/lib/hull/run/abc/vmm.pid"] {
            let err = in_vm_files(Path::new(outside), vm_files).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("{outside} is outside the VMM's directory")),
                "{err}"
            );
        }
    }

    #[test]
    fn only_plain_names_are_bound_as_entries() {
        assert!(is_plain_name("sha256-abc"));
        for name in ["", ".", "..", "a/b", "/etc"] {
            assert!(!is_plain_name(name), "{name}");
        }
    }
}
