//! `hull compose`: Docker Compose's commands on `hull_compose`. This front
//! end parses flags, loads the project, finds, pulls or builds images (on
//! this host, before the command line goes to the hull machine), and
//! prints what the library reports.

mod attach;
mod failure;
mod images;
mod lifecycle;
mod log_printer;
mod show;
mod up;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hull_compose::{Action, Compose, Event, LoadOptions, Project, STDIN_FILE};
use hull_runtime::{PortMapping, PortRequest, Runtime, Status};

use crate::machine::{self, ForwardedStdio, Placement};

pub use failure::{exit_code, COMMAND_SYNTAX_FAILURE};

/// Where this host hands the hull machine the text of `-f -`, which the
/// command there cannot read from its stdin again.
const STDIN_FILE_ENV: &str = "HULL_COMPOSE_STDIN";
/// The most of `-f -` handed to the machine: the environment goes there in
/// one relay frame, escaped as JSON, beside the rest.
const MAX_FORWARDED_STDIN_FILE: usize = 64 * 1024;

/// `hull compose`'s own flags, before the subcommand.
#[derive(Args)]
pub struct ComposeArgs {
    /// A compose file (repeat to merge several; default: compose.yaml and
    /// its kin, found here or above).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The project's name (default: COMPOSE_PROJECT_NAME, the file's
    /// name:, or the directory's).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    project_name: Option<String>,
    /// The project's directory (default: the first file's).
    #[arg(long, value_name = "DIR")]
    project_directory: Option<PathBuf>,
    /// Variables for interpolation, instead of the project's .env.
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Enable services of this profile.
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,
    #[command(subcommand)]
    command: ComposeCommand,
}

#[derive(Subcommand)]
enum ComposeCommand {
    /// Create and start the services' containers (and networks, volumes).
    Up(up::UpArgs),
    /// Create the services' containers (and networks, volumes) without
    /// starting them.
    Create(up::CreateArgs),
    /// Stop and remove the project's containers and networks.
    Down(lifecycle::DownArgs),
    /// List the project's containers.
    Ps(show::PsArgs),
    /// Show the services' output.
    Logs(show::LogsArgs),
    /// Build the images of services with build:.
    Build(lifecycle::BuildArgs),
    /// Pull the services' images.
    Pull(lifecycle::PullArgs),
    /// Push the images of the services with build: and image:.
    Push(lifecycle::PushArgs),
    /// Start the services' existing containers.
    Start(lifecycle::ServicesArgs),
    /// Stop the services' containers.
    Stop(lifecycle::StopArgs),
    /// Restart the services' containers.
    Restart(lifecycle::StopArgs),
    /// Remove the services' stopped containers.
    Rm(lifecycle::RmArgs),
    /// Signal the services' containers.
    Kill(lifecycle::KillArgs),
    /// Freeze the services' running containers.
    Pause(lifecycle::ServicesArgs),
    /// Thaw the services' frozen containers.
    Unpause(lifecycle::ServicesArgs),
    /// Run a command in a service's running container.
    Exec(lifecycle::ExecArgs),
    /// Run a one-off command in a new container of a service.
    Run(up::RunArgs),
    /// Set how many containers services run: SERVICE=N.
    Scale(up::ScaleArgs),
    /// Print the project's model, interpolated and normalised.
    #[command(visible_alias = "convert")]
    Config(show::ConfigArgs),
    /// Show the processes of the services' containers.
    Top(lifecycle::ServicesArgs),
    /// Print where a service's port is published.
    Port(show::PortArgs),
    /// Copy files between a service's container and the host.
    Cp(lifecycle::CpArgs),
    /// Wait for the services' containers to stop.
    Wait(lifecycle::WaitArgs),
    /// Attach this terminal to a service's running container.
    Attach(lifecycle::AttachArgs),
    /// List the images the containers run.
    Images(show::ImagesArgs),
    /// Show what happens to the services' containers, as it happens.
    Events(show::EventsArgs),
    /// List the projects that have containers.
    Ls(show::LsArgs),
    /// Show hull compose's version.
    Version(VersionArgs),
}

/// `compose version`'s flags.
#[derive(Args)]
struct VersionArgs {
    /// Print only the version number.
    #[arg(long)]
    short: bool,
    /// `pretty` (default) or `json`.
    #[arg(short, long, value_name = "FORMAT", default_value = "pretty")]
    format: String,
}

/// `compose version`: hull's version, as Docker Compose prints its own
/// (hull implements Compose v2's file format and commands).
fn version(args: &VersionArgs) -> Result<u8> {
    let version = env!("CARGO_PKG_VERSION");
    match (args.short, args.format.as_str()) {
        (true, _) => println!("{version}"),
        (false, "json") => println!("{}", serde_json::json!({ "version": version })),
        (false, "pretty") => {
            println!("hull compose version {version} (Compose v2 files and commands)")
        }
        (false, other) => anyhow::bail!("--format {other}: expected pretty or json"),
    }
    Ok(0)
}

impl ComposeArgs {
    /// Where the command runs on a host whose VMs need the hull machine.
    pub fn placement(&self) -> Placement {
        match &self.command {
            // The files and the image store only: here (a build's `RUN`
            // steps go to the machine one by one).
            ComposeCommand::Config(_)
            | ComposeCommand::Pull(_)
            | ComposeCommand::Push(_)
            | ComposeCommand::Build(_) => Placement::Host,
            // They read the containers' states, which only the machine
            // (where their monitors are) can tell while it runs.
            ComposeCommand::Ps(_)
            | ComposeCommand::Ls(_)
            | ComposeCommand::Images(_)
            | ComposeCommand::Logs(_) => Placement::Root,
            // The event log is a file under the root, shared with the
            // machine.
            ComposeCommand::Version(_) | ComposeCommand::Events(_) => Placement::Host,
            ComposeCommand::Up(_)
            | ComposeCommand::Create(_)
            | ComposeCommand::Run(_)
            | ComposeCommand::Scale(_)
            | ComposeCommand::Start(_)
            | ComposeCommand::Restart(_)
            | ComposeCommand::Down(_)
            // A stopped container's files are read and written by a VM.
            | ComposeCommand::Cp(_) => Placement::Vm,
            _ => Placement::Root,
        }
    }

    /// The host file the command writes, as typed (`cp` out of a
    /// container).
    pub fn host_output(&self) -> Option<PathBuf> {
        match &self.command {
            ComposeCommand::Cp(args) => args.host_destination(),
            _ => None,
        }
    }

    /// Whether the command removes images (`down --rmi`).
    pub fn removes_images(&self) -> bool {
        matches!(&self.command, ComposeCommand::Down(args) if args.removes_images())
    }

    /// What of this terminal the command gets in the machine.
    pub fn forwarded_stdio(&self) -> ForwardedStdio {
        match &self.command {
            ComposeCommand::Run(args) => args.stdio(),
            ComposeCommand::Exec(args) => args.stdio(),
            ComposeCommand::Cp(args) => args.stdio(),
            ComposeCommand::Attach(args) => args.stdio(),
            ComposeCommand::Rm(args) if args.asks() => ForwardedStdio {
                stdin: true,
                tty: true,
            },
            _ => ForwardedStdio::default(),
        }
    }

    /// Does here what must happen before the command line goes to the hull
    /// machine: loads the project (a bad file fails here), refuses
    /// read-write binds of host paths the machine cannot write, and finds,
    /// pulls or builds the images `up` and `run` need, whose IDs the
    /// command there gets in its environment.
    pub fn prepare_for_machine(&self, root: &Path) -> Result<Vec<String>> {
        let mut env: Vec<String> = Vec::new();
        if let Some(text) = self.stdin_file()? {
            if text.len() > MAX_FORWARDED_STDIN_FILE {
                anyhow::bail!(
                    "-f -: a compose file on stdin goes to the hull machine only up to {} KiB; \
                     give it as a file with -f FILE",
                    MAX_FORWARDED_STDIN_FILE / 1024
                );
            }
            env.push(format!("{STDIN_FILE_ENV}={text}"));
        }
        let wanted = match &self.command {
            ComposeCommand::Up(args) => Some(args.image_request()),
            ComposeCommand::Create(args) => Some(args.image_request()),
            ComposeCommand::Run(args) => Some(args.image_request()),
            ComposeCommand::Scale(args) => Some(args.image_request()),
            _ => None,
        };
        let project = self.load(root)?;
        match &self.command {
            ComposeCommand::Up(args) => args.check(&project)?,
            ComposeCommand::Create(args) => args.check(&project)?,
            ComposeCommand::Scale(args) => args.check(&project)?,
            ComposeCommand::Run(args) => {
                machine::check_binds(root, &args.check(&project)?)?;
                check_ports_free(&args.published(&project)?, &[])?;
            }
            _ => {}
        }
        let Some(request) = wanted else {
            return Ok(env);
        };
        let devices: Vec<PathBuf> = project
            .file
            .volumes
            .values()
            .filter(|volume| !volume.external)
            .filter_map(|volume| volume.bound_directory().ok().flatten())
            .collect();
        machine::check_volume_devices(root, &devices)?;
        let runtime = Runtime::new(root);
        let compose = Compose::new(&runtime, &project);
        // The machine's forwards of host ports come from this host: one
        // taken here (by another program) is refused before anything is
        // made, as `run -p`'s; a running container's own are its. Their
        // monitors are the machine's: their states as recorded.
        let published: Vec<PortMapping> = runtime
            .list_as_recorded()?
            .into_iter()
            .filter(|container| container.state.status == Status::Running)
            .flat_map(|container| container.config.boot.network.ports)
            .collect();
        // What `up` and `scale` start publishes; `create` and `run` (unless
        // told) publish nothing.
        let publishes = match &self.command {
            ComposeCommand::Up(up) => !up.no_start(),
            command => matches!(command, ComposeCommand::Scale(_)),
        };
        for service in compose.selected(&request.services, request.no_deps)? {
            machine::check_binds(root, &hull_compose::service_mounts(&project, &service)?)?;
            if publishes {
                check_ports_free(
                    &hull_compose::service_publish(&project, &service)?,
                    &published,
                )
                .with_context(|| format!("service {service}"))?;
            }
        }
        let resolved = images::resolve(&compose, root, &request)?;
        env.push(images::forwarded(&resolved)?);
        Ok(env)
    }

    /// The text of `-f -`, if given: what this host sent along to the hull
    /// machine, else standard input's, read once.
    fn stdin_file(&self) -> Result<Option<String>> {
        static TEXT: OnceLock<String> = OnceLock::new();
        let compose_file = std::env::var("COMPOSE_FILE").ok();
        let listed = hull_compose::listed_files(&self.files, compose_file.as_deref());
        if !listed.is_some_and(|files| files.iter().any(|file| file == Path::new(STDIN_FILE))) {
            return Ok(None);
        }
        if let Some(text) = TEXT.get() {
            return Ok(Some(text.clone()));
        }
        let text = match std::env::var(STDIN_FILE_ENV) {
            Ok(text) => text,
            Err(_) => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("-f -: cannot read a compose file from stdin")?;
                text
            }
        };
        Ok(Some(TEXT.get_or_init(|| text).clone()))
    }

    /// The project the flags and this process's environment describe;
    /// with no file, as Compose v2 has it, the project `-p` (or
    /// `COMPOSE_PROJECT_NAME`) names from what it left under `root`, for
    /// the commands that need no more.
    fn load(&self, root: &Path) -> Result<Project> {
        let working_dir = std::env::current_dir().context("cannot tell the working directory")?;
        let options = LoadOptions {
            files: self.files.clone(),
            project_name: self.project_name.clone(),
            project_directory: self.project_directory.clone(),
            env_files: self.env_files.clone(),
            profiles: self.profiles.clone(),
            working_dir: working_dir.clone(),
            environment: std::env::vars()
                .filter(|(key, _)| key != STDIN_FILE_ENV)
                .collect::<BTreeMap<_, _>>(),
            stdin: self.stdin_file()?,
        };
        let no_file = match hull_compose::load(&options) {
            Err(err @ hull_compose::Error::NoFile(_)) => err,
            loaded => return Ok(loaded?),
        };
        // Only when none was found: a file named that is missing is an
        // error.
        let compose_file = options.environment.get("COMPOSE_FILE").map(String::as_str);
        let found_none = hull_compose::listed_files(&self.files, compose_file).is_none();
        let named = self
            .project_name
            .clone()
            .or_else(|| options.environment.get("COMPOSE_PROJECT_NAME").cloned())
            .filter(|_| found_none && self.acts_by_name());
        let Some(name) = named else {
            return Err(no_file.into());
        };
        Ok(hull_compose::project_from_resources(
            &Runtime::new(root),
            &name,
            &working_dir,
        )?)
    }

    /// Whether the command works on what a project made, with no file:
    /// Compose v2's, which find the project by its name.
    fn acts_by_name(&self) -> bool {
        matches!(
            self.command,
            ComposeCommand::Down(_)
                | ComposeCommand::Ps(_)
                | ComposeCommand::Logs(_)
                | ComposeCommand::Start(_)
                | ComposeCommand::Stop(_)
                | ComposeCommand::Restart(_)
                | ComposeCommand::Rm(_)
                | ComposeCommand::Kill(_)
                | ComposeCommand::Pause(_)
                | ComposeCommand::Unpause(_)
                | ComposeCommand::Exec(_)
                | ComposeCommand::Top(_)
                | ComposeCommand::Images(_)
                | ComposeCommand::Events(_)
                | ComposeCommand::Port(_)
                | ComposeCommand::Cp(_)
                | ComposeCommand::Wait(_)
                | ComposeCommand::Attach(_)
        )
    }
}

/// Checks that the host ports of `specs` (`-p` values) are free on this
/// host, but for those `published` by running containers.
fn check_ports_free(specs: &[String], published: &[PortMapping]) -> Result<()> {
    let mut wanted = Vec::new();
    for spec in specs {
        for request in PortRequest::parse(spec)? {
            let held = published.iter().any(|running| {
                request.may_take(running.host_port) && running.protocol == request.protocol
            });
            if !held {
                wanted.push(request);
            }
        }
    }
    Ok(PortRequest::check_free(&wanted)?)
}

/// `hull compose ...`.
pub fn compose(args: ComposeArgs, runtime: &Runtime) -> Result<u8> {
    match &args.command {
        ComposeCommand::Ls(ls) => return show::ls(ls, runtime),
        ComposeCommand::Version(version_args) => return version(version_args),
        _ => {}
    }
    let project = args.load(runtime.root())?;
    for warning in &project.warnings {
        eprintln!("hull: warning: {warning}");
    }
    let file = &project.file;
    let nothing = file.services.is_empty() && file.networks.is_empty() && file.volumes.is_empty();
    if nothing && project.files.is_empty() && matches!(args.command, ComposeCommand::Down(_)) {
        eprintln!(
            "hull: warning: no resource found to remove for project {:?}",
            project.name
        );
    }
    let compose = Compose::new(runtime, &project);
    match args.command {
        ComposeCommand::Up(up) => up::up(up, &compose),
        ComposeCommand::Create(create) => up::create(create, &compose),
        ComposeCommand::Run(run) => up::run(run, &compose),
        ComposeCommand::Scale(scale) => up::scale(scale, &compose),
        ComposeCommand::Down(down) => lifecycle::down(down, &compose),
        ComposeCommand::Build(build) => lifecycle::build(build, &compose),
        ComposeCommand::Pull(pull) => lifecycle::pull(pull, &compose),
        ComposeCommand::Push(push) => lifecycle::push(push, &compose),
        ComposeCommand::Start(services) => lifecycle::start(services, &compose),
        ComposeCommand::Stop(stop) => lifecycle::stop(stop, &compose),
        ComposeCommand::Restart(stop) => lifecycle::restart(stop, &compose),
        ComposeCommand::Rm(rm) => lifecycle::rm(rm, &compose),
        ComposeCommand::Kill(kill) => lifecycle::kill(kill, &compose),
        ComposeCommand::Pause(services) => lifecycle::pause(services, &compose),
        ComposeCommand::Unpause(services) => lifecycle::unpause(services, &compose),
        ComposeCommand::Exec(exec) => lifecycle::exec(exec, &compose),
        ComposeCommand::Top(services) => show::top(services, &compose),
        ComposeCommand::Images(services) => show::images(services, &compose),
        ComposeCommand::Events(events) => show::events(events, &compose),
        ComposeCommand::Ps(ps) => show::ps(ps, &compose),
        ComposeCommand::Logs(logs) => show::logs(logs, &compose),
        ComposeCommand::Config(config) => show::config(config, &compose),
        ComposeCommand::Port(port) => show::port(port, &compose),
        ComposeCommand::Cp(cp) => lifecycle::cp(cp, &compose),
        ComposeCommand::Wait(wait) => lifecycle::wait(wait, &compose),
        ComposeCommand::Attach(attach) => lifecycle::attach(attach, &compose),
        ComposeCommand::Ls(_) | ComposeCommand::Version(_) => unreachable!("answered above"),
    }
}

/// Compose's `-i` and `-t` of `exec` and `run`, on there by default:
/// taken so that `exec -it SERVICE sh` works as typed. Whether the process
/// gets stdin and a terminal follows -d, -T and this terminal.
#[derive(Args)]
pub struct DockerTerminalFlags {
    /// Keep stdin open (the default).
    #[arg(short = 'i', long = "interactive", hide = true)]
    _interactive: bool,
    /// A terminal, if this is one (the default).
    #[arg(short = 't', long = "tty", hide = true)]
    _tty: bool,
}

/// What a process in a service's container gets of this terminal
/// (`exec`, `run`): stdin unless detached; a terminal unless -T or -d, if
/// stdin and stdout are one.
fn service_stdio(no_tty: bool, detach: bool) -> ForwardedStdio {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    ForwardedStdio {
        stdin: !detach,
        tty: !no_tty && !detach && terminal,
    }
}

/// Prints one event as Compose's plain progress does, on stderr.
fn print_event(event: Event) {
    match &event.action {
        Action::Warning(why) if event.name.is_empty() => eprintln!("hull: warning: {why}"),
        action => eprintln!(" {} {}  {action}", event.kind, event.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        compose: ComposeArgs,
    }

    #[test]
    fn flags_naming_no_service_are_refused_before_images_are_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, "services:\n  web:\n    image: absent.example/web\n").unwrap();
        let root = dir.path().join("root");
        for flags in [
            &["up", "--scale", "nope=2"][..],
            &["up", "--exit-code-from", "nope"][..],
            &["create", "--scale", "nope=2"][..],
        ] {
            let argv = [&["compose", "-f", file.to_str().unwrap()][..], flags].concat();
            let args = Cli::try_parse_from(argv).unwrap().compose;
            let err = args.prepare_for_machine(&root).unwrap_err();
            assert_eq!(format!("{err:#}"), "no such service: nope", "{flags:?}");
            assert!(!root.exists(), "{flags:?}: the store was opened");
        }
    }
}
