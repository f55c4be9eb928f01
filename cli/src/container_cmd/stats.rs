//! `hull stats`: CPU, memory and process counts of running containers,
//! from the cgroup their agent keeps in the guest.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use hull_protocol::{Answer, ContainerStats, Query};
use serde_json::json;

use super::agent;
use crate::container::{self, Container};
use crate::state::StateRoot;
use crate::{session, table};

/// Time between the two samples a CPU percentage is computed from, and
/// between refreshes.
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Args)]
pub struct StatsArgs {
    /// Print one sample and exit, instead of refreshing every second.
    #[arg(long)]
    no_stream: bool,
    /// Output format: table or json (one object per line).
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Containers (default: every running one).
    containers: Vec<String>,
}

pub fn stats(args: StatsArgs, root: &StateRoot) -> Result<u8> {
    let containers = match args.containers.is_empty() {
        true => running(root)?,
        false => args
            .containers
            .iter()
            .map(|name| container::find(root, name))
            .collect::<Result<_>>()?,
    };
    let mut previous = sample_all(root, &containers)?;
    loop {
        thread::sleep(INTERVAL);
        let current = sample_all(root, &containers)?;
        let rows: Vec<Row> = containers
            .iter()
            .zip(previous.iter().zip(&current))
            .map(|(container, (before, after))| Row::new(container, before, after))
            .collect();
        if !args.no_stream && args.format == "table" {
            // Clear the screen and go home, as docker stats does.
            print!("\x1b[2J\x1b[H");
        }
        print(&rows, &args.format);
        if args.no_stream {
            return Ok(0);
        }
        previous = current;
    }
}

fn running(root: &StateRoot) -> Result<Vec<Container>> {
    let mut running = Vec::new();
    for container in container::list(root)? {
        if container.state()?.status == container::Status::Running {
            running.push(container);
        }
    }
    Ok(running)
}

/// One reading of a container's cgroup, and when it was taken.
struct Sample {
    stats: ContainerStats,
    at: Instant,
}

fn sample_all(root: &StateRoot, containers: &[Container]) -> Result<Vec<Sample>> {
    containers
        .iter()
        .map(|container| {
            let stream = agent::connect(root, container)?;
            let Answer::Stats(stats) = session::query(stream, Query::Stats)? else {
                bail!("the guest agent answered another question");
            };
            Ok(Sample {
                stats,
                at: Instant::now(),
            })
        })
        .collect()
}

struct Row {
    id: String,
    name: String,
    /// 100 is one CPU kept busy.
    cpu_percent: f64,
    stats: ContainerStats,
}

impl Row {
    fn new(container: &Container, before: &Sample, after: &Sample) -> Row {
        let used = after
            .stats
            .cpu_usage_usec
            .saturating_sub(before.stats.cpu_usage_usec);
        let elapsed = after.at.duration_since(before.at).as_micros().max(1);
        Row {
            id: container.short_id().to_owned(),
            name: container.config.name.clone(),
            cpu_percent: used as f64 * 100.0 / elapsed as f64,
            stats: after.stats,
        }
    }

    fn memory_percent(&self) -> f64 {
        self.stats.memory_bytes as f64 * 100.0 / self.stats.memory_limit_bytes.max(1) as f64
    }
}

fn print(rows: &[Row], format: &str) {
    if format == "json" {
        for row in rows {
            let line = json!({
                "ID": row.id,
                "Name": row.name,
                "CPUPerc": format!("{:.2}%", row.cpu_percent),
                "MemUsage": format!(
                    "{} / {}",
                    binary_size(row.stats.memory_bytes),
                    binary_size(row.stats.memory_limit_bytes)
                ),
                "MemPerc": format!("{:.2}%", row.memory_percent()),
                "PIDs": row.stats.pids.to_string(),
                "OOMKills": row.stats.oom_kills,
            });
            println!("{line}");
        }
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.id.clone(),
                row.name.clone(),
                format!("{:.2}%", row.cpu_percent),
                format!(
                    "{} / {}",
                    binary_size(row.stats.memory_bytes),
                    binary_size(row.stats.memory_limit_bytes)
                ),
                format!("{:.2}%", row.memory_percent()),
                row.stats.pids.to_string(),
            ]
        })
        .collect();
    table::print(
        &[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "PIDS",
        ],
        &cells,
    );
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
}
