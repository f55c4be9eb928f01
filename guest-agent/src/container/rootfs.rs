//! The container's root file system: the image, shared read-only by the host
//! over virtio-fs, under an overlay whose writable layer is a tmpfs.

use anyhow::Context;
use nix::mount::MsFlags;

use super::mount::mount_fs;

/// virtio-fs tag of the image directory the host shares.
const ROOTFS_TAG: &str = "hull-rootfs";
/// Where the shared image is mounted, read-only.
const LOWER_DIR: &str = "/run/hull/lower";
/// The file system holding the writable layer.
const WRITABLE_DIR: &str = "/run/hull/rw";
/// Where the container's root is assembled; the container's init pivots here.
pub const ROOT_DIR: &str = "/run/hull/root";

/// The two directories overlayfs needs on the writable file system.
struct WritableLayer {
    upper: String,
    work: String,
}

/// Mounts the image, the writable layer and the overlay at [`ROOT_DIR`].
pub fn mount_rootfs() -> anyhow::Result<()> {
    mount_fs(ROOTFS_TAG, LOWER_DIR, "virtiofs", MsFlags::MS_RDONLY, None)
        .context("mounting the container image")?;
    let layer = mount_writable_layer()?;
    let options = overlay_options(LOWER_DIR, &layer.upper, &layer.work);
    mount_fs(
        "overlay",
        ROOT_DIR,
        "overlay",
        MsFlags::empty(),
        Some(&options),
    )
    .context("mounting the container's root overlay")
}

/// Mounts the file system that takes the container's writes: a tmpfs, so
/// they vanish with the machine. The only place that knows what backs the
/// writable layer.
fn mount_writable_layer() -> anyhow::Result<WritableLayer> {
    mount_fs(
        "tmpfs",
        WRITABLE_DIR,
        "tmpfs",
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .context("mounting the writable layer")?;
    let layer = WritableLayer {
        upper: format!("{WRITABLE_DIR}/upper"),
        work: format!("{WRITABLE_DIR}/work"),
    };
    for dir in [&layer.upper, &layer.work] {
        std::fs::create_dir(dir).with_context(|| format!("creating {dir}"))?;
    }
    Ok(layer)
}

/// Overlay mount options for a read-only virtio-fs lower layer.
///
/// `index=off` and `xino=off`: both features need file handles that can be
/// decoded on every layer and a lower layer with a unique uuid. A virtio-fs
/// (FUSE) superblock has a null uuid and decodes handles only if the daemon
/// keeps every inode, so overlayfs would turn both off anyway, after printing
/// a warning on the serial console (slow under emulation) at every boot.
/// Saying so also keeps the mount independent of the kernel's
/// CONFIG_OVERLAY_FS_INDEX / CONFIG_OVERLAY_FS_XINO_AUTO defaults.
/// `redirect_dir` and `metacopy` stay at their default, off: the writable
/// layer is thrown away with the machine, so there is nothing to optimize.
pub fn overlay_options(lower: &str, upper: &str, work: &str) -> String {
    format!("lowerdir={lower},upperdir={upper},workdir={work},index=off,xino=off")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_name_every_layer_and_turn_off_handle_features() {
        assert_eq!(
            overlay_options("/l", "/rw/upper", "/rw/work"),
            "lowerdir=/l,upperdir=/rw/upper,workdir=/rw/work,index=off,xino=off"
        );
    }
}
