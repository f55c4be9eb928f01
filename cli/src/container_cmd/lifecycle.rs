//! `hull stop`, `start`, `restart`, `kill`, `rm`, `wait`, `rename` and
//! `container prune`.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;

use crate::container::{self, Container, State, Status, KILLED_EXIT_CODE};
use crate::detach;
use crate::network;
use crate::state::StateRoot;

const POLL_INTERVAL: Duration = Duration::from_millis(100);

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

pub fn stop(args: StopArgs, root: &StateRoot) -> Result<u8> {
    for name in &args.containers {
        let container = container::find(root, name)?;
        stop_container(&container, Duration::from_secs(args.time))?;
        println!("{name}");
    }
    Ok(0)
}

/// SIGTERM to the process (through its monitor), then, after `grace`, the
/// VM torn down. Its restart policy no longer applies.
fn stop_container(container: &Container, grace: Duration) -> Result<()> {
    let Some(pid) = mark_manually_stopped(container)? else {
        return Ok(());
    };
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if container.state()?.status == Status::Exited {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    kill_monitor(container, pid)?;
    container.update_state(|state| {
        if state.status != Status::Exited || state.exit_code == Some(KILLED_EXIT_CODE) {
            state.exited(
                KILLED_EXIT_CODE,
                Some(format!("killed after {}s by hull stop", grace.as_secs())),
            )
        } else {
            state.clone()
        }
    })?;
    Ok(())
}

/// Records that the user stops the container, so that its monitor does not
/// restart it; returns the monitor's pid, `None` if it has none.
fn mark_manually_stopped(container: &Container) -> Result<Option<u32>> {
    let state = container.update_state(|state| State {
        manually_stopped: state.monitor_pid().is_some(),
        ..state.clone()
    })?;
    Ok(state.monitor_pid())
}

/// Kills the monitor (its VMM dies with it) and waits until it is gone.
fn kill_monitor(container: &Container, pid: u32) -> Result<()> {
    if container.is_monitor(pid) {
        signal(pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while container.is_monitor(pid) {
        if Instant::now() >= deadline {
            bail!("the VM of container {} does not die", container.short_id());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(())
}

fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes no pointers; a pid that is gone only fails.
        unsafe { libc::kill(pid, signal) };
    }
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

pub fn rm(args: RmArgs, root: &StateRoot) -> Result<u8> {
    for name in &args.containers {
        let container = container::find(root, name)?;
        if let Some(pid) = container.state()?.monitor_pid() {
            if !args.force {
                bail!(
                    "container {} is running: stop it first, or use rm -f",
                    container.short_id()
                );
            }
            kill_monitor(&container, pid)?;
        }
        container.remove(root)?;
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

/// Prints each container's exit code once it has exited.
pub fn wait(args: WaitArgs, root: &StateRoot) -> Result<u8> {
    for name in &args.containers {
        let container = container::find(root, name)?;
        loop {
            let state = container.state()?;
            if state.status == Status::Exited {
                println!("{}", state.exit_code.unwrap_or(-1));
                break;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct StartArgs {
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Starts stopped containers again; their writable layer is kept.
pub fn start(args: StartArgs, root: &StateRoot) -> Result<u8> {
    for name in &args.containers {
        let container = container::find(root, name)?;
        if container.state()?.monitor_pid().is_none() {
            detach::start(root, &container)?;
        }
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

pub fn restart(args: RestartArgs, root: &StateRoot) -> Result<u8> {
    for name in &args.containers {
        let container = container::find(root, name)?;
        stop_container(&container, Duration::from_secs(args.time))?;
        detach::start(root, &container)?;
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
pub fn kill(args: KillArgs, root: &StateRoot) -> Result<u8> {
    for name in &args.containers {
        let container = container::find(root, name)?;
        let Some(pid) = mark_manually_stopped(&container)? else {
            bail!("container {} is not running", container.short_id());
        };
        if args.signal == libc::SIGKILL {
            kill_monitor(&container, pid)?;
            container.update_state(|state| {
                state.exited(KILLED_EXIT_CODE, Some("killed by hull kill".into()))
            })?;
        } else {
            // The monitor forwards it to the process.
            signal(pid, args.signal);
        }
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

pub fn rename(args: RenameArgs, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, &args.container)?;
    let (id, network) = (
        container.id().to_owned(),
        container.config.boot.network.clone(),
    );
    container.rename(root, &args.new_name)?;
    // The container is renamed either way: say so with a warning, not an
    // error, if its network's name server keeps the old name.
    if let Err(err) = network::rename(root, &id, &network, &args.new_name) {
        eprintln!("hull: warning: the network's name server still answers the old name: {err:#}");
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
pub fn prune(_args: PruneArgs, root: &StateRoot) -> Result<u8> {
    println!("Deleted Containers:");
    for container in container::list(root)? {
        if container.state()?.status == Status::Exited {
            let id = container.id().to_owned();
            container.remove(root)?;
            println!("{id}");
        }
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
