//! `hull version` and `hull info`.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use hull_image::Store;
use hull_runtime::assets;
use hull_runtime::host::Kvm;
use hull_runtime::{ContainerInfo, Runtime, Status};
use serde_json::{json, Value};

use crate::machine;
use hull_format::render_one;

#[derive(Args)]
pub struct VersionArgs {
    /// A Go template over the version, e.g. `{{.Client.Version}}`, or
    /// `json`.
    #[arg(short, long)]
    format: Option<String>,
}

pub fn version(args: VersionArgs, root: &Path) -> Result<u8> {
    let facts = facts(root);
    match args.format.as_deref() {
        Some(format) => print_formatted(format, &facts)?,
        None => print(&facts),
    }
    Ok(0)
}

/// `hull info`: what `hull version` says, plus the root, what it holds, the
/// host and the machine; with Docker's fields for templates
/// (`{{.ServerVersion}}`, `{{.ContainersRunning}}`, `{{.NCPU}}`, ...).
pub fn info(args: VersionArgs, runtime: &Runtime) -> Result<u8> {
    let root = runtime.root();
    let mut facts = facts(root);
    // Monitors in the hull machine are not this host's processes: their
    // records say what they do.
    let containers = match machine::monitors_run_here() {
        true => runtime.list(),
        false => runtime.list_as_recorded(),
    };
    // What cannot be read is said, not a failure: `info` is what a user
    // runs to see what is wrong.
    let counts = match containers {
        Ok(containers) => ContainerCounts::of(&containers),
        Err(err) => {
            tracing::warn!("cannot list containers: {err}");
            ContainerCounts::default()
        }
    };
    let images = match Store::open(root).and_then(|store| store.images()) {
        Ok(images) => images.len(),
        Err(err) => {
            tracing::warn!("cannot list images: {err:#}");
            0
        }
    };
    let host = host_facts();
    merge(&mut facts, host);
    merge(
        &mut facts,
        json!({
            "Root": root,
            "DockerRootDir": root,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Containers": counts.total(),
            "ContainersRunning": counts.running,
            "ContainersPaused": counts.paused,
            "ContainersStopped": counts.stopped,
            "Images": images,
            "Driver": "overlay (in each container's VM, over virtio-fs)",
            "LoggingDriver": "json-file",
            "DefaultRuntime": "hull",
            "Isolation": "kvm",
            "IndexServerAddress": "https://index.docker.io/v1/",
            "Debug": false,
        }),
    );
    if let Some(format) = args.format.as_deref() {
        print_formatted(format, &facts)?;
        return Ok(0);
    }
    print(&facts);
    println!("root:    {}", root.display());
    println!(
        "containers: {} ({} running, {} paused, {} stopped); images: {images}",
        counts.total(),
        counts.running,
        counts.paused,
        counts.stopped
    );
    machine::print_status(root)?;
    Ok(0)
}

/// Containers by what they do, as Docker counts them.
#[derive(Debug, Default, PartialEq, Eq)]
struct ContainerCounts {
    running: usize,
    paused: usize,
    stopped: usize,
}

impl ContainerCounts {
    fn of(containers: &[ContainerInfo]) -> ContainerCounts {
        let mut counts = ContainerCounts::default();
        for container in containers {
            match (container.state.status, container.state.paused) {
                (Status::Running | Status::Restarting, true) => counts.paused += 1,
                (Status::Running | Status::Restarting, false) => counts.running += 1,
                (Status::Created | Status::Exited, _) => counts.stopped += 1,
            }
        }
        counts
    }

    fn total(&self) -> usize {
        self.running + self.paused + self.stopped
    }
}

/// Docker's facts about the host: its system, kernel, CPUs, memory, name.
fn host_facts() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    json!({
        "OperatingSystem": os_name(&read("/etc/os-release")),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "KernelVersion": read("/proc/sys/kernel/osrelease").trim(),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": memory_total_bytes(&read("/proc/meminfo")),
        "Name": nix::unistd::gethostname()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// os-release's `PRETTY_NAME`, unquoted, or `Linux` without one.
fn os_name(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "Linux".into())
}

/// `MemTotal` of /proc/meminfo in bytes (0 if unreadable).
fn memory_total_bytes(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Adds `more`'s fields to the object `facts`.
fn merge(facts: &mut Value, more: Value) {
    if let (Some(facts), Value::Object(more)) = (facts.as_object_mut(), more) {
        facts.extend(more);
    }
}

/// What hull is and runs VMs with here.
fn facts(root: &Path) -> Value {
    let kernel = match assets::guest_kernel(None) {
        Ok(kernel) => {
            let release = kernel
                .parent()
                .and_then(|dir| std::fs::read_to_string(dir.join("release")).ok())
                .map(|r| r.trim().to_owned())
                .unwrap_or_else(|| "release unknown".into());
            json!({ "Path": kernel, "Release": release })
        }
        Err(err) => json!({ "Error": format!("{err:#}") }),
    };
    // Daemonless, hull is its own server: `{{.Server.Version}}` answers
    // as scripts that check for Docker expect. Containers run on the guest
    // kernel, so that is the server's.
    let server = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Os": "linux",
        "Arch": platform_arch(),
        "KernelVersion": kernel["Release"],
    });
    json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": "linux",
            "Arch": platform_arch(),
        },
        "Server": server,
        "Kernel": kernel,
        "KVM": Kvm::detect().describe(),
        "VMs": machine::describe_path(root),
    })
}

/// This machine's architecture as OCI platforms name it.
fn platform_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn print(facts: &Value) {
    println!(
        "hull {}",
        facts["Client"]["Version"].as_str().unwrap_or_default()
    );
    let kernel = &facts["Kernel"];
    match (kernel["Path"].as_str(), kernel["Error"].as_str()) {
        (Some(path), _) => println!(
            "kernel:  {path} ({})",
            kernel["Release"].as_str().unwrap_or_default()
        ),
        (None, error) => println!("kernel:  missing ({})", error.unwrap_or_default()),
    }
    println!("kvm:     {}", facts["KVM"].as_str().unwrap_or_default());
    println!("vms:     {}", facts["VMs"].as_str().unwrap_or_default());
}

fn print_formatted(format: &str, facts: &Value) -> Result<()> {
    match format.trim() {
        "json" => println!("{facts}"),
        template => println!("{}", render_one(template, facts, &[])?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts_read_as_docker_reports_them() {
        let os_release =
            "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(os_name(os_release), "Debian GNU/Linux 13 (trixie)");
        assert_eq!(os_name("PRETTY_NAME=\n"), "Linux");
        assert_eq!(os_name(""), "Linux");
        let meminfo = "MemTotal:        4022148 kB\nMemFree:          123 kB\n";
        assert_eq!(memory_total_bytes(meminfo), 4022148 * 1024);
        assert_eq!(memory_total_bytes("junk"), 0);
    }
}
