//! What a VM is made of: the description the CLI hands to [`crate::run`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything needed to build and boot one guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfig {
    /// Uncompressed ELF kernel image (`vmlinux`).
    pub kernel: PathBuf,
    /// Uncompressed newc cpio archive, loaded at the top of low RAM.
    pub initramfs: Option<PathBuf>,
    /// Kernel command line; the VMM appends its `virtio_mmio.device=` args.
    pub cmdline: String,
    /// Number of vCPUs, 1..=32.
    pub vcpus: u8,
    /// Guest RAM size.
    pub memory_mib: u64,
    /// Where the guest's ttyS0 output goes.
    pub console: Console,
    /// A virtio-vsock device bridged to a host unix socket.
    pub vsock: Option<VsockConfig>,
    /// Host directories exported to the guest over virtio-fs.
    pub shares: Vec<FsShare>,
    /// Raw disk images attached as virtio-blk devices. The guest sees them
    /// as `/dev/vda`, `/dev/vdb`, ... in this order.
    #[serde(default)]
    pub disks: Vec<Disk>,
}

/// Destination of the serial console output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Console {
    Off,
    /// Appended to this file, which rotates at 1 MiB: the file holds the
    /// newest output, `<file>.1` the 1 MiB before it.
    File(PathBuf),
    Stdout,
}

/// virtio-vsock settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockConfig {
    pub guest_cid: u64,
    /// Host unix socket the device's connections are bridged to.
    pub uds_path: PathBuf,
}

/// A host directory shared with the guest under a virtio-fs `tag`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsShare {
    pub tag: String,
    pub host_dir: PathBuf,
    pub read_only: bool,
    /// When set, the share is read-only and the guest sees only these names
    /// at the top of `host_dir` (enforced by the VMM, whatever the guest
    /// sends): how a container gets its own image layers and no others.
    #[serde(default)]
    pub visible_entries: Option<Vec<String>>,
}

/// A raw disk image (normally a sparse file) attached as a virtio-blk
/// device. The VMM locks it for the VM's lifetime: exclusively when
/// writable, shared when `read_only`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub path: PathBuf,
    pub read_only: bool,
}

/// Largest vCPU count: the MP table and APIC ID layout are sized for it.
pub const MAX_VCPUS: u8 = 32;

impl VmConfig {
    /// Checks the limits that are not expressed by the types.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_VCPUS).contains(&self.vcpus) {
            return Err(format!(
                "vcpus must be between 1 and {MAX_VCPUS}, got {}",
                self.vcpus
            ));
        }
        if self.memory_mib < MIN_MEMORY_MIB {
            return Err(format!(
                "memory_mib must be at least {MIN_MEMORY_MIB}, got {}",
                self.memory_mib
            ));
        }
        if self.memory_mib > MAX_MEMORY_MIB {
            return Err(format!(
                "memory_mib must be at most {MAX_MEMORY_MIB}, got {}",
                self.memory_mib
            ));
        }
        Ok(())
    }
}

/// Below this the kernel (loaded at 16 MiB) and an initramfs do not fit.
const MIN_MEMORY_MIB: u64 = 64;
/// 1 TiB: far beyond any container, and keeps address arithmetic trivially
/// in range.
const MAX_MEMORY_MIB: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> VmConfig {
        VmConfig {
            kernel: "/k".into(),
            initramfs: None,
            cmdline: "console=ttyS0".into(),
            vcpus: 2,
            memory_mib: 256,
            console: Console::File("/tmp/console".into()),
            vsock: Some(VsockConfig {
                guest_cid: 3,
                uds_path: "/tmp/v.sock".into(),
            }),
            shares: vec![FsShare {
                tag: "root".into(),
                host_dir: "/srv".into(),
                read_only: true,
                visible_entries: Some(vec!["layer".into()]),
            }],
            disks: vec![Disk {
                path: "/var/lib/hull/scratch.img".into(),
                read_only: false,
            }],
        }
    }

    #[test]
    fn round_trips_through_json() {
        let json = serde_json::to_string(&config()).unwrap();
        assert_eq!(serde_json::from_str::<VmConfig>(&json).unwrap(), config());
    }

    #[test]
    fn disks_default_to_none() {
        let mut json = serde_json::to_value(config()).unwrap();
        json.as_object_mut().unwrap().remove("disks");
        let parsed: VmConfig = serde_json::from_value(json).unwrap();
        assert!(parsed.disks.is_empty());
    }

    #[test]
    fn rejects_out_of_range_vcpus_and_memory() {
        assert!(config().validate().is_ok());
        for vcpus in [0, 33] {
            let c = VmConfig { vcpus, ..config() };
            assert!(c.validate().unwrap_err().contains("vcpus"));
        }
        let c = VmConfig {
            memory_mib: 16,
            ..config()
        };
        assert!(c.validate().unwrap_err().contains("memory_mib"));
    }
}
