//! Mounting with context in the error.

use std::path::Path;

use anyhow::Context;
use nix::mount::MsFlags;

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
