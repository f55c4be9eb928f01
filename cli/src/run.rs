//! `hull run`: boot a microVM for one container and run its process.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_image::{Image, ImageRef, Pin, ProgressStyle, Store, Stream};
use hull_protocol::{RootfsSpec, RunSpec, AGENT_READY_PORT};
use hull_vmm::{Console, Disk, FsShare, VmConfig, VsockConfig};

use crate::assets;
use crate::image_cmd;
use crate::kvm::{Backend, Kvm};
use crate::process_config::{parse_user, process_config, ImageDefaults, ProcessFlags};
use crate::scratch;
use crate::session;
use crate::signals::{interrupted_exit_code, ForwardedSignals};
use crate::state::StateRoot;
use crate::testhost;
use crate::vm_process::{Boot, VmProcess};

/// The virtio-fs tag the agent mounts as the container's lower root layer.
const ROOTFS_TAG: &str = "hull-rootfs";
/// Kernel arguments every guest gets; the VMM adds its device arguments.
/// Every console byte is a VM exit, so boot messages are off unless the user
/// asked to see the console.
const GUEST_CMDLINE: &str = "console=ttyS0 reboot=k panic=-1 tsc=reliable 8250.nr_uarts=1";
/// The scratch disk is the VM's only disk, so the guest names it vda.
const SCRATCH_DEVICE: &str = "/dev/vda";
/// The first guest CID that is not reserved.
const GUEST_CID: u64 = 3;
/// Generous: under the test host's emulation a boot takes several seconds.
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run a directory as the container's root file system instead of an
    /// image (shared read-only; the container writes to a private overlay).
    /// Everything after the options is then the command.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,

    /// Overwrite the image's entrypoint ("" for none).
    #[arg(long, value_name = "COMMAND")]
    entrypoint: Option<String>,

    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// Working directory inside the container (default: the image's, or /).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,

    /// User to run as: USER[:GROUP], names or numeric ids (default: the
    /// image's, or root).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,

    /// Container host name (default: the short container ID).
    #[arg(long)]
    hostname: Option<String>,

    /// Pull the image before running: when it is missing, always, or never.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pull: PullPolicy,

    /// Number of virtual CPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=32))]
    cpus: u8,

    /// Guest memory, e.g. 256m or 1g.
    #[arg(short = 'm', long = "memory", default_value = "512m", value_parser = parse_memory_mib)]
    memory_mib: u64,

    /// Guest kernel (an uncompressed vmlinux) instead of the one hull built.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,

    /// Keep stdin open and forward it to the container.
    #[arg(short = 'i', long)]
    interactive: bool,

    /// Remove the container when it exits (containers are not kept yet, so
    /// this is always the case).
    #[arg(long)]
    rm: bool,

    /// Show the guest's serial console on this terminal.
    #[arg(long)]
    console: bool,

    /// The image, then the command to run instead of its default, with its
    /// arguments (with --rootfs: only the command).
    #[arg(
        trailing_var_arg = true,
        required = true,
        value_name = "IMAGE [COMMAND]"
    )]
    args: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PullPolicy {
    Missing,
    Always,
    Never,
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
        /// Keeps `rmi` and `image prune` away from the layers.
        _pin: Pin,
    },
}

impl RootSource {
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

    /// Host directories the KVM test host must see as they are: image
    /// layers carry overlayfs whiteouts.
    fn direct_dirs(&self) -> Vec<PathBuf> {
        match self {
            RootSource::Directory(_) => Vec::new(),
            RootSource::Image { layers_dir, .. } => vec![layers_dir.clone()],
        }
    }
}

pub fn run(args: RunArgs, root: &StateRoot) -> Result<u8> {
    // Check what the user named before any VM starts, wherever it runs.
    let (source, image, command) = match &args.rootfs {
        Some(dir) => {
            let dir = std::fs::canonicalize(dir)
                .ok()
                .filter(|path| path.is_dir())
                .with_context(|| format!("--rootfs {}: no such directory", dir.display()))?;
            (
                RootSource::Directory(dir),
                ImageDefaults::default(),
                args.args.as_slice(),
            )
        }
        None => {
            let (name, command) = args.args.split_first().context("no image given")?;
            let store = Store::open(root.path())?;
            let image = image_for_run(&store, root.path(), name, args.pull)?;
            let source = image_source(&store, &image)?;
            let defaults = image
                .config
                .config()
                .as_ref()
                .map(ImageDefaults::from)
                .unwrap_or_default();
            (source, defaults, command)
        }
    };
    let id = crate::state::new_container_id();
    let hostname = args.hostname.clone().unwrap_or_else(|| id[..12].to_owned());
    let process = process_config(
        &image,
        &ProcessFlags {
            entrypoint: args.entrypoint.as_deref(),
            command,
            env: &args.env,
            workdir: args.workdir.as_deref(),
            user: args.user.as_deref(),
            hostname: &hostname,
        },
    )?;
    let kernel = assets::guest_kernel(args.kernel.as_deref())?;
    let agent = assets::agent_binary()?;

    let kvm = Kvm::detect();
    let backend = Backend::select(&kvm).map_err(anyhow::Error::msg)?;
    if backend == Backend::TestHost {
        if let Some(notice) = backend.notice(&kvm) {
            eprintln!("{notice}");
        }
        // The same command line, run by this same binary inside the test
        // host, where /dev/kvm is real. The image is in the store by now.
        let mut argv: Vec<String> = std::env::args().collect();
        argv[0] = std::env::current_exe()
            .context("cannot locate the hull executable")?
            .to_string_lossy()
            .into_owned();
        return testhost::run_in_testhost(argv, args.interactive, &source.direct_dirs());
    }
    let initramfs = assets::agent_initramfs(&agent, &root.cache_dir())?;

    let mut signals = ForwardedSignals::catch()?;
    let run_dir = root.create_run_dir(&id)?;
    let vsock_uds = run_dir.path().join("vsock.sock");
    let ready_socket = PathBuf::from(format!("{}_{AGENT_READY_PORT}", vsock_uds.display()));
    let listener = UnixListener::bind(&ready_socket)
        .with_context(|| format!("cannot listen on {}", ready_socket.display()))?;

    let scratch = scratch::create(&run_dir.path().join("scratch.img"), scratch::DEFAULT_SIZE)?;
    let config = VmConfig {
        kernel,
        initramfs: Some(initramfs),
        cmdline: if args.console {
            GUEST_CMDLINE.to_owned()
        } else {
            format!("{GUEST_CMDLINE} quiet")
        },
        vcpus: args.cpus,
        memory_mib: args.memory_mib,
        console: if args.console {
            Console::Stdout
        } else {
            Console::File(run_dir.path().join("console.log"))
        },
        vsock: Some(VsockConfig {
            guest_cid: GUEST_CID,
            uds_path: vsock_uds,
        }),
        shares: vec![source.share()],
        disks: vec![Disk {
            path: scratch,
            read_only: false,
        }],
    };
    let mut vm = VmProcess::spawn(run_dir, &config)?;
    let stream = match vm.accept_agent(&listener, AGENT_CONNECT_TIMEOUT, &mut signals)? {
        Boot::Ready(stream) => stream,
        Boot::Interrupted(signal) => return Ok(interrupted_exit_code(signal)),
    };
    // One agent per VM: no further guest connection reaches this host.
    drop(listener);
    std::fs::remove_file(&ready_socket)
        .with_context(|| format!("cannot remove {}", ready_socket.display()))?;

    let spec = RunSpec {
        argv: process.argv,
        env: process.env,
        cwd: process.cwd,
        user: process.user,
        hostname,
        rootfs: Some(RootfsSpec {
            share: ROOTFS_TAG.into(),
            layers: source.layers(),
            scratch_device: Some(SCRATCH_DEVICE.into()),
        }),
    };
    let end = session::attach(stream, spec, args.interactive, signals)?;
    vm.finish(POWER_OFF_TIMEOUT);
    Ok(end.exit_code())
}

/// The image `name` from the store, pulled first as `policy` says.
fn image_for_run(store: &Store, root: &Path, name: &str, policy: PullPolicy) -> Result<Image> {
    let found = match policy {
        PullPolicy::Always => None,
        PullPolicy::Missing | PullPolicy::Never => store.find(name)?,
    };
    if let Some(image) = found {
        return Ok(image);
    }
    if policy == PullPolicy::Never {
        bail!("no such image: {name} (and --pull never); pull it with `hull pull {name}`");
    }
    let reference = ImageRef::parse(name)?;
    if policy == PullPolicy::Missing {
        eprintln!("Unable to find image '{name}' locally");
    }
    let mut options = image_cmd::registry_options(root, &[])?;
    options.progress = ProgressStyle::on(Stream::Stderr);
    let pulled = hull_image::pull(store, &reference, &options)?;
    eprintln!("Digest: {}", pulled.manifest_digest);
    store.resolve(&reference.to_string())
}

/// The image's layers as the guest sees them: the store's layer directory,
/// showing only this image's layers, pinned for as long as the source lives.
fn image_source(store: &Store, image: &Image) -> Result<RootSource> {
    let pin = store.pin(&image.id)?;
    let layers_dir = store.layers_dir();
    let mut entries = Vec::new();
    let mut layers = Vec::new();
    for layer in image.layers.iter().rev() {
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
        bail!("image {} has no layers to run", image.id);
    }
    Ok(RootSource::Image {
        layers_dir,
        entries,
        layers,
        _pin: pin,
    })
}

/// Parses a Docker-style size (bytes, or with a b/k/m/g suffix) into MiB.
fn parse_memory_mib(value: &str) -> Result<u64, String> {
    let lower = value.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), "b"),
    };
    let multiplier: u64 = match unit {
        "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return Err(format!("{value:?} is not a size like 256m or 1g")),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{value:?} is not a size like 256m or 1g"))?;
    let mib = bytes >> 20;
    if mib < 64 {
        return Err(format!("{value}: a guest needs at least 64m of memory"));
    }
    Ok(mib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_docker() {
        assert_eq!(parse_memory_mib("256m"), Ok(256));
        assert_eq!(parse_memory_mib("1G"), Ok(1024));
        assert_eq!(parse_memory_mib("131072k"), Ok(128));
        assert_eq!(parse_memory_mib("134217728"), Ok(128));
        assert!(parse_memory_mib("32m")
            .unwrap_err()
            .contains("at least 64m"));
        assert!(parse_memory_mib("12x").is_err());
        assert!(parse_memory_mib("m").is_err());
        assert!(parse_memory_mib("99999999999999g").is_err());
    }
}
