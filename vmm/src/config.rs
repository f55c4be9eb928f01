//! What a VM is made of: the description the CLI hands to [`crate::run`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::seccomp::SeccompMode;

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
    /// virtio-net devices, each on its own host tap. They come after the
    /// disks on the virtio-mmio bus, so the disk names do not change.
    #[serde(default)]
    pub net: Vec<NetConfig>,
    /// What each thread's seccomp filter does with a syscall outside its
    /// allow-list (kill the VMM unless set otherwise).
    #[serde(default)]
    pub seccomp: SeccompMode,
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
    /// The guest may not change anything in the share (enforced by the VMM,
    /// whatever the guest sends).
    pub read_only: bool,
    /// When set, the guest sees only these names (plain file names) at the
    /// top of `host_dir`, and cannot add, remove or rename entries there
    /// (enforced by the VMM, whatever the guest sends). The entries
    /// themselves are as writable as `read_only` allows. Read-only, it is
    /// how a container gets its own image layers and no others; writable,
    /// how a single host file is bind-mounted: its parent directory shared
    /// with only the file visible, for the guest to bind `share/FILE`.
    #[serde(default)]
    pub visible_entries: Option<Vec<String>>,
    /// Others (the host, other VMs) may change the share while the guest
    /// runs, read-only as it may be to this guest (a volume mounted `:ro`):
    /// the guest then caches it as a writable share, not for long.
    #[serde(default)]
    pub changes_elsewhere: bool,
}

/// A raw disk image (normally a sparse file) attached as a virtio-blk
/// device. The VMM locks it for the VM's lifetime: exclusively when
/// writable, shared when `read_only`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub path: PathBuf,
    pub read_only: bool,
}

/// A virtio-net device on a host tap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// A tap file descriptor this process inherited, opened with
    /// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR. The VMM owns it from then on.
    pub tap_fd: i32,
    /// The guest's MAC address.
    pub mac: [u8; 6],
}

/// `mac` as six colon-separated hex bytes.
pub(crate) fn format_mac(mac: &[u8; 6]) -> String {
    let bytes: Vec<String> = mac.iter().map(|byte| format!("{byte:02x}")).collect();
    bytes.join(":")
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
        for (index, net) in self.net.iter().enumerate() {
            // Each device takes its fd over: one fd cannot serve two.
            if self.net[..index]
                .iter()
                .any(|other| other.tap_fd == net.tap_fd)
            {
                return Err(format!(
                    "tap fd {} is given to more than one net device",
                    net.tap_fd
                ));
            }
            let multicast = net.mac[0] & 1 != 0;
            if multicast || net.mac == [0; 6] {
                return Err(format!(
                    "net device MAC {} is not a unicast address",
                    format_mac(&net.mac)
                ));
            }
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
                changes_elsewhere: false,
            }],
            disks: vec![Disk {
                path: "/var/lib/hull/scratch.img".into(),
                read_only: false,
            }],
            net: vec![
                NetConfig {
                    tap_fd: 7,
                    mac: [0x02, 0x68, 0x75, 0x6c, 0x6c, 0x01],
                },
                NetConfig {
                    tap_fd: 8,
                    mac: [0x02, 0x68, 0x75, 0x6c, 0x6c, 0x02],
                },
            ],
            seccomp: SeccompMode::Errno,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let json = serde_json::to_string(&config()).unwrap();
        assert_eq!(serde_json::from_str::<VmConfig>(&json).unwrap(), config());
    }

    #[test]
    fn disks_and_net_devices_default_to_none_and_seccomp_to_errno() {
        let mut json = serde_json::to_value(config()).unwrap();
        for key in ["disks", "net", "seccomp"] {
            json.as_object_mut().unwrap().remove(key);
        }
        let parsed: VmConfig = serde_json::from_value(json).unwrap();
        assert!(parsed.disks.is_empty());
        assert!(parsed.net.is_empty());
        assert_eq!(parsed.seccomp, SeccompMode::Errno);
    }

    #[test]
    fn rejects_shared_tap_fds_and_non_unicast_macs() {
        let mut c = config();
        c.net[1].tap_fd = c.net[0].tap_fd;
        let err = c.validate().unwrap_err();
        assert!(err.contains("tap fd 7"), "{err}");

        for mac in [[0x03, 0, 0, 0, 0, 1], [0xff; 6], [0; 6]] {
            let mut c = config();
            c.net[1].mac = mac;
            let err = c.validate().unwrap_err();
            assert!(err.contains(&format_mac(&mac)), "{err}");
        }
        assert_eq!(
            format_mac(&[0x02, 0xab, 0, 1, 0x10, 0xff]),
            "02:ab:00:01:10:ff"
        );
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
