//! `hull stop`, `start`, `restart`, `kill`, `rm`, `wait`, `rename` and
//! `container prune`.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hull_runtime::Runtime;

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait for the process to exit after SIGTERM before the VM
    /// is torn down.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn stop(args: StopArgs, runtime: &Runtime) -> Result<u8> {
    for name in &args.containers {
        runtime.stop(name, Duration::from_secs(args.time))?;
        println!("{name}");
    }
    Ok(0)
}

#[derive(Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short, long)]
    force: bool,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(args: RmArgs, runtime: &Runtime) -> Result<u8> {
    for name in &args.containers {
        runtime.remove(name, args.force)?;
        println!("{name}");
    }
    Ok(0)
}

#[derive(Args)]
pub struct WaitArgs {
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl WaitArgs {
    /// The containers named.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }
}

/// Prints each container's exit code once it has exited.
pub fn wait(args: WaitArgs, runtime: &Runtime) -> Result<u8> {
    for name in &args.containers {
        println!("{}", runtime.wait(name)?);
    }
    Ok(0)
}

#[derive(Args)]
pub struct StartArgs {
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl StartArgs {
    /// The containers named.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }
}

/// Starts stopped containers again; their writable layer is kept.
pub fn start(args: StartArgs, runtime: &Runtime) -> Result<u8> {
    for name in &args.containers {
        runtime.start(name)?;
        println!("{name}");
    }
    Ok(0)
}

#[derive(Args)]
pub struct RestartArgs {
    /// Seconds to wait for the process to exit after SIGTERM.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl RestartArgs {
    /// The containers named.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }
}

pub fn restart(args: RestartArgs, runtime: &Runtime) -> Result<u8> {
    for name in &args.containers {
        runtime.restart(name, Duration::from_secs(args.time))?;
        println!("{name}");
    }
    Ok(0)
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send: a name (TERM, SIGHUP) or a number.
    #[arg(short, long, default_value = "KILL", value_parser = parse_signal)]
    signal: i32,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Signals a container's process; KILL tears its VM down.
pub fn kill(args: KillArgs, runtime: &Runtime) -> Result<u8> {
    for name in &args.containers {
        runtime.kill(name, args.signal)?;
        println!("{name}");
    }
    Ok(0)
}

/// The signals `hull kill` can deliver: those a container's monitor
/// forwards, and KILL.
fn parse_signal(value: &str) -> Result<i32, String> {
    const SIGNALS: [(&str, i32); 7] = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("TERM", libc::SIGTERM),
    ];
    let name = value.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    SIGNALS
        .iter()
        .find(|(known, number)| *known == name || number.to_string() == name)
        .map(|(_, number)| *number)
        .ok_or_else(|| format!("{value}: hull kill sends HUP, INT, QUIT, KILL, USR1, USR2 or TERM"))
}

#[derive(Args)]
pub struct RenameArgs {
    /// Container name or ID.
    container: String,
    new_name: String,
}

pub fn rename(args: RenameArgs, runtime: &Runtime) -> Result<u8> {
    if let Some(warning) = runtime.rename(&args.container, &args.new_name)? {
        eprintln!("hull: warning: {warning}");
    }
    Ok(0)
}

#[derive(Args)]
pub struct PruneArgs {
    /// Accepted for Docker compatibility; hull never asks.
    #[arg(short, long)]
    pub force: bool,
}

/// Removes every exited container.
pub fn prune(_args: PruneArgs, runtime: &Runtime) -> Result<u8> {
    let removed = runtime.prune_containers()?;
    println!("Deleted Containers:");
    for id in removed {
        println!("{id}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_like_docker() {
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("sigusr1"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Ok(libc::SIGKILL));
        assert!(parse_signal("WINCH").is_err());
        assert!(parse_signal("99").is_err());
    }
}
