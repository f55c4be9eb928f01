//! `hull stats`: CPU, memory, network and disk traffic and process counts
//! of containers (running ones, unless named or --all), from their agent
//! in the guest.

use std::collections::HashMap;
use std::io::Write;
use std::thread;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hull_runtime::{ContainerInfo, ContainerStats, Runtime, StatsSample, Status};
use serde_json::{json, Value};

use hull_format::{render_rows, Format, Listing};

use crate::image_cmd::{human_size, significant};

/// Time between the two samples a CPU percentage is computed from, and
/// between refreshes.
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Args)]
pub struct StatsArgs {
    /// Show every container, stopped ones too (default: the running ones).
    #[arg(short, long)]
    all: bool,
    /// Print one sample and exit, instead of refreshing every second.
    #[arg(long)]
    no_stream: bool,
    /// `table` (default), `json` (one object per line), or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
    /// Show full container IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Containers (default: every running one, or every one with --all).
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

/// A container shown, and how the command line named it (Docker's
/// `Container` column: as named, else its short ID).
struct Shown {
    container: ContainerInfo,
    given: String,
}

/// What one refresh read of a container.
enum Reading {
    Sampled(StatsSample),
    /// Not running: Docker shows zeros.
    Stopped,
    /// Running, but its agent did not answer (it may be stopping, or
    /// its VM is paused): `--`, as Docker shows what it cannot read.
    Unreadable,
}

pub fn stats(args: StatsArgs, runtime: &Runtime) -> Result<u8> {
    // Named containers must exist when the command starts; after that a
    // refresh shows what it can read, as docker stats does.
    let named: Vec<Shown> = args
        .containers
        .iter()
        .map(|name| {
            Ok(Shown {
                container: runtime.inspect(name)?,
                given: name.clone(),
            })
        })
        .collect::<Result<_>>()?;
    // Unnamed, the list is read again at every refresh: containers that
    // start appear, those that stop leave (unless --all).
    let shown = || -> Result<Vec<Shown>> {
        if !named.is_empty() {
            return Ok(named
                .iter()
                .map(|shown| Shown {
                    container: runtime
                        .inspect(shown.container.id())
                        .unwrap_or_else(|_| shown.container.clone()),
                    given: shown.given.clone(),
                })
                .collect());
        }
        Ok(runtime
            .list()?
            .into_iter()
            .filter(|c| args.all || matches!(c.state.status, Status::Running | Status::Restarting))
            .map(|container| Shown {
                given: container.short_id().to_owned(),
                container,
            })
            .collect())
    };
    let mut previous: HashMap<String, StatsSample> = HashMap::new();
    for (shown, reading) in read_all(runtime, shown()?) {
        if let Reading::Sampled(sample) = reading {
            previous.insert(shown.container.id().to_owned(), sample);
        }
    }
    loop {
        thread::sleep(INTERVAL);
        let mut current = HashMap::new();
        let mut rows = Vec::new();
        for (Shown { container, given }, reading) in read_all(runtime, shown()?) {
            let id = match args.no_trunc {
                true => container.id().to_owned(),
                false => container.short_id().to_owned(),
            };
            let usage = match reading {
                Reading::Sampled(sample) => {
                    let cpu_percent = previous
                        .get(container.id())
                        .map_or(0.0, |before| sample.cpu_percent_since(before));
                    let usage = Usage::of(&sample.stats, cpu_percent);
                    current.insert(container.id().to_owned(), sample);
                    usage
                }
                // A container that is not running uses nothing.
                Reading::Stopped => Usage::of(&ContainerStats::default(), 0.0),
                Reading::Unreadable => Usage::unreadable(),
            };
            rows.push(usage.row(&id, &given, container.name()));
        }
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

/// Reads each of `shown` at once (one agent slow to answer holds up no
/// other): a running container's agent is asked, unless its VM is paused.
fn read_all(runtime: &Runtime, shown: Vec<Shown>) -> Vec<(Shown, Reading)> {
    thread::scope(|scope| {
        // Each a reading known now, or a thread asking the agent for one.
        let pending: Vec<_> = shown
            .into_iter()
            .map(|shown| {
                let state = &shown.container.state;
                let pending = match (state.status, state.paused) {
                    (_, true) => Err(Reading::Unreadable),
                    (Status::Running, false) => {
                        let id = shown.container.id().to_owned();
                        Ok(scope.spawn(move || runtime.stats(&id)))
                    }
                    _ => Err(Reading::Stopped),
                };
                (shown, pending)
            })
            .collect();
        pending
            .into_iter()
            .map(|(shown, pending)| {
                let reading = match pending.map(|reader| reader.join()) {
                    Ok(Ok(Ok(sample))) => Reading::Sampled(sample),
                    Ok(_) => Reading::Unreadable,
                    Err(known) => known,
                };
                (shown, reading)
            })
            .collect()
    })
}

/// A container's use between two samples as `docker stats` prints it.
struct Usage {
    cpu_percent: String,
    memory: String,
    memory_percent: String,
    net_io: String,
    block_io: String,
    pids: String,
    oom_kills: u64,
}

impl Usage {
    fn of(stats: &ContainerStats, cpu_percent: f64) -> Self {
        let memory_percent =
            stats.memory_bytes as f64 * 100.0 / stats.memory_limit_bytes.max(1) as f64;
        Usage {
            cpu_percent: format!("{cpu_percent:.2}%"),
            memory: format!(
                "{} / {}",
                binary_size(stats.memory_bytes),
                binary_size(stats.memory_limit_bytes)
            ),
            memory_percent: format!("{memory_percent:.2}%"),
            net_io: in_and_out(stats.net_rx_bytes, stats.net_tx_bytes),
            block_io: in_and_out(stats.block_read_bytes, stats.block_write_bytes),
            pids: stats.pids.to_string(),
            oom_kills: stats.oom_kills,
        }
    }

    /// A running container whose use could not be read.
    fn unreadable() -> Self {
        Usage {
            cpu_percent: "--".into(),
            memory: "-- / --".into(),
            memory_percent: "--".into(),
            net_io: "--".into(),
            block_io: "--".into(),
            pids: "--".into(),
            oom_kills: 0,
        }
    }

    fn row(self, id: &str, given: &str, name: &str) -> Value {
        json!({
            "ID": id,
            "Container": given,
            "Name": name,
            "CPUPerc": self.cpu_percent,
            "MemUsage": self.memory,
            "MemPerc": self.memory_percent,
            "NetIO": self.net_io,
            "BlockIO": self.block_io,
            "PIDs": self.pids,
            "OOMKills": self.oom_kills,
        })
    }
}

/// Two byte counts as docker stats shows traffic: `1.45kB / 648B`.
fn in_and_out(received: u64, sent: u64) -> String {
    format!("{} / {}", human_size(received, 3), human_size(sent, 3))
}

/// Binary units with four significant digits, as docker stats shows
/// memory (go-units' `BytesSize`): `2.121MiB`, `512MiB`.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{}{}", significant(value, 4), UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_not_running_reads_as_zeros_as_in_docker_stats() {
        let zero = Usage::of(&ContainerStats::default(), 0.0).row("i", "c", "n");
        let field = |key: &str| zero[key].as_str().unwrap().to_owned();
        assert_eq!(
            ["CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"].map(field),
            ["0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]
        );
    }

    #[test]
    fn memory_reads_like_docker_stats() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(3 << 20), "3MiB");
        assert_eq!(binary_size(1536 << 10), "1.5MiB");
        assert_eq!(binary_size(512 << 20), "512MiB");
        assert_eq!(binary_size(2_224_029), "2.121MiB");
    }

    #[test]
    fn traffic_reads_like_docker_stats() {
        assert_eq!(in_and_out(1450, 648), "1.45kB / 648B");
        assert_eq!(in_and_out(0, 12_345_678), "0B / 12.3MB");
    }
}
