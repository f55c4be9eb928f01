//! `hull update`: containers' resource limits and restart policy changed,
//! in their records and, while they run, inside their VMs.

use anyhow::{bail, Result};
use clap::Args;
use hull_runtime::limits::MemorySwap;
use hull_runtime::units::{parse_memory_mib, parse_size_bytes};
use hull_runtime::{RestartPolicy, Runtime, UpdateOptions};

use super::for_each_name;
use crate::run::{parse_cpu_shares, parse_cpus};

#[derive(Args)]
pub struct UpdateArgs {
    /// When the container is booted again after its process ends: no,
    /// on-failure[:N], always or unless-stopped.
    #[arg(long, value_name = "POLICY")]
    restart: Option<RestartPolicy>,

    /// Guest memory, e.g. 256m or 1g: the cgroup's limit at once (up to
    /// the running VM's memory), the VM's from its next boot.
    #[arg(short = 'm', long = "memory", value_name = "SIZE", value_parser = parse_memory_mib)]
    memory_mib: Option<u64>,

    /// A memory amount the container's processes keep under pressure
    /// (cgroup memory.low; 0: none).
    #[arg(long = "memory-reservation", value_name = "SIZE", value_parser = parse_size_bytes)]
    memory_reservation: Option<u64>,

    /// Memory plus swap (-1: unlimited): checked as Docker does, at least
    /// the memory; the VM has no swap.
    #[arg(
        long = "memory-swap",
        value_name = "SIZE",
        allow_negative_numbers = true,
        value_parser = MemorySwap::parse
    )]
    memory_swap: Option<MemorySwap>,

    /// CPUs: a running VM's CPU time (up to its vCPUs), and the vCPUs,
    /// rounded up, from its next boot.
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    cpus: Option<f64>,

    /// A relative CPU weight (default 1024).
    #[arg(short = 'c', long = "cpu-shares", value_name = "SHARES", value_parser = parse_cpu_shares)]
    cpu_shares: Option<u64>,

    /// The most processes the container may have (-1: no limit).
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pids_limit: Option<i64>,

    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl UpdateArgs {
    /// The changes the flags ask for.
    fn options(&self) -> UpdateOptions {
        UpdateOptions {
            restart: self.restart,
            memory_mib: self.memory_mib,
            memory_reservation_bytes: self.memory_reservation,
            memory_swap: self.memory_swap,
            nano_cpus: self.cpus.map(|cpus| (cpus * 1e9).round() as u64),
            cpu_weight: self.cpu_shares,
            // -1 (or any other number below 1): no limit.
            pids_limit: self.pids_limit.map(|limit| limit.max(0) as u64),
        }
    }
}

/// Updates each container, printing its name as given once it is.
pub fn update(args: UpdateArgs, runtime: &Runtime) -> Result<u8> {
    let options = args.options();
    if options.is_empty() {
        bail!("nothing to update: give --memory, --cpus, --restart or another limit");
    }
    Ok(for_each_name(&args.containers, |name| {
        runtime.update(name, &options)?;
        println!("{name}");
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: UpdateArgs,
    }

    fn parse(words: &[&str]) -> Result<UpdateOptions, clap::Error> {
        let words = ["update"].iter().chain(words);
        Cli::try_parse_from(words).map(|cli| cli.args.options())
    }

    #[test]
    fn flags_become_the_options() {
        let options = parse(&[
            "--restart",
            "on-failure:3",
            "-m",
            "512m",
            "--memory-reservation",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "1.5",
            "-c",
            "512",
            "--pids-limit",
            "-1",
            "web",
        ])
        .unwrap();
        assert_eq!(
            options,
            UpdateOptions {
                restart: Some(RestartPolicy::OnFailure {
                    max_retries: Some(3)
                }),
                memory_mib: Some(512),
                memory_reservation_bytes: Some(64 << 20),
                memory_swap: Some(MemorySwap::Unbounded),
                nano_cpus: Some(1_500_000_000),
                cpu_weight: Some(50),
                pids_limit: Some(0),
            }
        );
        assert!(parse(&["web", "db"]).unwrap().is_empty());
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        for bad in [
            &["--restart", "sometimes", "web"][..],
            &["-m", "32m", "web"],
            &["--cpus", "0", "web"],
            &["--cpu-shares", "1", "web"],
            &["--memory-swap", "lots", "web"],
            &["--pids-limit", "many", "web"],
            &["-m", "1g"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
