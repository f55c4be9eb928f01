//! `hull stop`, `start`, `restart`, `kill`, `rm`, `wait`, `rename` and
//! `container prune`.

use std::time::Duration;

use std::io::IsTerminal;

use anyhow::{bail, Result};
use clap::Args;
use hull_runtime::signals::Signals;
use hull_runtime::{
    parse_container_name, ConsoleTarget, ContainerInfo, RemoveOptions, RestartPolicy, Runtime,
    Status, StopOptions,
};

use super::for_each_name;
use crate::filters::{all_hold, PruneFilter};
use crate::prune_report::PruneReport;
use crate::run::parse_signal;
use crate::terminal::{StdioFlags, Terminal};

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait for the process to exit after its stop signal before
    /// the VM is torn down (default: the container's --stop-timeout, else
    /// 10).
    #[arg(short = 't', long = "timeout", visible_alias = "time")]
    time: Option<u64>,
    /// The signal to send first (default: the container's --stop-signal,
    /// else TERM).
    #[arg(short = 's', long, value_name = "SIGNAL", value_parser = parse_signal)]
    signal: Option<i32>,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl StopArgs {
    fn options(&self) -> StopOptions {
        StopOptions {
            grace: self.time.map(Duration::from_secs),
            signal: self.signal,
        }
    }
}

pub fn stop(args: StopArgs, runtime: &Runtime) -> Result<u8> {
    Ok(for_each_name(&args.containers, |name| {
        runtime.stop(name, args.options())?;
        println!("{name}");
        Ok(())
    }))
}

#[derive(Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short, long)]
    force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short, long)]
    volumes: bool,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(args: RmArgs, runtime: &Runtime) -> Result<u8> {
    Ok(for_each_name(&args.containers, |name| {
        let options = RemoveOptions {
            force: args.force,
            volumes: args.volumes,
        };
        runtime.remove(name, options)?;
        println!("{name}");
        Ok(())
    }))
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
    Ok(for_each_name(&args.containers, |name| {
        println!("{}", runtime.wait(name)?);
        Ok(())
    }))
}

#[derive(Args)]
pub struct StartArgs {
    /// Run it attached to this terminal, as `hull run` does in the
    /// foreground: its output here, its exit code hull's.
    #[arg(short, long)]
    attach: bool,
    /// Attach this stdin too (to a container created with -i).
    #[arg(short, long)]
    interactive: bool,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl StartArgs {
    /// The containers named.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }

    /// What of this terminal an attached start takes.
    pub fn attached_stdio(&self) -> Option<StdioFlags> {
        (self.attach || self.interactive).then_some(StdioFlags {
            interactive: self.interactive,
            tty: true,
        })
    }
}

/// Starts stopped containers again; their writable layer is kept.
pub fn start(args: StartArgs, runtime: &Runtime) -> Result<u8> {
    if args.attached_stdio().is_some() {
        let [name] = args.containers.as_slice() else {
            bail!("you cannot start and attach several containers at once");
        };
        return start_attached(name, args.interactive, runtime);
    }
    Ok(for_each_name(&args.containers, |name| {
        runtime.start(name)?;
        println!("{name}");
        Ok(())
    }))
}

/// `start -a`: the container run held by this process, with this
/// terminal, or joined if it runs already; with `-i` and a terminal, held
/// by a monitor of its own from the start, so that it may detach.
fn start_attached(name: &str, interactive: bool, runtime: &Runtime) -> Result<u8> {
    let container = runtime.inspect(name)?;
    let tty = container.config.boot.tty.is_some();
    let stdin = interactive && container.config.interactive;
    if stdin && tty && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY: drop -i, or start it from a terminal");
    }
    let terminal = Terminal::new(tty, stdin);
    let stdio = terminal.stdio(Some(Signals::catch()?))?;
    let held_by_a_monitor = container.config.restart != RestartPolicy::No;
    let outcome = match container.state.status {
        Status::Running | Status::Restarting => runtime.attach(name, stdio)?,
        // Its monitor boots it again as its policy says: join that.
        _ if held_by_a_monitor => {
            runtime.start(name)?;
            runtime.attach(name, stdio)?
        }
        Status::Created | Status::Exited if stdin && tty => runtime.start_attached(name, stdio)?,
        Status::Created | Status::Exited => {
            runtime.run_attached(name, stdio, ConsoleTarget::Log)?
        }
    };
    drop(terminal);
    Ok(super::left(&outcome, &container.config.name))
}

#[derive(Args)]
pub struct RestartArgs {
    /// Seconds to wait for the process to exit after its stop signal.
    #[arg(short = 't', long = "timeout", visible_alias = "time")]
    time: Option<u64>,
    /// The signal to send first (default: the container's --stop-signal,
    /// else TERM).
    #[arg(short = 's', long, value_name = "SIGNAL", value_parser = parse_signal)]
    signal: Option<i32>,
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
    Ok(for_each_name(&args.containers, |name| {
        let options = StopOptions {
            grace: args.time.map(Duration::from_secs),
            signal: args.signal,
        };
        runtime.restart(name, options)?;
        println!("{name}");
        Ok(())
    }))
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send: a name (TERM, SIGHUP, STOP) or a number.
    #[arg(short, long, default_value = "KILL", value_parser = parse_signal)]
    signal: i32,
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Signals a container's process; KILL tears its VM down.
pub fn kill(args: KillArgs, runtime: &Runtime) -> Result<u8> {
    Ok(for_each_name(&args.containers, |name| {
        runtime.kill(name, args.signal)?;
        println!("{name}");
        Ok(())
    }))
}

#[derive(Args)]
pub struct PauseArgs {
    /// Container names or IDs.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Freezes containers' VMs.
pub fn pause(args: PauseArgs, runtime: &Runtime) -> Result<u8> {
    Ok(for_each_name(&args.containers, |name| {
        runtime.pause(name)?;
        println!("{name}");
        Ok(())
    }))
}

/// Resumes frozen containers' VMs.
pub fn unpause(args: PauseArgs, runtime: &Runtime) -> Result<u8> {
    Ok(for_each_name(&args.containers, |name| {
        runtime.unpause(name)?;
        println!("{name}");
        Ok(())
    }))
}

#[derive(Args)]
pub struct RenameArgs {
    /// Container name or ID.
    container: String,
    #[arg(value_parser = parse_container_name)]
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
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only containers that match: until=TIME (made before; `24h` for a
    /// day ago), label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long, value_name = "KEY=VALUE", value_parser = PruneFilter::parse)]
    pub filter: Vec<PruneFilter>,
}

/// Docker's question before `container prune`.
const PRUNE_WARNING: &str = "WARNING! This will remove all stopped containers.";

/// Removes every stopped container the filters select, after asking
/// unless `-f`.
pub fn prune(args: PruneArgs, runtime: &Runtime) -> Result<u8> {
    if !args.force && !crate::prompt::confirm(PRUNE_WARNING)? {
        return Ok(0);
    }
    print!("{}", prune_containers(runtime, &args.filter)?.with_total());
    Ok(0)
}

/// `hull container prune`'s work, and its part of `hull system prune`:
/// the stopped containers `filters` select, removed.
pub fn prune_containers(runtime: &Runtime, filters: &[PruneFilter]) -> Result<PruneReport> {
    let selected = |container: &ContainerInfo| {
        let config = &container.config;
        all_hold(filters, |filter| {
            filter.holds(&config.created, &config.labels)
        })
    };
    let removed = runtime.prune_containers(&selected)?;
    Ok(PruneReport::new(
        "Deleted Containers:",
        &removed.ids,
        removed.bytes,
    ))
}
