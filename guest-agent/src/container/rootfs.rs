//! The container's root file system: read-only lower layers shared by the
//! host over virtio-fs, under an overlay whose writable layer is an ext4
//! scratch disk (or a tmpfs when the host gives none).

use std::path::Path;

use anyhow::{bail, ensure, Context};
use hull_protocol::RootfsSpec;
use nix::mount::MsFlags;

use super::fs_context::FsContext;
use super::mount::mount_fs;

/// Where the host's share of lower layers is mounted, read-only.
const SHARE_DIR: &str = "/run/hull/lower";
/// The file system holding the writable layer.
const WRITABLE_DIR: &str = "/run/hull/rw";
/// The overlay's upper directory: what the container changed.
pub const UPPER_DIR: &str = "/run/hull/rw/upper";
/// Where the container's root is assembled; the container's init pivots here.
pub const ROOT_DIR: &str = "/run/hull/root";
/// The most layers overlayfs stacks (its OVL_MAX_STACK).
const MAX_LAYERS: usize = 500;

/// The two directories overlayfs needs on the writable file system.
struct WritableLayer {
    upper: String,
    work: String,
}

/// Mounts the lower layers, the writable layer and the overlay at
/// [`ROOT_DIR`], as `spec` describes.
pub fn mount_rootfs(spec: &RootfsSpec) -> anyhow::Result<()> {
    mount_fs(&spec.share, SHARE_DIR, "virtiofs", MsFlags::MS_RDONLY, None)
        .context("mounting the container image")?;
    ensure!(
        spec.layers.len() <= MAX_LAYERS,
        "the image has {} layers; an overlay stacks at most {MAX_LAYERS}: squash some \
         (hull export | hull import)",
        spec.layers.len()
    );
    let layer = mount_writable_layer(spec.scratch_device.as_deref())?;
    let overlay = FsContext::open("overlay")?;
    for (key, value) in overlay_options(&lower_dirs(&spec.layers)?, &layer.upper, &layer.work) {
        match value {
            Some(value) => overlay.set_string(key, &value)?,
            None => overlay.set_flag(key)?,
        }
    }
    std::fs::create_dir_all(ROOT_DIR).with_context(|| format!("creating {ROOT_DIR}"))?;
    overlay
        .mount_at(Path::new(ROOT_DIR))
        .context("mounting the container's root overlay")
}

/// The overlay's lower directories, top-most first: the named layers in
/// the share, or the share itself.
fn lower_dirs(layers: &[String]) -> anyhow::Result<Vec<String>> {
    if layers.is_empty() {
        return Ok(vec![SHARE_DIR.to_owned()]);
    }
    let plain_name = |name: &str| {
        !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    for layer in layers {
        if !layer.split('/').all(plain_name) {
            bail!("layer {layer:?} is not a relative path of plain directory names");
        }
    }
    Ok(layers
        .iter()
        .map(|layer| format!("{SHARE_DIR}/{layer}"))
        .collect())
}

/// Mounts the file system that takes the container's writes: the host's
/// ext4 scratch disk, kept until the container is removed, or else a tmpfs
/// that vanishes with the machine. The only place that knows what backs the
/// writable layer.
fn mount_writable_layer(scratch_device: Option<&str>) -> anyhow::Result<WritableLayer> {
    match scratch_device {
        Some(device) => mount_fs(device, WRITABLE_DIR, "ext4", MsFlags::MS_NOATIME, None)
            .with_context(|| format!("mounting the scratch disk {device}"))?,
        None => mount_fs(
            "tmpfs",
            WRITABLE_DIR,
            "tmpfs",
            MsFlags::empty(),
            Some("mode=0755"),
        )
        .context("mounting the writable layer")?,
    }
    let layer = WritableLayer {
        upper: UPPER_DIR.to_owned(),
        work: format!("{WRITABLE_DIR}/work"),
    };
    // A scratch disk of a restarted container already has both.
    for dir in [&layer.upper, &layer.work] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    }
    Ok(layer)
}

/// Overlay mount options for read-only virtio-fs lower layers.
///
/// `index=off` and `xino=off`: both features need file handles that can be
/// decoded on every layer and a lower layer with a unique uuid. A virtio-fs
/// (FUSE) superblock has a null uuid and decodes handles only if the daemon
/// keeps every inode, so overlayfs would turn both off anyway, after printing
/// a warning on the serial console (slow under emulation) at every boot.
/// Saying so also keeps the mount independent of the kernel's
/// CONFIG_OVERLAY_FS_INDEX / CONFIG_OVERLAY_FS_XINO_AUTO defaults.
/// `redirect_dir` and `metacopy` stay at their default, off.
///
/// `userxattr`: overlayfs keeps its xattrs (opaque directories) in the
/// `user.overlay.` namespace, the one image layers are unpacked with (see
/// the hull-image crate), which every hop to the guest passes.
///
/// Each lower directory is its own `lowerdir+` option (Linux 6.8+), so no
/// number of layers meets the one-page limit of a `lowerdir=a:b:...` list.
fn overlay_options(
    lower: &[String],
    upper: &str,
    work: &str,
) -> Vec<(&'static str, Option<String>)> {
    let mut options: Vec<_> = lower
        .iter()
        .map(|dir| ("lowerdir+", Some(dir.clone())))
        .collect();
    options.extend([
        ("upperdir", Some(upper.to_owned())),
        ("workdir", Some(work.to_owned())),
        ("userxattr", None),
        ("index", Some("off".to_owned())),
        ("xino", Some("off".to_owned())),
    ]);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_name_every_layer_and_turn_off_handle_features() {
        let lower = ["/l/top".to_owned(), "/l/base".to_owned()];
        let text = |value: &str| Some(value.to_owned());
        assert_eq!(
            overlay_options(&lower, "/rw/upper", "/rw/work"),
            [
                ("lowerdir+", text("/l/top")),
                ("lowerdir+", text("/l/base")),
                ("upperdir", text("/rw/upper")),
                ("workdir", text("/rw/work")),
                ("userxattr", None),
                ("index", text("off")),
                ("xino", text("off")),
            ]
        );
    }

    #[test]
    fn lower_dirs_are_the_share_or_plain_relative_paths_in_order() {
        assert_eq!(lower_dirs(&[]).unwrap(), [SHARE_DIR]);
        let layers = ["0a1b/fs".to_owned(), "base_1.0".to_owned()];
        assert_eq!(
            lower_dirs(&layers).unwrap(),
            [
                format!("{SHARE_DIR}/0a1b/fs"),
                format!("{SHARE_DIR}/base_1.0")
            ]
        );
        for bad in ["", ".", "..", "a/../b", "a//b", "a/", "a:b", "a,b", "/abs"] {
            assert!(lower_dirs(&[bad.to_owned()]).is_err(), "{bad:?} accepted");
        }
    }
}
