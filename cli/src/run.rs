//! `hull run`: boot a microVM for one container and run its process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_image::{Image, ImageRef, ProgressStyle, Store, Stream};

use crate::boot::{self, BootOutcome, ConsoleTarget};
use crate::container::{self, BootSpec, ContainerConfig, RootfsSource};
use crate::container_log::LogLimits;
use crate::detach_keys::DetachKeys;
use crate::network::{self, ContainerNetwork, NetworkFlags};
use crate::process_config::{parse_user, process_config, ImageDefaults, ProcessFlags};
use crate::restart_policy::RestartPolicy;
use crate::session::{Input, Request};
use crate::signals::{interrupted_exit_code, ForwardedSignals};
use crate::state::StateRoot;
use crate::terminal::StdioFlags;
use crate::{assets, detach, image_cmd, session, units};

/// How long a VM may take to power off after its process ended.
pub const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(30);

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

    #[command(flatten)]
    stdio: StdioFlags,

    #[command(flatten)]
    network: NetworkFlags,

    /// Remove the container when it exits (without -d, containers are not
    /// kept yet, so this is always the case).
    #[arg(long)]
    rm: bool,

    /// Run the container in the background and print its ID.
    #[arg(short = 'd', long)]
    detach: bool,

    /// Name the container (default: a generated name).
    #[arg(long)]
    name: Option<String>,

    /// Boot a -d container again when its process ends: no,
    /// on-failure[:N] (after a non-zero exit, at most N times), always, or
    /// unless-stopped; never after hull stop or hull kill.
    #[arg(long, value_name = "POLICY", default_value = "no")]
    restart: RestartPolicy,

    /// Log limits of a -d container: max-size=SIZE (default 10m) at which
    /// the log rotates, max-file=N (default 3) files kept.
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opts: Vec<String>,

    /// The keys that detach `hull attach` from this container, e.g.
    /// ctrl-x,q (default: ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<DetachKeys>,

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

impl RunArgs {
    /// The -i/-t flags; a detached run has neither here.
    pub fn attached_stdio(&self) -> Option<&StdioFlags> {
        (!self.detach).then_some(&self.stdio)
    }

    /// Does here what must happen before the command line goes to the hull
    /// machine: checks what it would find wrong only after it started (host
    /// ports taken on this host, from where its forwards come; a missing
    /// kernel or rootfs), and finds or pulls the image here, as `hull pull`
    /// does (the machine cannot create an image's device nodes through its
    /// 9p share). Returns the environment the `hull run` there needs.
    pub fn prepare_for_machine(&self, root: &StateRoot) -> Result<Vec<String>> {
        self.network.check_named_host_ports()?;
        assets::guest_kernel(self.kernel.as_deref())?;
        match &self.rootfs {
            Some(dir) => {
                rootfs_dir(dir)?;
                Ok(Vec::new())
            }
            None => {
                let name = self.args.first().context("no image given")?;
                let store = Store::open(root.path())?;
                let image = image_for_run(&store, root.path(), name, self.pull)?;
                Ok(vec![format!("{RESOLVED_IMAGE_ENV}={}", image.id)])
            }
        }
    }
}

/// The `--rootfs` directory, made absolute.
fn rootfs_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir)
        .ok()
        .filter(|path| path.is_dir())
        .with_context(|| format!("--rootfs {}: no such directory", dir.display()))
}

/// Set for the `hull run` in the hull machine by the one outside: the ID of
/// the image it found or pulled.
const RESOLVED_IMAGE_ENV: &str = "HULL_RESOLVED_IMAGE";

pub fn run(args: RunArgs, root: &StateRoot) -> Result<u8> {
    let tty = args.stdio.terminal(!args.detach)?;
    if args.restart != RestartPolicy::No {
        if !args.detach {
            bail!("--restart applies to containers run with -d");
        }
        if args.rm {
            bail!("--restart and --rm conflict: a container that restarts is not removed when it exits");
        }
    }
    let log_limits = args
        .log_opts
        .iter()
        .try_fold(LogLimits::default(), |limits, option| {
            limits.with_option(option)
        })?;
    // Check what the user named before any VM starts, wherever it runs.
    let (rootfs, image_name, image, command) = match &args.rootfs {
        Some(dir) => {
            let dir = rootfs_dir(dir)?;
            let name = dir.display().to_string();
            (
                RootfsSource::Directory(dir),
                name,
                ImageDefaults::default(),
                args.args.as_slice(),
            )
        }
        None => {
            let (name, command) = args.args.split_first().context("no image given")?;
            let store = Store::open(root.path())?;
            let image = match std::env::var(RESOLVED_IMAGE_ENV) {
                Ok(id) => store.resolve(&id)?,
                Err(_) => image_for_run(&store, root.path(), name, args.pull)?,
            };
            let defaults = image
                .config
                .config()
                .as_ref()
                .map(ImageDefaults::from)
                .unwrap_or_default();
            (
                RootfsSource::Image(image.id.to_string()),
                name.clone(),
                defaults,
                command,
            )
        }
    };
    let id = crate::state::new_id();
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
    let mut spec = BootSpec {
        kernel: assets::guest_kernel(args.kernel.as_deref())?,
        cpus: args.cpus,
        memory_mib: args.memory_mib,
        rootfs,
        argv: process.argv,
        env: process.env,
        cwd: process.cwd,
        user: process.user,
        hostname,
        tty,
        network: ContainerNetwork::default(),
    };
    assets::agent_binary()?;

    let name = args
        .name
        .clone()
        .unwrap_or_else(|| container::generated_name(&id));
    spec.network = network::create(root, &id, &name, &args.network, &image.exposed_ports)?;
    let _address = AddressLease {
        root,
        id: id.clone(),
        network: spec.network.clone(),
    };
    if args.detach {
        return detach::create_and_start(
            root,
            ContainerConfig {
                name,
                id,
                image: image_name,
                created: container::now(),
                auto_remove: args.rm,
                log_limits,
                restart: args.restart,
                interactive: args.stdio.interactive,
                detach_keys: args.detach_keys.clone(),
                boot: spec,
            },
        );
    }

    let mut signals = ForwardedSignals::catch()?;
    let scratch = root.run_dir_path(&id).join("scratch.img");
    let console = if args.console {
        ConsoleTarget::Terminal
    } else {
        ConsoleTarget::Log
    };
    let booted = match boot::boot(root, &id, &spec, &scratch, console, &mut signals)? {
        BootOutcome::Booted(booted) => booted,
        BootOutcome::Interrupted(signal) => return Ok(interrupted_exit_code(signal)),
    };
    let input = match args.stdio.interactive {
        true => Input::Stdin(None),
        false => Input::Closed,
    };
    let end = session::attach(
        booted.stream,
        Request::Run {
            spec: Box::new(booted.spec),
            report_oom: false,
        },
        input,
        Some(signals),
        Box::new(session::Terminal::default()),
    )?;
    booted.vm.finish(POWER_OFF_TIMEOUT);
    Ok(end.exit_code())
}

/// A new container's address, given back when `hull run` ends unless the
/// container was recorded (`-d`), which keeps it until `hull rm`.
struct AddressLease<'a> {
    root: &'a StateRoot,
    id: String,
    network: ContainerNetwork,
}

impl Drop for AddressLease<'_> {
    fn drop(&mut self) {
        if container::exists(self.root, &self.id) {
            return;
        }
        if let Err(err) = network::release(self.root, &self.id, &self.network) {
            eprintln!("hull: warning: {err:#}");
        }
    }
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

/// Parses a Docker-style size (bytes, or with a b/k/m/g suffix) into bytes.
pub fn parse_size_bytes(value: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 8] = [
        ("", 1),
        ("b", 1),
        ("k", 1 << 10),
        ("kb", 1 << 10),
        ("m", 1 << 20),
        ("mb", 1 << 20),
        ("g", 1 << 30),
        ("gb", 1 << 30),
    ];
    units::parse_scaled(&value.trim().to_ascii_lowercase(), &UNITS)
        .ok_or_else(|| format!("{value:?} is not a size like 256m or 1g"))
}

/// Parses a guest memory size into MiB.
pub fn parse_memory_mib(value: &str) -> Result<u64, String> {
    let mib = parse_size_bytes(value)? >> 20;
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
