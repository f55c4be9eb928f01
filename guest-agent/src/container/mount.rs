//! Mounting with context in the error.

use std::path::Path;

use anyhow::Context;
use nix::mount::MsFlags;
use nix::sys::statvfs::{statvfs, FsFlags};

/// Creates `target` if it is missing and mounts a `fstype` file system from
/// `source` on it.
pub fn mount_fs(
    source: &str,
    target: impl AsRef<Path>,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> anyhow::Result<()> {
    let target = target.as_ref();
    std::fs::create_dir_all(target)
        .with_context(|| format!("creating mount point {}", target.display()))?;
    nix::mount::mount(Some(source), target, Some(fstype), flags, data).with_context(|| {
        format!(
            "mounting {fstype} {source:?} on {} (options {:?})",
            target.display(),
            data.unwrap_or("")
        )
    })
}

/// Moves the mount at `from` to `to`, creating `to` if it is missing.
pub fn move_mount(from: impl AsRef<Path>, to: impl AsRef<Path>) -> anyhow::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    std::fs::create_dir_all(to)
        .with_context(|| format!("creating mount point {}", to.display()))?;
    nix::mount::mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .with_context(|| format!("moving mount {} to {}", from.display(), to.display()))
}

/// Bind-mounts `source` (a directory or a file) on `target`, which exists.
pub fn bind_mount(source: &Path, target: &Path) -> anyhow::Result<()> {
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding {} on {}", source.display(), target.display()))
}

/// Makes the mount at `target` read-only (writes then fail with EROFS),
/// for this mount only: its file system and the mounts below it stay as
/// they are. A bind remount sets all of the mount's flags at once, so those
/// it has (nosuid, noexec, ...) are repeated, as runc does.
pub fn remount_read_only(target: impl AsRef<Path>) -> anyhow::Result<()> {
    let target = target.as_ref();
    let flags = statvfs(target)
        .with_context(|| format!("reading the mount flags of {}", target.display()))?
        .flags();
    nix::mount::mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept_flags(flags),
        None::<&str>,
    )
    .with_context(|| format!("making {} read-only", target.display()))
}

/// The per-mount flags of `flags` (as statvfs(3) reports them) that a bind
/// remount must repeat.
fn kept_flags(flags: FsFlags) -> MsFlags {
    [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(reported, _)| flags.contains(*reported))
    .fold(MsFlags::empty(), |kept, (_, flag)| kept | flag)
}

#[cfg(test)]
pub mod tests {
    use std::panic::{self, AssertUnwindSafe};

    use nix::sched::{unshare, CloneFlags};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    use super::*;

    /// Exit status of a child that could not get a mount namespace.
    const NO_NAMESPACE: i32 = 77;

    /// Runs `body` in a forked child with a private mount namespace, so
    /// that its mounts vanish with it. `Some(passed)`, or `None` where the
    /// test cannot mount (not root, no CAP_SYS_ADMIN).
    pub fn in_mount_namespace(body: impl FnOnce()) -> Option<bool> {
        // SAFETY: the child makes system calls and allocates (glibc's malloc
        // is fork-safe), then leaves with _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let private = || {
                    unshare(CloneFlags::CLONE_NEWNS)?;
                    nix::mount::mount(
                        None::<&str>,
                        "/",
                        None::<&str>,
                        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                        None::<&str>,
                    )
                };
                let code = match private() {
                    Err(_) => NO_NAMESPACE,
                    Ok(()) => match panic::catch_unwind(AssertUnwindSafe(body)) {
                        Ok(()) => 0,
                        Err(_) => 1,
                    },
                };
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, 0) => Some(true),
                WaitStatus::Exited(_, NO_NAMESPACE) => None,
                _ => Some(false),
            },
        }
    }

    #[test]
    fn a_mount_made_read_only_refuses_writes_and_keeps_its_flags() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mnt");
        let checked = in_mount_namespace(|| {
            mount_fs("tmpfs", &target, "tmpfs", MsFlags::MS_NOEXEC, None).unwrap();
            std::fs::write(target.join("before"), "x").unwrap();
            remount_read_only(&target).unwrap();
            let err = std::fs::write(target.join("after"), "x").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EROFS));
            let flags = statvfs(&target).unwrap().flags();
            assert!(flags.contains(FsFlags::ST_RDONLY | FsFlags::ST_NOEXEC));
            assert_eq!(std::fs::read_to_string(target.join("before")).unwrap(), "x");
        });
        assert_ne!(checked, Some(false), "see the child's panic above");
    }

    #[test]
    fn a_remount_repeats_the_per_mount_flags() {
        assert_eq!(kept_flags(FsFlags::empty()), MsFlags::empty());
        assert_eq!(
            kept_flags(FsFlags::ST_NOSUID | FsFlags::ST_NOEXEC | FsFlags::ST_RDONLY),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC
        );
        assert_eq!(
            kept_flags(FsFlags::ST_NODEV | FsFlags::ST_RELATIME),
            MsFlags::MS_NODEV | MsFlags::MS_RELATIME
        );
    }
}
