//! `hull`: Docker-style container commands, each container in its own
//! microVM. The commands are a front end on `hull_runtime`: they parse
//! arguments, format what it reports, handle the terminal, and, where this
//! host's KVM cannot run hull's guest, run themselves in the hull machine.

mod build_cmd;
mod cidfile;
mod closed_stdout;
mod command_line;
mod compose_cmd;
mod container_cmd;
mod events_cmd;
mod filters;
mod foreign_flags;
mod image_cmd;
mod machine;
mod mount_flags;
mod network_cmd;
mod output_file;
mod prompt;
mod prune_report;
mod report;
mod root_dir;
mod run;
mod security_flags;
mod system_cmd;
mod terminal;
mod times;
mod version;
mod volume_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use hull_runtime::Runtime;

/// Exit code for errors of hull itself, as Docker uses it.
pub const HULL_ERROR: u8 = 125;
/// The exit code of a command other than `run` and `create` that failed.
pub const FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "hull",
    version,
    disable_version_flag = true,
    about = "Run containers, each in its own KVM microVM"
)]
struct Cli {
    /// Print the version (`-v`, as Docker spells it).
    #[arg(short = 'v', short_alias = 'V', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,

    /// Directory holding hull's state (containers, caches).
    #[arg(long, global = true, env = "HULL_ROOT", default_value = hull_runtime::DEFAULT_ROOT)]
    root: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container.
    Run(Box<run::RunArgs>),

    /// Create a container without starting it.
    Create(Box<run::CreateArgs>),

    /// List containers.
    Ps(container_cmd::PsArgs),

    /// Show a container's output.
    Logs(container_cmd::LogsArgs),

    /// Connect this terminal to a running container's process.
    Attach(container_cmd::AttachArgs),

    /// Run another command in a running container.
    Exec(container_cmd::ExecArgs),

    /// Copy files between a container and the host.
    Cp(container_cmd::CpArgs),

    /// Create an image from a container's changes.
    Commit(container_cmd::CommitArgs),

    /// Write a container's root filesystem as a tar archive.
    Export(container_cmd::ExportArgs),

    /// List the files a container added, changed or deleted.
    Diff(container_cmd::DiffArgs),

    /// Show the processes of a running container.
    Top(container_cmd::TopArgs),

    /// Show CPU, memory and process counts of running containers.
    Stats(container_cmd::StatsArgs),

    /// Stop running containers: SIGTERM, then the VM is torn down.
    Stop(container_cmd::StopArgs),

    /// Remove containers.
    Rm(container_cmd::RmArgs),

    /// Wait for containers to exit and print their exit codes.
    Wait(container_cmd::WaitArgs),

    /// Start stopped containers.
    Start(container_cmd::StartArgs),

    /// Restart containers.
    Restart(container_cmd::RestartArgs),

    /// Signal containers' processes (KILL tears the VM down).
    Kill(container_cmd::KillArgs),

    /// Freeze containers' VMs.
    Pause(container_cmd::PauseArgs),

    /// Resume frozen containers' VMs.
    Unpause(container_cmd::PauseArgs),

    /// Rename a container.
    Rename(container_cmd::RenameArgs),

    /// Change containers' resource limits and restart policy.
    Update(container_cmd::UpdateArgs),

    /// Show low-level information on containers as JSON.
    Inspect(container_cmd::InspectArgs),

    /// List a container's published ports.
    Port(container_cmd::PortArgs),

    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),

    /// Run multi-container applications from compose files, each
    /// container in its own VM.
    Compose(Box<compose_cmd::ComposeArgs>),

    /// Manage networks.
    #[command(subcommand)]
    Network(network_cmd::NetworkCommand),

    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume_cmd::VolumeCommand),

    /// Manage hull as a whole.
    #[command(subcommand)]
    System(system_cmd::SystemCommand),

    /// Show hull's version, the guest kernel it uses and the KVM it found.
    Version(version::VersionArgs),

    /// Show where hull runs VMs on this host and why, and the hull
    /// machine's state.
    Info(version::VersionArgs),

    /// Show what happens to containers, images, networks and volumes.
    Events(events_cmd::EventsArgs),

    /// Manage the hull machine, where containers run on hosts whose KVM
    /// cannot run hull's guest.
    #[command(subcommand)]
    Machine(machine::MachineCommand),

    /// Build an image from a Dockerfile, each RUN step in a microVM.
    Build(Box<build_cmd::BuildArgs>),

    /// Manage the build cache.
    #[command(subcommand)]
    Builder(build_cmd::BuilderCommand),

    /// Docker's buildx commands: build (as `hull build`) and prune.
    #[command(subcommand)]
    Buildx(BuildxCommand),

    /// Pull an image from a registry.
    Pull(image_cmd::PullArgs),

    /// Push an image to a registry.
    Push(image_cmd::PushArgs),

    /// List images.
    Images(image_cmd::ImagesArgs),

    /// Remove images.
    Rmi(image_cmd::RmiArgs),

    /// Give an image another name.
    Tag(image_cmd::TagArgs),

    /// Show an image's history: what made each layer.
    History(image_cmd::HistoryArgs),

    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),

    /// Create an image from a root filesystem tar.
    Import(image_cmd::ImportArgs),

    /// Write images to a tar archive (docker-archive and OCI image layout).
    Save(image_cmd::SaveArgs),

    /// Load images from a docker-archive or OCI image layout tar.
    Load(image_cmd::LoadArgs),

    /// Store credentials for a registry.
    Login(image_cmd::LoginArgs),

    /// Remove stored credentials for a registry.
    Logout(image_cmd::LogoutArgs),

    /// Show images' manifests in their registries.
    #[command(subcommand)]
    Manifest(image_cmd::ManifestCommand),

    /// Print a shell completion script: `source <(hull completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Run one build step (a file naming it) in a VM: `hull build`'s steps
    /// inside the hull machine.
    #[command(name = "__build-step", hide = true)]
    BuildStep { request: PathBuf },

    /// Write a container's changes as a layer tar: `hull commit`'s
    /// part inside the hull machine.
    #[command(name = "__container-layer", hide = true)]
    ContainerLayer(container_cmd::ContainerLayerArgs),

    /// Run a command inside the KVM test host (QEMU TCG with nested SVM) and
    /// pass its stdio and exit code through. Used by tests.
    #[command(name = "__testhost-exec", hide = true)]
    TesthostExec {
        /// The command to run inside the test host.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

/// `hull container SUBCOMMAND`: each the same as its short form.
#[derive(Subcommand)]
enum ContainerCommand {
    /// Run a command in a new container.
    Run(Box<run::RunArgs>),
    /// Create a container without starting it.
    Create(Box<run::CreateArgs>),
    /// Start stopped containers.
    Start(container_cmd::StartArgs),
    /// Stop running containers.
    Stop(container_cmd::StopArgs),
    /// Restart containers.
    Restart(container_cmd::RestartArgs),
    /// Signal containers' processes.
    Kill(container_cmd::KillArgs),
    /// Freeze containers' VMs.
    Pause(container_cmd::PauseArgs),
    /// Resume frozen containers' VMs.
    Unpause(container_cmd::PauseArgs),
    /// Remove containers.
    #[command(visible_alias = "remove")]
    Rm(container_cmd::RmArgs),
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(container_cmd::PsArgs),
    /// Show a container's output.
    Logs(container_cmd::LogsArgs),
    /// Run another command in a running container.
    Exec(container_cmd::ExecArgs),
    /// Connect this terminal to a running container's process.
    Attach(container_cmd::AttachArgs),
    /// Copy files between a container and the host.
    Cp(container_cmd::CpArgs),
    /// Create an image from a container's changes.
    Commit(container_cmd::CommitArgs),
    /// Write a container's root filesystem as a tar archive.
    Export(container_cmd::ExportArgs),
    /// List the files a container added, changed or deleted.
    Diff(container_cmd::DiffArgs),
    /// Show low-level information on containers.
    Inspect(container_cmd::InspectArgs),
    /// Show the processes of a running container.
    Top(container_cmd::TopArgs),
    /// Show CPU, memory and process counts of running containers.
    Stats(container_cmd::StatsArgs),
    /// List a container's published ports.
    Port(container_cmd::PortArgs),
    /// Rename a container.
    Rename(container_cmd::RenameArgs),
    /// Change containers' resource limits and restart policy.
    Update(container_cmd::UpdateArgs),
    /// Wait for containers to exit.
    Wait(container_cmd::WaitArgs),
    /// Remove all stopped containers.
    Prune(container_cmd::PruneArgs),
}

/// `hull buildx SUBCOMMAND`: `buildx build` is `hull build` (whose
/// `--output`, `--push`, `--load` and `--iidfile` are buildx's), `buildx
/// prune` is `builder prune`.
#[derive(Subcommand)]
enum BuildxCommand {
    /// Build an image from a Dockerfile, each RUN step in a microVM.
    #[command(visible_alias = "b")]
    Build(Box<build_cmd::BuildArgs>),
    /// Remove the build cache (cached steps and cache mounts).
    Prune(build_cmd::BuilderPruneArgs),
}

/// `hull image SUBCOMMAND`: each the same as its short form.
#[derive(Subcommand)]
enum ImageCommand {
    /// Build an image from a Dockerfile.
    Build(Box<build_cmd::BuildArgs>),
    /// Pull an image from a registry.
    Pull(image_cmd::PullArgs),
    /// Push an image to a registry.
    Push(image_cmd::PushArgs),
    /// Give an image another name.
    Tag(image_cmd::TagArgs),
    /// List images.
    #[command(visible_alias = "list")]
    Ls(image_cmd::ImagesArgs),
    /// Remove images.
    #[command(visible_alias = "remove")]
    Rm(image_cmd::RmiArgs),
    /// Show low-level information on images as JSON.
    Inspect(image_cmd::InspectArgs),
    /// Show an image's history.
    History(image_cmd::HistoryArgs),
    /// Remove unused images.
    Prune(image_cmd::PruneArgs),
    /// Write images to a tar archive.
    Save(image_cmd::SaveArgs),
    /// Load images from a tar archive.
    Load(image_cmd::LoadArgs),
    /// Create an image from a root filesystem tar.
    Import(image_cmd::ImportArgs),
}

impl Command {
    /// The short form of a management command (`container run` is `run`).
    fn canonical(self) -> Command {
        match self {
            Command::Container(command) => match command {
                ContainerCommand::Run(args) => Command::Run(args),
                ContainerCommand::Create(args) => Command::Create(args),
                ContainerCommand::Start(args) => Command::Start(args),
                ContainerCommand::Stop(args) => Command::Stop(args),
                ContainerCommand::Restart(args) => Command::Restart(args),
                ContainerCommand::Kill(args) => Command::Kill(args),
                ContainerCommand::Pause(args) => Command::Pause(args),
                ContainerCommand::Unpause(args) => Command::Unpause(args),
                ContainerCommand::Rm(args) => Command::Rm(args),
                ContainerCommand::Ls(args) => Command::Ps(args),
                ContainerCommand::Logs(args) => Command::Logs(args),
                ContainerCommand::Exec(args) => Command::Exec(args),
                ContainerCommand::Attach(args) => Command::Attach(args),
                ContainerCommand::Cp(args) => Command::Cp(args),
                ContainerCommand::Commit(args) => Command::Commit(args),
                ContainerCommand::Export(args) => Command::Export(args),
                ContainerCommand::Diff(args) => Command::Diff(args),
                ContainerCommand::Inspect(args) => Command::Inspect(args.containers_only()),
                ContainerCommand::Top(args) => Command::Top(args),
                ContainerCommand::Stats(args) => Command::Stats(args),
                ContainerCommand::Port(args) => Command::Port(args),
                ContainerCommand::Rename(args) => Command::Rename(args),
                ContainerCommand::Update(args) => Command::Update(args),
                ContainerCommand::Wait(args) => Command::Wait(args),
                ContainerCommand::Prune(args) => Command::Container(ContainerCommand::Prune(args)),
            },
            Command::Image(command) => match command {
                ImageCommand::Build(args) => Command::Build(args),
                ImageCommand::Pull(args) => Command::Pull(args),
                ImageCommand::Push(args) => Command::Push(args),
                ImageCommand::Tag(args) => Command::Tag(args),
                ImageCommand::History(args) => Command::History(args),
                ImageCommand::Ls(args) => Command::Images(args),
                ImageCommand::Rm(args) => Command::Rmi(args),
                ImageCommand::Save(args) => Command::Save(args),
                ImageCommand::Load(args) => Command::Load(args),
                ImageCommand::Import(args) => Command::Import(args),
                command @ (ImageCommand::Inspect(_) | ImageCommand::Prune(_)) => {
                    Command::Image(command)
                }
            },
            Command::System(system_cmd::SystemCommand::Events(args)) => Command::Events(args),
            Command::System(system_cmd::SystemCommand::Info(args)) => Command::Info(args),
            Command::Buildx(command) => match command {
                BuildxCommand::Build(args) => Command::Build(args),
                BuildxCommand::Prune(args) => {
                    Command::Builder(build_cmd::BuilderCommand::Prune(args))
                }
            },
            command => command,
        }
    }

    /// Where the command runs on a host whose VMs need the hull machine.
    fn placement(&self) -> machine::Placement {
        use machine::Placement;
        match self {
            Command::Version(_)
            | Command::Info(_)
            // The event log is a file under the root, shared with the
            // machine: read here, as it grows, wherever containers run.
            | Command::Events(_)
            | Command::Machine(_)
            | Command::Completion { .. }
            | Command::BuildStep { .. }
            | Command::ContainerLayer(_)
            | Command::TesthostExec { .. } => Placement::Host,
            // They add to the image store or reach registries: here, where
            // image layers' device nodes can be made (the machine's 9p share
            // cannot) and registries (even on this host's loopback) and
            // credentials are reached as the user does.
            // A build adds to the store here too; its steps' VMs go to the
            // machine one by one, as a commit's layer does.
            Command::Pull(_)
            | Command::Build(_)
            | Command::Commit(_)
            | Command::Builder(_)
            | Command::Push(_)
            | Command::Import(_)
            | Command::Load(_)
            | Command::Login(_)
            | Command::Logout(_)
            | Command::Manifest(_) => Placement::Host,
            // They start VMs, wait for them, or change their networks.
            // Logs are this host's files: read here even while the machine
            // runs, unless followed (which asks the container's state).
            Command::Logs(args) if !args.follows() => Placement::Host,
            Command::Compose(args) => args.placement(),
            // They read the networks' records: no reason to start the
            // machine (`network inspect nope` on a fresh host).
            Command::Network(network_cmd::NetworkCommand::Ls(_))
            | Command::Network(network_cmd::NetworkCommand::Inspect(_)) => Placement::Root,
            // A stopped container's files are read and written by a VM
            // (its writable layer is a disk only a guest kernel reads).
            Command::Run(_)
            | Command::Create(_)
            | Command::Start(_)
            | Command::Restart(_)
            | Command::Cp(_)
            | Command::Export(_)
            | Command::Diff(_)
            | Command::Network(_)
            | Command::System(system_cmd::SystemCommand::Prune(_)) => Placement::Vm,
            _ => Placement::Root,
        }
    }

    /// Whether the command reads or writes hull's state directory.
    fn uses_root(&self) -> bool {
        !matches!(self, Command::Completion { .. })
    }

    /// Refuses, here, a command on the files of a container that does not
    /// exist: the hull machine would start for it (a stopped container's
    /// files are a VM's) only to say so.
    fn check_container(&self, root: &Path) -> anyhow::Result<()> {
        let name = match self {
            Command::Cp(args) => args.container(),
            Command::Export(args) => Some(args.container().to_owned()),
            Command::Diff(args) => Some(args.container().to_owned()),
            Command::Commit(args) => Some(args.container().to_owned()),
            _ => None,
        };
        match name {
            Some(name) => Runtime::new(root)
                .id_of(&name)
                .map(drop)
                .map_err(Into::into),
            None => Ok(()),
        }
    }

    /// Refuses, here, output the command must not write where it would go
    /// (in the hull machine, stdout is no terminal).
    fn check_output(&self) -> anyhow::Result<()> {
        match self {
            Command::Export(args) => args.check_output(),
            Command::Save(args) => args.check_output(),
            _ => Ok(()),
        }
    }

    /// The host files the command writes, as typed (`cp` out of a
    /// container, `export -o`, `save -o`).
    fn host_outputs(&self) -> Vec<PathBuf> {
        let output = match self {
            Command::Cp(args) => args.host_destination(),
            Command::Compose(args) => args.host_output(),
            Command::Export(args) => args.output().map(Path::to_owned),
            Command::Save(args) => args.output().map(Path::to_owned),
            _ => None,
        };
        output.into_iter().collect()
    }

    /// Whether the command deletes from the image store.
    fn removes_images(&self) -> bool {
        if let Command::Compose(args) = self {
            return args.removes_images();
        }
        matches!(
            self,
            Command::Rmi(_)
                | Command::Image(ImageCommand::Prune(_))
                | Command::System(system_cmd::SystemCommand::Prune(_))
        )
    }

    /// Whether the command asks for confirmation on stdin.
    fn asks(&self) -> bool {
        match self {
            Command::Image(ImageCommand::Prune(args)) => !args.force,
            Command::Builder(build_cmd::BuilderCommand::Prune(args)) => !args.force,
            Command::System(system_cmd::SystemCommand::Prune(args)) => !args.force,
            Command::Container(ContainerCommand::Prune(args)) => !args.force,
            Command::Network(network_cmd::NetworkCommand::Prune(args)) => !args.force(),
            Command::Volume(volume_cmd::VolumeCommand::Prune(args)) => !args.force(),
            _ => false,
        }
    }

    /// Whether the command starts the containers it names.
    fn starts_containers(&self) -> bool {
        matches!(self, Command::Start(_) | Command::Restart(_))
    }

    /// The containers the command names, which must exist, for a command
    /// that starts the hull machine.
    fn containers_named(&self) -> &[String] {
        match self {
            Command::Start(args) => args.containers(),
            Command::Restart(args) => args.containers(),
            Command::Wait(args) => args.containers(),
            _ => &[],
        }
    }

    /// What of this terminal the command gets when it runs in the machine.
    fn forwarded_stdio(&self) -> machine::ForwardedStdio {
        match self {
            Command::Run(args) => args.attached_stdio().map(Into::into).unwrap_or_default(),
            Command::Exec(args) => args.stdio().into(),
            Command::Start(args) => args
                .attached_stdio()
                .as_ref()
                .map(Into::into)
                .unwrap_or_default(),
            Command::Compose(args) => args.forwarded_stdio(),
            // A tar stream copied in.
            Command::Cp(args) => machine::ForwardedStdio {
                stdin: args.reads_stdin(),
                tty: false,
            },
            Command::Attach(args) => machine::ForwardedStdio {
                stdin: args.takes_stdin(),
                tty: true,
            },
            // A prune without -f asks first.
            command if command.asks() => machine::ForwardedStdio {
                stdin: true,
                tty: true,
            },
            _ => machine::ForwardedStdio::default(),
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HULL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .event_format(WarningFormat)
        .init();
    closed_stdout::install_panic_hook();
    // The runtime's and the machine's helper processes are this program.
    let helper = hull_runtime::helper::dispatch()
        .or_else(|| hull_machine::dispatch().map(|ended| ended.map(|()| 0)));
    if let Some(ended) = helper {
        return exit(ended, error_code);
    }
    let parsed = command_line::parse::<Cli>(Cli::command(), std::env::args_os());
    // As Docker: a command group without its subcommand (`hull`, `hull
    // image`) prints its help, on stderr, and exits 0.
    let missing_subcommand = parsed.as_ref().is_err_and(|err| {
        matches!(
            err.kind(),
            ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        )
    });
    if let Some(help) = missing_subcommand.then(group_help).flatten() {
        eprint!("{help}");
        return ExitCode::SUCCESS;
    }
    let cli = match parsed {
        Ok(cli) => cli,
        // Help and version on stdout with 0; usage errors on one line with
        // Docker's 125 (Compose's 16).
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!(
                "hull: {}",
                report::one_line(&command_line::error_line(&err))
            );
            return ExitCode::from(match is_compose_command_line() {
                true => compose_cmd::COMMAND_SYNTAX_FAILURE,
                false => HULL_ERROR,
            });
        }
    };
    let command = cli.command.canonical();
    let root = match command.uses_root() {
        true => match root_dir::resolve(&cli.root) {
            Ok(root) => root,
            Err(err) => return exit(Err(err), error_code),
        },
        false => cli.root,
    };
    let code_of = match command {
        Command::Compose(_) => compose_cmd::exit_code,
        Command::Run(_) | Command::Create(_) => run_error_code,
        _ => error_code,
    };
    if let Err(err) = command
        .check_output()
        .and_then(|()| command.check_container(&root))
    {
        return exit(Err(err), code_of);
    }
    let result = match machine::route(&root, command.placement()) {
        Ok(machine::Route::Here(_machine_down)) => execute(command, &root),
        Ok(machine::Route::Machine { notice }) => forward(&command, &root, &notice),
        Err(err) => Err(err),
    };
    exit(result, code_of)
}

/// The help of the command group this process's command line names, as
/// `--help` after it shows it; `None` if that shows none.
fn group_help() -> Option<String> {
    let asked = std::env::args_os().chain(["--help".into()]);
    match command_line::parse::<Cli>(Cli::command(), asked) {
        Err(help) if help.kind() == ErrorKind::DisplayHelp => Some(help.render().to_string()),
        _ => None,
    }
}

/// Whether this process's command line, read as far as it can be, is a
/// `hull compose` one: Compose has its own exit code for bad ones.
fn is_compose_command_line() -> bool {
    command_line::docker_parsing(Cli::command())
        .ignore_errors(true)
        .try_get_matches()
        .is_ok_and(|matches| matches.subcommand_name() == Some("compose"))
}

/// The exit code for `result`, with an error reported on stderr and its
/// code chosen by `code_of`.
fn exit(result: anyhow::Result<u8>, code_of: fn(&anyhow::Error) -> u8) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            closed_stdout::end_if_stdout_closed(&err);
            report::print(&err);
            ExitCode::from(code_of(&err))
        }
    }
}

/// Docker's exit code for an error: 127 for a command not found, 126 for
/// one that cannot be executed, 1 for any other (the `docker` command
/// exits 1 for whatever failed, its 125 being `run`'s, `create`'s and its
/// usage errors').
pub fn error_code(err: &anyhow::Error) -> u8 {
    let runtime_error = match err.downcast_ref::<hull_compose::Error>() {
        Some(hull_compose::Error::Runtime(inner)) => Some(inner),
        _ => err.downcast_ref::<hull_runtime::Error>(),
    };
    match runtime_error {
        Some(hull_runtime::Error::CommandNotFound(_)) => 127,
        Some(hull_runtime::Error::CommandNotExecutable(_)) => 126,
        _ => FAILURE,
    }
}

/// Docker's exit code for an error of `run` or `create`: 127 and 126 for
/// the container's command as [`error_code`] gives them, 125 for any other
/// (a missing image, volume or network included: `docker run` fails, not
/// the container).
fn run_error_code(err: &anyhow::Error) -> u8 {
    match error_code(err) {
        code @ (126 | 127) => code,
        _ => HULL_ERROR,
    }
}

/// Runs this command line in the hull machine, after checking here what
/// would otherwise be found wrong only once the machine has started.
fn forward(command: &Command, root: &Path, notice: &str) -> anyhow::Result<u8> {
    let runtime = Runtime::new(root);
    for name in command.containers_named() {
        // As recorded: its monitor, if it runs, is the machine's process.
        let container = runtime.inspect_as_recorded(name)?;
        // A directory shared when the container was made may be no longer.
        if command.starts_containers() {
            machine::check_binds(root, &container.config.boot.mounts)?;
        }
    }
    machine::check_outputs(root, &command.host_outputs())?;
    let env = match command {
        Command::Run(args) => args.prepare_for_machine(root)?,
        Command::Create(args) => args.prepare_for_machine(root)?,
        Command::Compose(args) => args.prepare_for_machine(root)?,
        _ => Vec::new(),
    };
    // The machine's store locks do not reach this host, where images are
    // added: a removal there holds the store's lock here.
    let _removing = match command.removes_images() {
        true => Some(hull_image::Store::open(root)?.exclude_changes()?),
        false => None,
    };
    machine::forward(root, notice, command.forwarded_stdio(), env)
}

/// Runs `command` in this process.
fn execute(command: Command, root: &Path) -> anyhow::Result<u8> {
    let runtime = Runtime::new(root);
    match command {
        Command::Run(args) => run::run(*args, &runtime),
        Command::Create(args) => run::create(*args, &runtime),
        Command::Ps(args) => container_cmd::ps(args, &runtime),
        Command::Logs(args) => container_cmd::logs(args, &runtime),
        Command::Attach(args) => container_cmd::attach(args, &runtime),
        Command::Exec(args) => container_cmd::exec(args, &runtime),
        Command::Cp(args) => container_cmd::cp(args, &runtime),
        Command::Commit(args) => container_cmd::commit(args, root),
        Command::Export(args) => container_cmd::export(args, &runtime),
        Command::Diff(args) => container_cmd::diff(args, &runtime),
        Command::ContainerLayer(args) => container_cmd::container_layer(args, &runtime),
        Command::Top(args) => container_cmd::top(args, &runtime),
        Command::Stats(args) => container_cmd::stats(args, &runtime),
        Command::Stop(args) => container_cmd::stop(args, &runtime),
        Command::Rm(args) => container_cmd::rm(args, &runtime),
        Command::Wait(args) => container_cmd::wait(args, &runtime),
        Command::Start(args) => container_cmd::start(args, &runtime),
        Command::Restart(args) => container_cmd::restart(args, &runtime),
        Command::Kill(args) => container_cmd::kill(args, &runtime),
        Command::Pause(args) => container_cmd::pause(args, &runtime),
        Command::Unpause(args) => container_cmd::unpause(args, &runtime),
        Command::Rename(args) => container_cmd::rename(args, &runtime),
        Command::Update(args) => container_cmd::update(args, &runtime),
        Command::Inspect(args) => container_cmd::inspect(args, &runtime),
        Command::Port(args) => container_cmd::port(args, &runtime),
        Command::Container(ContainerCommand::Prune(args)) => container_cmd::prune(args, &runtime),
        Command::Container(_) => unreachable!("management commands are made canonical first"),
        Command::Compose(args) => compose_cmd::compose(*args, &runtime),
        Command::Network(command) => network_cmd::network(command, &runtime),
        Command::Volume(command) => volume_cmd::volume(command, &runtime),
        Command::System(command) => system_cmd::system(command, &runtime),
        Command::Version(args) => version::version(args, root),
        Command::Info(args) => version::info(args, &runtime),
        Command::Events(args) => events_cmd::events(args, &runtime),
        Command::Build(args) => build_cmd::build(*args, root),
        Command::Builder(command) => build_cmd::builder(command, root),
        Command::BuildStep { request } => build_cmd::build_step(&request, root),
        Command::Pull(args) => image_cmd::pull(args, root),
        Command::Push(args) => image_cmd::push(args, root),
        Command::Images(args) => image_cmd::images(args, root),
        Command::Rmi(args) => image_cmd::rmi(args, root),
        Command::Tag(args) => image_cmd::tag(args, root),
        Command::History(args) => image_cmd::history(args, root),
        Command::Image(ImageCommand::Inspect(args)) => image_cmd::inspect(args, root),
        Command::Image(ImageCommand::Prune(args)) => image_cmd::prune(args, root),
        Command::Image(_) | Command::Buildx(_) => {
            unreachable!("management commands are made canonical first")
        }
        Command::Import(args) => image_cmd::import(args, root),
        Command::Save(args) => image_cmd::save(args, root),
        Command::Load(args) => image_cmd::load(args, root),
        Command::Login(args) => image_cmd::login(args, root),
        Command::Logout(args) => image_cmd::logout(args, root),
        Command::Manifest(command) => image_cmd::manifest(command, root),
        Command::Completion { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hull", &mut script);
            // A reader that stops early (`| head`) is no error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(0)
        }
        Command::TesthostExec { command } => hull_machine::testhost::exec(command),
        Command::Machine(command) => machine::machine(command, root),
    }
}

/// The runtime's warnings as `hull: warning: ...` lines, its other events
/// (`HULL_LOG=debug`) as `hull: LEVEL: ...`.
struct WarningFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for WarningFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::WARN => "warning".to_owned(),
            level => level.as_str().to_ascii_lowercase(),
        };
        write!(writer, "hull: {level}: ")?;
        context
            .field_format()
            .format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_flag_is_spelled_as_dockers() {
        Cli::command().debug_assert();
        for flag in ["-v", "--version", "-V"] {
            let err = Cli::try_parse_from(["hull", flag]).err().expect(flag);
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion, "{flag}");
        }
    }

    #[test]
    fn boolean_flags_take_go_values_but_not_in_the_containers_command() {
        let rewritten = |words: &[&str]| {
            let argv = std::iter::once("hull").chain(words.iter().copied());
            let args = command_line::bool_values(&Cli::command(), argv.map(Into::into)).unwrap();
            args.iter()
                .skip(1)
                .map(|arg| arg.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rewritten(&[
                "run",
                "-dit",
                "--rm=false",
                "alpine",
                "sh",
                "-c",
                "x",
                "--rm=false"
            ]),
            ["run", "-dit", "alpine", "sh", "-c", "x", "--rm=false"]
        );
        assert_eq!(
            rewritten(&["--root", "/r", "ps", "-aq=false", "--no-trunc=true"]),
            ["--root", "/r", "ps", "-a", "--no-trunc"]
        );
        assert_eq!(
            rewritten(&["exec", "-i=0", "web", "ls", "-a=false"]),
            ["exec", "web", "ls", "-a=false"]
        );
        // An option's value is not a flag.
        assert_eq!(
            rewritten(&["run", "--name", "-d=1", "-d=T", "-h=false", "img"]),
            ["run", "--name", "-d=1", "-d", "-h=false", "img"]
        );
        assert_eq!(
            rewritten(&["compose", "up", "-d=false", "--build=true"]),
            ["compose", "up", "--build"]
        );
    }

    #[test]
    fn reading_networks_needs_no_machine() {
        use machine::Placement;
        let placement = |words: &[&str]| {
            let argv = std::iter::once("hull").chain(words.iter().copied());
            Cli::try_parse_from(argv)
                .unwrap()
                .command
                .canonical()
                .placement()
        };
        assert_eq!(placement(&["network", "ls"]), Placement::Root);
        assert_eq!(placement(&["network", "inspect", "nope"]), Placement::Root);
        assert_eq!(placement(&["network", "rm", "nope"]), Placement::Vm);
        assert_eq!(placement(&["network", "create", "web"]), Placement::Vm);
    }

    #[test]
    fn failures_exit_1_but_in_run_and_create() {
        let missing: [anyhow::Error; 4] = [
            hull_image::NoSuchImage("nope".into()).into(),
            hull_runtime::Error::NoSuchImage("nope".into()).into(),
            hull_runtime::Error::NoSuchNetwork("nope".into()).into(),
            hull_runtime::Error::NoSuchVolume("nope".into()).into(),
        ];
        for err in missing {
            let err = err.context("cannot remove it");
            assert_eq!(error_code(&err), 1, "{err:#}");
            assert_eq!(run_error_code(&err), HULL_ERROR, "{err:#}");
        }
        let not_found = anyhow::Error::from(hull_runtime::Error::CommandNotFound("x".into()));
        assert_eq!(run_error_code(&not_found), 127);
        assert_eq!(error_code(&anyhow::anyhow!("name in use")), FAILURE);
        assert_eq!(run_error_code(&anyhow::anyhow!("name in use")), HULL_ERROR);
    }
}
