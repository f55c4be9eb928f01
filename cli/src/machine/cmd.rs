//! `hull machine start|stop|status|rm|set`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use hull_machine::{Backend, Changes, Machine, MachineState, Settings};
use hull_runtime::host::Kvm;
use hull_runtime::units;

use super::client;

#[derive(Subcommand)]
pub enum MachineCommand {
    /// Start the hull machine (commands that need it start it themselves).
    Start,
    /// Stop the hull machine; its running containers are stopped first.
    Stop,
    /// Show whether the hull machine runs, its size and its published ports.
    Status,
    /// Stop the hull machine and forget its settings and logs (containers,
    /// images and networks stay in the hull root).
    Rm,
    /// Change the machine's size, idle timeout or the host directories it
    /// may write, for its next start.
    Set(SetArgs),
    /// Run a command in the hull machine itself, as root (for a look at
    /// what it sees; containers run in VMs inside it).
    Exec(ExecArgs),
}

#[derive(Args)]
pub struct ExecArgs {
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true)]
    command: Vec<String>,
}

#[derive(Args)]
pub struct SetArgs {
    /// Virtual CPUs.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    cpus: Option<u32>,
    /// Memory, e.g. 4g or 2048m.
    #[arg(long, value_parser = units::parse_memory_mib)]
    memory: Option<u64>,
    /// Stop the machine after this long with nothing running (e.g. 300s,
    /// 10m, 1h; 0: never).
    #[arg(long, value_parser = parse_duration_secs)]
    idle_timeout: Option<u64>,
    /// Let the machine write this host directory (and what is inside it),
    /// as Docker Desktop's file sharing: a read-write bind of a path
    /// outside every shared directory is refused. Repeatable.
    #[arg(long, value_name = "DIR")]
    share: Vec<PathBuf>,
    /// No longer let the machine write this host directory. Repeatable.
    #[arg(long, value_name = "DIR")]
    unshare: Vec<PathBuf>,
}

pub fn machine(command: MachineCommand, root: &Path) -> Result<u8> {
    let machine = Machine::new(root);
    match command {
        MachineCommand::Start => {
            if machine.is_up()? {
                println!("the hull machine is already running");
            } else {
                machine.ensure_up(None, None)?;
                println!("hull machine started");
            }
        }
        MachineCommand::Stop => {
            if machine.stop()? {
                println!("hull machine stopped");
            } else {
                println!("the hull machine is not running");
            }
        }
        MachineCommand::Status => print_status(root)?,
        MachineCommand::Rm => {
            machine.remove()?;
            println!("hull machine removed");
        }
        MachineCommand::Set(args) => {
            let settings = machine.set(Changes {
                cpus: args.cpus,
                memory_mib: args.memory,
                idle_timeout_secs: args.idle_timeout,
                share: args.share,
                unshare: args.unshare,
            })?;
            println!("{}", describe(&settings));
        }
        MachineCommand::Exec(args) => {
            return client::exec(root, args.command);
        }
    }
    Ok(0)
}

/// The machine's state and settings, and its ports while it runs.
pub fn print_status(root: &Path) -> Result<()> {
    let status = match Machine::new(root).state()? {
        MachineState::Stopped(settings) => {
            println!("hull machine: stopped");
            println!("{}", describe(&settings));
            return Ok(());
        }
        MachineState::Changing => {
            println!("hull machine: starting or stopping");
            return Ok(());
        }
        MachineState::Running(status) => status,
    };
    println!("hull machine: running for {} s", status.uptime_secs);
    println!(
        "{}",
        describe_size(status.cpus, status.memory_mib, status.idle_timeout_secs)
    );
    match &status.shares {
        Some(shares) => println!(
            "writes on the host: {} (the rest read-only)",
            hull_machine::list(shares.paths())
        ),
        None => println!(
            "writes on the host: everything (started by an older hull: \
             `hull machine stop` to apply the shared directories)"
        ),
    }
    println!(
        "supervisor pid {}, QEMU pid {}, commands using it now: {}",
        status.supervisor_pid, status.qemu_pid, status.sessions
    );
    if status.forwards.is_empty() {
        println!("published ports: none");
    } else {
        println!("published ports: {}", status.forwards.join(", "));
    }
    Ok(())
}

/// The settings, as `hull machine set` and a stopped machine's status show
/// them: the hull root is shared besides the directories listed.
fn describe(settings: &Settings) -> String {
    format!(
        "{}\nshared writable: {} (and the hull root)",
        describe_size(
            settings.cpus,
            settings.memory_mib,
            settings.idle_timeout_secs
        ),
        hull_machine::list(&settings.shares)
    )
}

fn describe_size(cpus: u32, memory_mib: u64, idle_timeout_secs: u64) -> String {
    let idle = match idle_timeout_secs {
        0 => "never".to_owned(),
        secs => format!("{secs} s"),
    };
    format!("cpus {cpus}, memory {memory_mib} MiB, idle timeout {idle}")
}

/// One line for `hull version` and `hull info`: where VMs run, and why.
pub fn describe_path(root: &Path) -> String {
    let kvm = Kvm::detect();
    match Backend::select(&kvm) {
        Ok(Backend::Direct) => "direct: VMs run on this host's /dev/kvm".to_owned(),
        Ok(Backend::Machine) => {
            let state = match Machine::new(root).is_up() {
                Ok(true) => "running",
                Ok(false) => "stopped",
                Err(_) => "state unknown",
            };
            format!("hull machine ({state}): {}", Backend::Machine.reason(&kvm))
        }
        Err(err) => err,
    }
}

/// Whether containers' monitors run on this host (their pids mean
/// something here), not in the hull machine.
pub fn monitors_run_here() -> bool {
    matches!(Backend::select(&Kvm::detect()), Ok(Backend::Direct))
}

/// Parses `300`, `300s`, `10m` or `1h` into seconds.
fn parse_duration_secs(value: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 4] = [("", 1), ("s", 1), ("m", 60), ("h", 3600)];
    units::parse_scaled(value, &UNITS)
        .ok_or_else(|| format!("{value:?} is not a duration like 300s, 10m or 1h (0: never)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeouts_parse_in_seconds_minutes_and_hours() {
        assert_eq!(parse_duration_secs("0"), Ok(0));
        assert_eq!(parse_duration_secs("300"), Ok(300));
        assert_eq!(parse_duration_secs("45s"), Ok(45));
        assert_eq!(parse_duration_secs("10m"), Ok(600));
        assert_eq!(parse_duration_secs("1h"), Ok(3600));
        for bad in ["", "m", "10d", "-5", "1.5h"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }
}
