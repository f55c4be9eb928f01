//! `compose down`, `pull`, `push`, `build`, `start`, `stop`, `restart`,
//! `rm`, `kill`, `exec`, `attach`, `cp` and `wait`.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use hull_compose::{service_of, Compose, DownOptions, ImageRemoval};
use hull_runtime::signals::Signals;
use hull_runtime::{parse_user, ExecOptions, Runtime};

use super::images::{
    build_services, push_services, resolve, BuildFlags, BuildPolicy, ImageRequest,
};
use super::{print_event, service_stdio, DockerTerminalFlags};
use crate::build_cmd::parse_build_args;
use crate::container_cmd;
use crate::machine::ForwardedStdio;
use crate::prompt;
use crate::run::{parse_signal, PullPolicy};
use crate::terminal::{self, Terminal};

/// Services to act on.
#[derive(Args)]
pub struct ServicesArgs {
    /// The services (default: all).
    pub services: Vec<String>,
}

/// `compose down`'s flags.
#[derive(Args)]
pub struct DownArgs {
    /// Remove the named volumes the file declares, and anonymous ones.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove the services' images: all, or local (only those without an
    /// image: name of their own).
    #[arg(long, value_name = "TYPE", value_parser = ["all", "local"])]
    rmi: Option<String>,
    /// Remove containers of services the file no longer has.
    #[arg(long)]
    remove_orphans: bool,
    /// Seconds each stop waits before killing.
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
}

impl DownArgs {
    /// Whether it removes images.
    pub fn removes_images(&self) -> bool {
        self.rmi.is_some()
    }
}

pub fn down(args: DownArgs, compose: &Compose) -> Result<u8> {
    let options = DownOptions {
        volumes: args.volumes,
        remove_images: args.rmi.as_deref().map(|rmi| match rmi {
            "local" => ImageRemoval::Local,
            _ => ImageRemoval::All,
        }),
        remove_orphans: args.remove_orphans,
        timeout: args.timeout.map(Duration::from_secs),
    };
    compose.down(&options, &mut print_event)?;
    Ok(0)
}

/// `compose attach`'s flags.
#[derive(Args)]
pub struct AttachArgs {
    #[command(flatten)]
    flags: container_cmd::AttachFlags,
    /// Which of the service's containers (default 1).
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// The service.
    service: String,
}

impl AttachArgs {
    /// What of this terminal it needs in the machine.
    pub fn stdio(&self) -> ForwardedStdio {
        ForwardedStdio {
            stdin: self.flags.takes_stdin(),
            tty: true,
        }
    }
}

/// Joins the process of a service's running container, as `hull attach`
/// does.
pub fn attach(args: AttachArgs, compose: &Compose) -> Result<u8> {
    let container = compose.replica(&args.service, args.index)?;
    container_cmd::attach_to(container.id(), args.flags, compose.runtime())
}

/// `compose wait`'s flags.
#[derive(Args)]
pub struct WaitArgs {
    /// Take the project down once the first container has stopped.
    #[arg(long)]
    down_project: bool,
    /// The services whose running containers to wait for.
    #[arg(required = true)]
    services: Vec<String>,
}

/// Waits for the services' running containers to stop, a line for each as
/// Compose prints it; exits with the last one's code, or with
/// `--down-project` the first one's, the project taken down then.
pub fn wait(args: WaitArgs, compose: &Compose) -> Result<u8> {
    let containers = compose.service_containers(&args.services, false)?;
    if containers.is_empty() {
        bail!(
            "no running container of {} to wait for",
            args.services.join(", ")
        );
    }
    let (sender, exits) = mpsc::channel();
    // Not joined: once the answer is known, the waits left end with this
    // process.
    for container in &containers {
        let sender = sender.clone();
        let id = container.id().to_owned();
        let runtime = Runtime::new(compose.runtime().root());
        std::thread::spawn(move || {
            let exit = runtime.wait(&id);
            let _ = sender.send((id, exit));
        });
    }
    drop(sender);
    let mut last = 0;
    for (id, exit) in exits {
        let code = match exit {
            Ok(code) => code,
            Err(err) => {
                eprintln!("hull: {err}");
                continue;
            }
        };
        println!("container {id:?} exited with status code {code}");
        last = code;
        if args.down_project {
            compose.down(&DownOptions::default(), &mut print_event)?;
            break;
        }
    }
    Ok(last as u8)
}

/// `compose pull`'s flags.
#[derive(Args)]
pub struct PullArgs {
    /// Pull without printing progress.
    #[arg(short, long)]
    quiet: bool,
    /// The services (default: all of the active profiles).
    services: Vec<String>,
}

/// `compose push`'s flags.
#[derive(Args)]
pub struct PushArgs {
    /// Push what can be pushed: a failed push is reported, the others go.
    #[arg(long)]
    ignore_push_failures: bool,
    /// Also push the images of the services they depend on.
    #[arg(long)]
    include_deps: bool,
    /// Print only the pushed references.
    #[arg(short, long)]
    quiet: bool,
    /// The services (default: all of the active profiles).
    services: Vec<String>,
}

/// Pushes the images of the services with `build:` and `image:`, as
/// `hull push` does.
pub fn push(args: PushArgs, compose: &Compose) -> Result<u8> {
    push_services(
        compose,
        compose.runtime().root(),
        &args.services,
        args.include_deps,
        args.ignore_push_failures,
        args.quiet,
    )?;
    Ok(0)
}

/// `compose cp`'s flags.
#[derive(Args)]
pub struct CpArgs {
    /// Include the service's containers made by `compose run`.
    #[arg(long)]
    all: bool,
    /// Which of the service's containers (default: into every one, out of
    /// the first).
    #[arg(long)]
    index: Option<u32>,
    #[command(flatten)]
    copy: container_cmd::CopyFlags,
    /// SERVICE:PATH, a host path, or - for a tar stream on stdin.
    source: String,
    /// SERVICE:PATH, a host path, or - for a tar stream on stdout.
    destination: String,
}

impl CpArgs {
    /// The host path a copy out of a service's container writes, if it
    /// does.
    pub fn host_destination(&self) -> Option<std::path::PathBuf> {
        container_cmd::host_destination(&self.source, &self.destination)
    }

    /// What of this terminal it needs in the machine: stdin for a tar
    /// stream copied in.
    pub fn stdio(&self) -> ForwardedStdio {
        ForwardedStdio {
            stdin: self.source == "-",
            tty: false,
        }
    }
}

/// Copies between a service's containers (running or stopped, as
/// Compose has it) and the host, as `hull cp` does and Compose places it:
/// into each of them, out of the first, unless --index names one.
pub fn cp(args: CpArgs, compose: &Compose) -> Result<u8> {
    let containers = |service: &str| -> Result<Vec<String>> {
        compose.project().service(service)?;
        let ids = match args.index {
            Some(index) => vec![compose.replica(service, index)?.id().to_owned()],
            None => compose
                .containers(args.all)?
                .iter()
                .filter(|c| service_of(c) == Some(service))
                .map(|container| container.id().to_owned())
                .collect(),
        };
        if ids.is_empty() {
            bail!("no container found for service {service:?}");
        }
        Ok(ids)
    };
    container_cmd::copy(
        compose.runtime(),
        &args.source,
        &args.destination,
        args.copy.options(),
        containers,
    )?;
    Ok(0)
}

/// `compose build`'s flags.
#[derive(Args)]
pub struct BuildArgs {
    /// Take nothing from the build cache.
    #[arg(long)]
    no_cache: bool,
    /// Pull base images even if they are here.
    #[arg(long)]
    pull: bool,
    /// A build-time variable, `KEY=VALUE` (or `KEY` to take it from the
    /// environment), over the services' `args:`.
    #[arg(long = "build-arg", value_name = "KEY=VALUE", value_parser = crate::run::parse_env)]
    build_args: Vec<String>,
    /// The services (default: all of the active profiles with build:).
    services: Vec<String>,
}

/// Builds the images of the services with `build:`, as `hull build` does.
pub fn build(args: BuildArgs, compose: &Compose) -> Result<u8> {
    let flags = BuildFlags {
        no_cache: args.no_cache,
        pull: args.pull,
        build_args: parse_build_args(&args.build_args),
    };
    build_services(compose, compose.runtime().root(), &args.services, &flags)?;
    Ok(0)
}

/// Pulls the image of every service that has `image:`, as `hull pull`
/// does.
pub fn pull(args: PullArgs, compose: &Compose) -> Result<u8> {
    let request = ImageRequest {
        services: args.services,
        no_deps: true,
        pull: Some(PullPolicy::Always),
        build: BuildPolicy::Skip,
        quiet_pull: args.quiet,
    };
    resolve(compose, compose.runtime().root(), &request)?;
    Ok(0)
}

pub fn start(args: ServicesArgs, compose: &Compose) -> Result<u8> {
    compose.start(&args.services, &mut print_event)?;
    Ok(0)
}

pub fn pause(args: ServicesArgs, compose: &Compose) -> Result<u8> {
    compose.pause(&args.services, &mut print_event)?;
    Ok(0)
}

pub fn unpause(args: ServicesArgs, compose: &Compose) -> Result<u8> {
    compose.unpause(&args.services, &mut print_event)?;
    Ok(0)
}

/// `compose stop`'s and `restart`'s flags.
#[derive(Args)]
pub struct StopArgs {
    /// Seconds each stop waits before killing.
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// The services (default: all).
    services: Vec<String>,
}

pub fn stop(args: StopArgs, compose: &Compose) -> Result<u8> {
    let grace = args.timeout.map(Duration::from_secs);
    compose.stop(&args.services, grace, &mut print_event)?;
    Ok(0)
}

pub fn restart(args: StopArgs, compose: &Compose) -> Result<u8> {
    let grace = args.timeout.map(Duration::from_secs);
    compose.restart(&args.services, grace, &mut print_event)?;
    Ok(0)
}

/// `compose rm`'s flags.
#[derive(Args)]
pub struct RmArgs {
    /// Do not ask first.
    #[arg(short = 'f', long)]
    force: bool,
    /// Stop running containers first, and remove them too.
    #[arg(short = 's', long)]
    stop: bool,
    /// Remove their anonymous volumes too.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// The services (default: all).
    services: Vec<String>,
}

impl RmArgs {
    /// Whether it asks before removing.
    pub fn asks(&self) -> bool {
        !self.force
    }
}

pub fn rm(args: RmArgs, compose: &Compose) -> Result<u8> {
    let containers = compose.removable(&args.services, args.stop)?;
    if containers.is_empty() {
        eprintln!("No stopped containers");
        return Ok(0);
    }
    if !args.force {
        let names: Vec<&str> = containers.iter().map(|c| c.name()).collect();
        let question = format!("Going to remove {}", names.join(", "));
        if !prompt::confirm(&question)? {
            return Ok(0);
        }
    }
    compose.remove(&containers, args.volumes, &mut print_event)?;
    Ok(0)
}

/// `compose kill`'s flags.
#[derive(Args)]
pub struct KillArgs {
    /// The signal (default KILL).
    #[arg(short = 's', long, default_value = "KILL", value_parser = parse_signal)]
    signal: i32,
    /// The services (default: all).
    services: Vec<String>,
}

pub fn kill(args: KillArgs, compose: &Compose) -> Result<u8> {
    compose.kill(&args.services, args.signal, &mut print_event)?;
    Ok(0)
}

/// `compose exec`'s flags.
#[derive(Args)]
pub struct ExecArgs {
    /// Leave the command running in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// No terminal for the process (default: one if this is a terminal).
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    #[command(flatten)]
    _terminal: DockerTerminalFlags,
    /// Another variable: KEY=VALUE.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = crate::run::parse_env)]
    env: Vec<String>,
    /// Another user: USER[:GROUP].
    #[arg(short = 'u', long, value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,
    /// Another working directory.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// Give the command every capability, of the container's VM only.
    #[arg(long)]
    privileged: bool,
    /// Which container of the service, from 1.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// The service.
    service: String,
    /// The command, with its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl ExecArgs {
    /// What of this terminal the command uses in the machine.
    pub fn stdio(&self) -> ForwardedStdio {
        service_stdio(self.no_tty, self.detach)
    }
}

pub fn exec(args: ExecArgs, compose: &Compose) -> Result<u8> {
    let tty = args
        .stdio()
        .tty
        .then(|| terminal::size().unwrap_or(terminal::DEFAULT_SIZE));
    let options = ExecOptions {
        command: args.command.clone(),
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        tty,
        detach: args.detach,
        privileged: args.privileged,
    };
    let signals = Signals::catch()?;
    let terminal = Terminal::new(tty.is_some(), !args.detach);
    let stdio = terminal.stdio(Some(signals))?;
    let outcome = compose.exec(&args.service, args.index, options, stdio)?;
    Ok(outcome.exit_code())
}
