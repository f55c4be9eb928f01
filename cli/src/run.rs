//! `hull run`: boot a microVM for one container and run its process.

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hull_protocol::{RootfsSpec, RunSpec, AGENT_READY_PORT};
use hull_vmm::{Console, Disk, FsShare, VmConfig, VsockConfig};

use crate::assets;
use crate::kvm::{Backend, Kvm};
use crate::scratch;
use crate::session;
use crate::state::StateRoot;
use crate::testhost;
use crate::vm_process::VmProcess;

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
/// Default PATH, as Docker sets it.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Generous: under the test host's emulation a boot takes several seconds.
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Directory to use as the container's root filesystem (shared read-only;
    /// the container writes to a private overlay).
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,

    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR", default_value = "/")]
    workdir: String,

    /// User to run as: UID[:GID] (numeric).
    #[arg(short = 'u', long = "user", value_name = "UID[:GID]", value_parser = parse_user)]
    user: Option<(u32, u32)>,

    /// Container host name (default: the short container ID).
    #[arg(long)]
    hostname: Option<String>,

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

    /// The command to run, with its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(args: RunArgs, root: &StateRoot) -> Result<u8> {
    // Check what the user named before any VM starts, wherever it runs.
    let rootfs = std::fs::canonicalize(&args.rootfs)
        .ok()
        .filter(|path| path.is_dir())
        .with_context(|| format!("--rootfs {}: no such directory", args.rootfs.display()))?;
    let kernel = assets::guest_kernel(args.kernel.as_deref())?;
    let agent = assets::agent_binary()?;

    let kvm = Kvm::detect();
    let backend = Backend::select(&kvm).map_err(anyhow::Error::msg)?;
    if backend == Backend::TestHost {
        if let Some(notice) = backend.notice(&kvm) {
            eprintln!("{notice}");
        }
        // The same command line, run by this same binary inside the test
        // host, where /dev/kvm is real.
        let mut argv: Vec<String> = std::env::args().collect();
        argv[0] = std::env::current_exe()
            .context("cannot locate the hull executable")?
            .to_string_lossy()
            .into_owned();
        return testhost::run_in_testhost(argv, args.interactive);
    }
    let initramfs = assets::agent_initramfs(&agent, &root.cache_dir())?;

    let id = crate::state::new_container_id();
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
        shares: vec![FsShare {
            tag: ROOTFS_TAG.into(),
            host_dir: rootfs,
            read_only: true,
            visible_entries: None,
        }],
        disks: vec![Disk {
            path: scratch,
            read_only: false,
        }],
    };
    let mut vm = VmProcess::spawn(run_dir, &config)?;
    let stream = vm.accept_agent(&listener, AGENT_CONNECT_TIMEOUT)?;

    let short_id = &id[..12];
    let (uid, gid) = args.user.unwrap_or((0, 0));
    let spec = RunSpec {
        argv: args.command,
        env: container_env(&args.env, args.hostname.as_deref().unwrap_or(short_id), uid),
        cwd: args.workdir,
        uid,
        gid,
        hostname: args.hostname.unwrap_or_else(|| short_id.to_owned()),
        rootfs: Some(RootfsSpec {
            share: ROOTFS_TAG.into(),
            layers: Vec::new(),
            scratch_device: Some(SCRATCH_DEVICE.into()),
        }),
    };
    let end = session::attach(stream, spec, args.interactive)?;
    vm.finish(POWER_OFF_TIMEOUT)?;
    Ok(end.exit_code())
}

/// The process environment: Docker's defaults, then `-e` in order.
fn container_env(flags: &[String], hostname: &str, uid: u32) -> Vec<String> {
    let home = if uid == 0 { "/root" } else { "/" };
    let mut env = vec![
        DEFAULT_PATH.to_owned(),
        format!("HOSTNAME={hostname}"),
        format!("HOME={home}"),
    ];
    for flag in flags {
        let entry = match flag.split_once('=') {
            Some(_) => flag.clone(),
            None => match std::env::var(flag) {
                Ok(value) => format!("{flag}={value}"),
                Err(_) => continue,
            },
        };
        let key = entry.split('=').next().unwrap_or_default();
        env.retain(|existing| existing.split('=').next() != Some(key));
        env.push(entry);
    }
    env
}

fn parse_user(value: &str) -> Result<(u32, u32), String> {
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{value:?} is not UID[:GID] (numeric ids)"))
    };
    match value.split_once(':') {
        Some((uid, gid)) => Ok((number(uid)?, number(gid)?)),
        None => number(value).map(|uid| (uid, uid)),
    }
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
        assert!(parse_memory_mib("32m").unwrap_err().contains("at least 64m"));
        assert!(parse_memory_mib("12x").is_err());
        assert!(parse_memory_mib("m").is_err());
        assert!(parse_memory_mib("99999999999999g").is_err());
    }

    #[test]
    fn users_are_uid_or_uid_gid() {
        assert_eq!(parse_user("1000"), Ok((1000, 1000)));
        assert_eq!(parse_user("1000:100"), Ok((1000, 100)));
        assert!(parse_user("bob").is_err());
        assert!(parse_user("1:x").is_err());
    }

    #[test]
    fn env_flags_override_defaults_in_order() {
        std::env::set_var("HULL_TEST_COPIED", "from-host");
        let env = container_env(
            &[
                "PATH=/x".into(),
                "A=1".into(),
                "A=2".into(),
                "HULL_TEST_COPIED".into(),
                "HULL_TEST_UNSET_VARIABLE".into(),
            ],
            "box",
            1000,
        );
        assert_eq!(
            env,
            ["HOSTNAME=box", "HOME=/", "PATH=/x", "A=2", "HULL_TEST_COPIED=from-host"]
        );
    }
}
