//! Booting a container's VM from its [`BootSpec`]: the root file system
//! share, the scratch disk, the VMM process and the agent's connection.
//! Used by a container's monitor, in the background or attached alike.

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hull_image::{Digest, Pin, Store};
use hull_protocol::{
    Limits, MountSource as ProtocolMountSource, MountSpec, RootfsSpec, RunSpec, AGENT_READY_PORT,
};
use hull_vmm::{Console, Disk, FsShare, NetConfig, SeccompMode, VmConfig, VsockConfig};

use crate::assets;
use crate::container::{BootSpec, Mount, MountSource, Records, RootfsSource};
use crate::limits::cpu_quota_usec;
use crate::network;
use crate::root::StateRoot;
use crate::scratch;
use crate::signals::Signals;
use crate::vm_process::{Boot, BootBudget, VmProcess};
use crate::volume::VolumeStore;

/// The virtio-fs tag the agent mounts as the container's lower root layer.
const ROOTFS_TAG: &str = "hull-rootfs";
/// The tags of its mounts' shares: this and their index.
const MOUNT_TAG_PREFIX: &str = "hull-mount-";
/// Kernel arguments every guest gets; the VMM adds its device arguments.
/// Every console byte is a VM exit, so boot messages are off unless the user
/// asked to see the console.
const GUEST_CMDLINE: &str = "console=ttyS0 reboot=k panic=-1 tsc=reliable 8250.nr_uarts=1";
/// The scratch disk is the VM's only disk, so the guest names it vda.
const SCRATCH_DEVICE: &str = "/dev/vda";
/// The first guest CID that is not reserved.
const GUEST_CID: u64 = 3;
/// A boot takes well under a second of CPU time natively and a few under
/// the test host's nested emulation; a guest still without its agent after
/// this much spins, and one that used none for this long stands still.
const BOOT_BUDGET: BootBudget = BootBudget {
    cpu: Duration::from_secs(120),
    stall: Duration::from_secs(120),
};

/// Switch for the VMM's seccomp filters: `kill` (a syscall outside a
/// thread's allow-list kills the VMM), `log` (it is allowed and the kernel
/// logs it) or `off`; unset or `errno`, it fails with EPERM.
const SECCOMP_ENV: &str = "HULL_VMM_SECCOMP";

/// A VM whose agent is connected and ready for the container's process.
pub(crate) struct Booted {
    pub vm: VmProcess,
    pub stream: UnixStream,
    /// The process to start, with its root file system.
    pub spec: RunSpec,
    /// Keeps the image's layers from being removed while the VM runs.
    _rootfs: RootSource,
    /// Relays the published ports and answers names while the VM runs.
    _network: network::Services,
}

/// How a boot ended.
pub(crate) enum BootOutcome {
    Booted(Box<Booted>),
    /// A terminating signal came first; the VM is gone.
    Interrupted(i32),
}

/// Where the guest's serial console goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConsoleTarget {
    /// The stdout (file descriptor 1) of the process holding the VM, the
    /// VMM's own (`hull run --console`), whatever the session's output is.
    Stdout,
    /// A file in the VM's runtime directory.
    #[default]
    Log,
}

/// Boots the VM of container `id` as `spec` says, with its writable layer
/// on the scratch disk `scratch`, made if it does not exist yet (a
/// restarted container keeps its writes).
pub(crate) fn boot(
    root: &StateRoot,
    id: &str,
    spec: &BootSpec,
    scratch: &Path,
    console: ConsoleTarget,
    signals: &Signals,
) -> Result<BootOutcome> {
    let rootfs = RootSource::open(root, &spec.rootfs)?;
    let agent = assets::agent_binary()?;
    let initramfs = assets::agent_initramfs(&agent, &root.cache_dir())?;
    let run_dir = root.create_run_dir(id)?;
    let vsock_uds = run_dir.vsock_path();
    let ready_socket = PathBuf::from(format!("{}_{AGENT_READY_PORT}", vsock_uds.display()));
    let listener = UnixListener::bind(&ready_socket)
        .with_context(|| format!("cannot listen on {}", ready_socket.display()))?;

    let scratch = match scratch.exists() {
        true => scratch.to_owned(),
        false => scratch::create(scratch, spec.scratch_bytes.unwrap_or(scratch::DEFAULT_SIZE))?,
    };
    let (cmdline, console) = match console {
        ConsoleTarget::Stdout => (GUEST_CMDLINE.to_owned(), Console::Stdout),
        ConsoleTarget::Log => (
            format!("{GUEST_CMDLINE} quiet"),
            Console::File(run_dir.console_log()),
        ),
    };
    let (mount_shares, mounts) = mount_shares(root, &spec.mounts)?;
    check_device_room(mount_shares.len(), spec.network.endpoints.len())
        .map_err(anyhow::Error::msg)?;
    let records = Arc::new(Records::new(root));
    let network = network::attach(root, records, id, &spec.network, &spec.hostname)?;
    let config = VmConfig {
        kernel: spec.kernel.clone(),
        initramfs: Some(initramfs),
        cmdline,
        vcpus: spec.cpus,
        memory_mib: spec.memory_mib,
        console,
        vsock: Some(VsockConfig {
            guest_cid: GUEST_CID,
            uds_path: vsock_uds,
        }),
        shares: [rootfs.share()].into_iter().chain(mount_shares).collect(),
        disks: vec![Disk {
            path: scratch,
            read_only: false,
        }],
        net: network
            .taps
            .iter()
            .map(|(tap, mac)| NetConfig {
                tap_fd: tap.as_raw_fd(),
                mac: mac.0,
            })
            .collect(),
        seccomp: seccomp_mode()?,
    };
    let taps = network.taps.into_iter().map(|(tap, _)| tap).collect();
    let mut vm = VmProcess::spawn(run_dir, &config, taps, spec.cpuset_cpus.as_ref())?;
    let stream = match vm.accept_agent(&listener, BOOT_BUDGET, Some(signals))? {
        Boot::Ready(stream) => stream,
        Boot::Interrupted(signal) => return Ok(BootOutcome::Interrupted(signal)),
    };
    // One agent per VM: no further guest connection reaches this host.
    drop(listener);
    std::fs::remove_file(&ready_socket)
        .with_context(|| format!("cannot remove {}", ready_socket.display()))?;

    let run_spec = RunSpec {
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone(),
        domainname: spec.domainname.clone(),
        tty: spec.tty,
        rootfs: Some(RootfsSpec {
            share: ROOTFS_TAG.into(),
            layers: rootfs.layers(),
            scratch_device: Some(SCRATCH_DEVICE.into()),
            read_only: spec.read_only,
            mounts,
        }),
        network: Some(network.spec),
        limits: Some(limits(spec)),
        hold: false,
        privileged: false,
    };
    Ok(BootOutcome::Booted(Box::new(Booted {
        vm,
        stream,
        spec: run_spec,
        _rootfs: rootfs,
        _network: network.services,
    })))
}

/// The virtio devices of every container's VM: its vsock, the share of its
/// image and its scratch disk.
const BASE_DEVICES: usize = 3;

/// Refuses a container whose shares of host directories and volumes (a
/// virtio-fs device each) and networks (a virtio-net device each) need
/// more devices than a VM has room for beside [`BASE_DEVICES`].
pub(crate) fn check_device_room(shares: usize, networks: usize) -> Result<(), String> {
    let room = hull_vmm::MAX_VIRTIO_DEVICES - BASE_DEVICES;
    let networks_text = match networks {
        1 => "1 network".to_owned(),
        n => format!("{n} networks"),
    };
    match shares + networks <= room {
        true => Ok(()),
        false => Err(format!(
            "bind mounts and volumes of {shares} directories and {networks_text}: a \
             container's VM has room for {room} of them together (a device each); bind a \
             common parent directory instead of several of its entries"
        )),
    }
}

/// What one virtio-fs device shares: a host directory, whole or only some
/// of its files, read-only or not. Mounts with the same key share a device
/// (the guest mounts it once and binds from it).
#[derive(Debug, PartialEq, Eq)]
struct ShareKey {
    host_dir: PathBuf,
    files_only: bool,
    read_only: bool,
}

impl ShareKey {
    /// The key of a bind of `path` (symbolic links followed, as Docker
    /// does, not in the guest): its directory, or a file's parent showing
    /// the file; and the file's name.
    fn of_bind(path: &Path, read_only: bool) -> Result<(ShareKey, Option<String>)> {
        let path = path
            .canonicalize()
            .with_context(|| format!("bind source {}", path.display()))?;
        let (host_dir, entry) = match path.is_dir() {
            true => (path, None),
            false => {
                let (parent, name) = split_file(&path)?;
                (parent, Some(name))
            }
        };
        let key = ShareKey {
            host_dir,
            files_only: entry.is_some(),
            read_only,
        };
        Ok((key, entry))
    }
}

/// How many virtio-fs devices `mounts` take, as [`mount_shares`] will
/// share them (a bind source not there yet counts as the directory `-v`
/// makes).
pub(crate) fn shares_needed(root: &StateRoot, mounts: &[Mount]) -> usize {
    let volumes = VolumeStore::open(root);
    let mut keys: Vec<ShareKey> = Vec::new();
    for mount in mounts {
        let key = match &mount.source {
            MountSource::Bind { path, .. } => match ShareKey::of_bind(path, mount.read_only) {
                Ok((key, _)) => key,
                Err(_) => ShareKey {
                    host_dir: path.clone(),
                    files_only: false,
                    read_only: mount.read_only,
                },
            },
            // A subpath is reached through its volume's share.
            MountSource::Volume { name, .. } => ShareKey {
                host_dir: volumes.mountpoint(name),
                files_only: false,
                read_only: mount.read_only,
            },
            MountSource::Tmpfs { .. } => continue,
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.len()
}

/// The virtio-fs shares of the container's host paths and volumes, and its
/// mounts as the agent makes them. Mounts of one directory, and single
/// files of one directory, read-only or not alike, share a device.
fn mount_shares(root: &StateRoot, mounts: &[Mount]) -> Result<(Vec<FsShare>, Vec<MountSpec>)> {
    let volumes = VolumeStore::open(root);
    let mut shares: Vec<(ShareKey, FsShare)> = Vec::new();
    let mut specs = Vec::new();
    for mount in mounts {
        let (key, entry, subpath, copy_up) = match &mount.source {
            MountSource::Bind { path, create } => {
                if *create && !path.exists() {
                    std::fs::create_dir_all(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                }
                let (key, entry) = ShareKey::of_bind(path, mount.read_only)?;
                (key, entry, None, false)
            }
            MountSource::Volume {
                name,
                copy,
                subpath,
            } => {
                let dir = volumes.get(name)?.mountpoint;
                if !dir.is_dir() {
                    bail!(
                        "volume {name}: its directory {} is not there; make it, or remove \
                         the volume",
                        dir.display()
                    );
                }
                // A bound volume's directory, as a bind's, is shared once
                // however it is reached.
                let dir = dir
                    .canonicalize()
                    .with_context(|| format!("volume {name}: {}", dir.display()))?;
                // A read-only volume the agent is to fill first is shared
                // writable for that (the agent mounts it read-only), as
                // Docker fills `:ro` volumes too; only while it is empty.
                // A subpath is there already: nothing fills it.
                let copy_up = *copy && subpath.is_none();
                let filling = copy_up && is_empty_dir(&dir)?;
                let key = ShareKey {
                    host_dir: dir,
                    files_only: false,
                    read_only: mount.read_only && !filling,
                };
                (key, None, subpath.clone(), copy_up)
            }
            MountSource::Tmpfs { size_bytes, mode } => {
                specs.push(MountSpec {
                    target: mount.target.clone(),
                    source: ProtocolMountSource::Tmpfs {
                        size_bytes: *size_bytes,
                        mode: *mode,
                    },
                    read_only: mount.read_only,
                });
                continue;
            }
        };
        let index = match shares.iter().position(|(known, _)| *known == key) {
            Some(index) => index,
            None => {
                let share = FsShare {
                    tag: format!("{MOUNT_TAG_PREFIX}{}", shares.len()),
                    host_dir: key.host_dir.clone(),
                    read_only: key.read_only,
                    visible_entries: key.files_only.then(Vec::new),
                    changes_elsewhere: true,
                };
                shares.push((key, share));
                shares.len() - 1
            }
        };
        let share = &mut shares[index].1;
        if let (Some(entry), Some(visible)) = (&entry, &mut share.visible_entries) {
            if !visible.contains(entry) {
                visible.push(entry.clone());
            }
        }
        specs.push(MountSpec {
            target: mount.target.clone(),
            source: ProtocolMountSource::Share {
                tag: share.tag.clone(),
                entry,
                subpath,
                copy_up,
            },
            read_only: mount.read_only,
        });
    }
    Ok((shares.into_iter().map(|(_, share)| share).collect(), specs))
}

/// Whether the directory `dir` has no entries.
fn is_empty_dir(dir: &Path) -> Result<bool> {
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(entries.next().is_none())
}

/// A file's directory and name.
fn split_file(path: &Path) -> Result<(PathBuf, String)> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let name = path.file_name().and_then(|name| name.to_str());
    match (parent, name) {
        (Some(parent), Some(name)) => Ok((parent.to_owned(), name.to_owned())),
        _ => bail!(
            "bind source {} is not a file path hull can share",
            path.display()
        ),
    }
}

/// The limits the guest enforces: the container's, with its memory and
/// CPU share as the cgroup's too.
fn limits(spec: &BootSpec) -> Limits {
    let cpu_quota_usec = spec
        .nano_cpus
        .and_then(|nanos| cpu_quota_usec(nanos, spec.cpus));
    Limits {
        memory_max_bytes: spec.limits.memory_max_bytes.or(Some(spec.memory_mib << 20)),
        cpu_quota_usec: spec.limits.cpu_quota_usec.or(cpu_quota_usec),
        ..spec.limits.clone()
    }
}

/// Where the container's root file system comes from.
enum RootSource {
    /// `--rootfs DIR`: the directory is the only lower layer.
    Directory(PathBuf),
    /// An image: its layers, shared from the store's layer directory.
    Image {
        layers_dir: PathBuf,
        /// The layer directories the guest may see, relative to `layers_dir`.
        entries: Vec<String>,
        /// Paths of the layers relative to `layers_dir`, top-most first.
        layers: Vec<String>,
        /// Keeps `rmi` and `image prune` away from the layers of an image.
        _pin: Option<Pin>,
    },
}

impl RootSource {
    /// The source `spec` names; an image is pinned.
    fn open(root: &StateRoot, spec: &RootfsSource) -> Result<RootSource> {
        match spec {
            RootfsSource::Directory(dir) => Ok(RootSource::Directory(dir.clone())),
            RootfsSource::Image(id) => {
                let store = Store::open(root.path())?;
                let image = store.resolve(id)?;
                let pin = store.pin(&image.id)?;
                layers_source(&store, &image.layers, Some(pin))
            }
            // Kept by the build cache that names them, not by a pin.
            RootfsSource::Layers(diff_ids) => {
                let store = Store::open(root.path())?;
                let layers = diff_ids
                    .iter()
                    .map(|diff_id| store.layer(&Digest::parse(diff_id)?))
                    .collect::<Result<Vec<_>>>()?;
                layers_source(&store, &layers, None)
            }
        }
    }

    /// The virtio-fs share holding the container's lower layers.
    fn share(&self) -> FsShare {
        let (host_dir, visible_entries) = match self {
            RootSource::Directory(dir) => (dir.clone(), None),
            RootSource::Image {
                layers_dir,
                entries,
                ..
            } => (layers_dir.clone(), Some(entries.clone())),
        };
        FsShare {
            tag: ROOTFS_TAG.into(),
            host_dir,
            read_only: true,
            visible_entries,
            changes_elsewhere: false,
        }
    }

    /// The lower layers inside the share, top-most first; none for a
    /// directory, which is the share itself.
    fn layers(&self) -> Vec<String> {
        match self {
            RootSource::Directory(_) => Vec::new(),
            RootSource::Image { layers, .. } => layers.clone(),
        }
    }
}

/// Unpacked layers (bottom first) as the guest sees them: the store's layer
/// directory, showing only these, kept by `pin` for as long as the source
/// lives.
fn layers_source(store: &Store, image_layers: &[PathBuf], pin: Option<Pin>) -> Result<RootSource> {
    let layers_dir = store.layers_dir();
    let mut entries = Vec::new();
    let mut layers = Vec::new();
    for layer in image_layers.iter().rev() {
        let relative = layer
            .strip_prefix(&layers_dir)
            .ok()
            .and_then(Path::to_str)
            .with_context(|| format!("layer {} is outside the image store", layer.display()))?;
        let entry = relative.split('/').next().unwrap_or(relative).to_owned();
        if !entries.contains(&entry) {
            entries.push(entry);
        }
        layers.push(relative.to_owned());
    }
    if layers.is_empty() {
        bail!("the image has no layers to run a command on");
    }
    Ok(RootSource::Image {
        layers_dir,
        entries,
        layers,
        _pin: pin,
    })
}

/// The VMM's seccomp mode: [`SECCOMP_ENV`]'s, EPERM by default.
fn seccomp_mode() -> Result<SeccompMode> {
    let Some(value) = std::env::var_os(SECCOMP_ENV) else {
        return Ok(SeccompMode::default());
    };
    match value.to_str() {
        Some("kill") => Ok(SeccompMode::Kill),
        Some("errno") => Ok(SeccompMode::Errno),
        Some("log") => Ok(SeccompMode::Log),
        Some("off") => Ok(SeccompMode::Off),
        _ => bail!(
            "{SECCOMP_ENV}={} is not a seccomp mode: use kill, errno, log or off",
            value.to_string_lossy()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_of_one_directory_share_a_device() {
        let temp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(temp.path().join("root"));
        let host = temp.path().join("host");
        std::fs::create_dir_all(host.join("src")).unwrap();
        for file in ["a.conf", "b.conf"] {
            std::fs::write(host.join(file), file).unwrap();
        }
        let bind = |path: &str, target: &str, read_only| Mount {
            target: target.to_owned(),
            source: MountSource::Bind {
                path: host.join(path),
                create: false,
            },
            read_only,
        };
        let mounts = [
            bind("a.conf", "/etc/a.conf", false),
            bind("src", "/app", false),
            bind("b.conf", "/etc/b.conf", false),
            bind("src", "/app2", false),
            bind("src", "/ro", true),
            Mount {
                target: "/tmp".into(),
                source: MountSource::Tmpfs {
                    size_bytes: None,
                    mode: None,
                },
                read_only: false,
            },
        ];
        let (shares, specs) = mount_shares(&root, &mounts).unwrap();
        // The two files, the directory, the directory read-only.
        assert_eq!(shares.len(), 3);
        assert_eq!(shares_needed(&root, &mounts), 3);
        let files = &shares[0];
        assert_eq!(
            files.visible_entries.as_deref(),
            Some(&["a.conf".to_owned(), "b.conf".to_owned()][..])
        );
        let tag_of = |index: usize| match &specs[index].source {
            ProtocolMountSource::Share { tag, .. } => tag.clone(),
            ProtocolMountSource::Tmpfs { .. } => "tmpfs".to_owned(),
        };
        let tags: Vec<String> = (0..specs.len()).map(tag_of).collect();
        assert_eq!(tags[0], tags[2]);
        assert_eq!(tags[1], tags[3]);
        assert_ne!(tags[1], tags[4]);
        assert_eq!(tags[5], "tmpfs");
        assert!(shares[2].read_only && !shares[1].read_only);
    }

    #[test]
    fn mounts_and_networks_share_the_room_for_devices() {
        let room = hull_vmm::MAX_VIRTIO_DEVICES - BASE_DEVICES;
        assert!(check_device_room(room - 1, 1).is_ok());
        assert!(check_device_room(room, 0).is_ok());
        let refused = check_device_room(room, 1).unwrap_err();
        assert!(refused.starts_with(&format!(
            "bind mounts and volumes of {room} directories and 1 network:"
        )));
    }
}
