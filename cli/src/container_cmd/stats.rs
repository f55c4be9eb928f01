//! `hull stats`: CPU, memory, network and disk traffic and process counts
//! of running containers, from their agent in the guest.

use std::io::Write;
use std::thread;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hull_runtime::{ContainerInfo, Runtime, StatsSample, Status};
use serde_json::{json, Value};

use hull_format::{render_rows, Format, Listing};

use crate::image_cmd::human_size;

/// Time between the two samples a CPU percentage is computed from, and
/// between refreshes.
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Args)]
pub struct StatsArgs {
    /// Print one sample and exit, instead of refreshing every second.
    #[arg(long)]
    no_stream: bool,
    /// `table` (default), `json` (one object per line), or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
    /// Show full container IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Containers (default: every running one).
    containers: Vec<String>,
}

/// `docker stats`'s default table.
const LISTING: Listing = Listing {
    default_format: "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t\
                     {{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
        ("OOMKills", "OOM KILLS"),
    ],
};

pub fn stats(args: StatsArgs, runtime: &Runtime) -> Result<u8> {
    let containers: Vec<ContainerInfo> = match args.containers.is_empty() {
        true => runtime
            .list()?
            .into_iter()
            .filter(|c| c.state.status == Status::Running)
            .collect(),
        false => args
            .containers
            .iter()
            .map(|name| runtime.inspect(name))
            .collect::<Result<_, _>>()?,
    };
    let id = |container: &ContainerInfo| match args.no_trunc {
        true => container.id().to_owned(),
        false => container.short_id().to_owned(),
    };
    // Docker's `Container` column: each as named, else its short ID.
    let given: Vec<String> = match args.containers.is_empty() {
        true => containers.iter().map(|c| c.short_id().to_owned()).collect(),
        false => args.containers.clone(),
    };
    let sample_all = || -> Result<Vec<StatsSample>> {
        Ok(containers
            .iter()
            .map(|container| runtime.stats(container.id()))
            .collect::<Result<_, _>>()?)
    };
    let mut previous = sample_all()?;
    loop {
        thread::sleep(INTERVAL);
        let current = sample_all()?;
        let rows: Vec<Value> = containers
            .iter()
            .zip(&given)
            .zip(previous.iter().zip(&current))
            .map(|((container, given), (before, after))| {
                row(container, &id(container), given, before, after)
            })
            .collect();
        let mut out = Vec::new();
        render_rows(&args.format, &LISTING, &rows, &mut out)?;
        if !args.no_stream && args.format == Format::Default {
            // Clear the screen and go home, as docker stats does.
            print!("\x1b[2J\x1b[H");
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&out)?;
        stdout.flush()?;
        if args.no_stream {
            return Ok(0);
        }
        previous = current;
    }
}

/// A container's use between two samples, as `docker stats` shows it
/// (`id`: its ID as shown; `given`: as the command line named it).
fn row(
    container: &ContainerInfo,
    id: &str,
    given: &str,
    before: &StatsSample,
    after: &StatsSample,
) -> Value {
    let stats = &after.stats;
    let memory_percent = stats.memory_bytes as f64 * 100.0 / stats.memory_limit_bytes.max(1) as f64;
    json!({
        "ID": id,
        "Container": given,
        "Name": container.name(),
        "CPUPerc": format!("{:.2}%", after.cpu_percent_since(before)),
        "MemUsage": format!(
            "{} / {}",
            binary_size(stats.memory_bytes),
            binary_size(stats.memory_limit_bytes)
        ),
        "MemPerc": format!("{memory_percent:.2}%"),
        "NetIO": in_and_out(stats.net_rx_bytes, stats.net_tx_bytes),
        "BlockIO": in_and_out(stats.block_read_bytes, stats.block_write_bytes),
        "PIDs": stats.pids.to_string(),
        "OOMKills": stats.oom_kills,
    })
}

/// Two byte counts as docker stats shows traffic: `1.45kB / 648B`.
fn in_and_out(received: u64, sent: u64) -> String {
    format!("{} / {}", human_size(received, 3), human_size(sent, 3))
}

/// Binary units, as docker stats shows memory: `1.5MiB`.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_like_docker_stats() {
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(3 << 20), "3.00MiB");
        assert_eq!(binary_size(1536 << 10), "1.50MiB");
        assert_eq!(binary_size(512 << 20), "512.00MiB");
    }

    #[test]
    fn traffic_reads_like_docker_stats() {
        assert_eq!(in_and_out(1450, 648), "1.45kB / 648B");
        assert_eq!(in_and_out(0, 12_345_678), "0B / 12.3MB");
    }
}
