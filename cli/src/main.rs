//! `hull`: Docker-style container commands, each container in its own microVM.

mod assets;
mod attach_server;
mod boot;
mod child_process;
mod container;
mod container_cmd;
mod container_log;
mod detach;
mod detach_keys;
mod fsutil;
mod image_cmd;
mod initramfs;
mod kvm;
mod machine;
mod monitor;
mod network;
mod network_cmd;
mod process_config;
mod restart_policy;
mod run;
mod scratch;
mod session;
mod signals;
mod state;
mod system_cmd;
mod table;
mod terminal;
mod testhost;
mod units;
mod version;
mod vm_process;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for errors of hull itself, as Docker uses it.
const HULL_ERROR: u8 = 125;

#[derive(Parser)]
#[command(
    name = "hull",
    version,
    about = "Run containers, each in its own KVM microVM"
)]
struct Cli {
    /// Directory holding hull's state (containers, caches).
    #[arg(long, global = true, env = "HULL_ROOT", default_value = state::DEFAULT_ROOT)]
    root: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container.
    Run(Box<run::RunArgs>),

    /// List containers.
    Ps(container_cmd::PsArgs),

    /// Show a container's output.
    Logs(container_cmd::LogsArgs),

    /// Connect this terminal to a running container's process.
    Attach(container_cmd::AttachArgs),

    /// Run another command in a running container.
    Exec(container_cmd::ExecArgs),

    /// Copy files between a running container and the host.
    Cp(container_cmd::CpArgs),

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

    /// Rename a container.
    Rename(container_cmd::RenameArgs),

    /// Show low-level information on containers as JSON.
    Inspect(container_cmd::InspectArgs),

    /// List a container's published ports.
    Port(container_cmd::PortArgs),

    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),

    /// Manage networks.
    #[command(subcommand)]
    Network(network_cmd::NetworkCommand),

    /// Manage hull as a whole.
    #[command(subcommand)]
    System(system_cmd::SystemCommand),

    /// Show hull's version, the guest kernel it uses and the KVM it found.
    Version,

    /// Show where hull runs VMs on this host and why, and the hull
    /// machine's state.
    Info,

    /// Manage the hull machine, where containers run on hosts whose KVM
    /// cannot run hull's guest.
    #[command(subcommand)]
    Machine(machine::MachineCommand),

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

    /// Manage images.
    #[command(subcommand)]
    Image(image_cmd::ImageCommand),

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

    /// Hold a detached container's VM (started by `run -d`).
    #[command(name = "__monitor", hide = true)]
    Monitor { id: String },

    /// Run one VM from a JSON config (the VMM process behind a container).
    #[command(name = "__vmm", hide = true)]
    Vmm { config: PathBuf },

    /// Run a command inside the KVM test host (QEMU TCG with nested SVM) and
    /// pass its stdio and exit code through. Used by tests and by `hull`
    /// itself when this host's KVM cannot run hull's guest.
    #[command(name = "__testhost-exec", hide = true)]
    TesthostExec(testhost::ExecArgs),

    /// Hold the hull machine (started by the first command that needs it,
    /// which passes the machine's lock on as an open file).
    #[command(name = "__machine", hide = true)]
    MachineSupervisor {
        #[arg(long)]
        lock_fd: std::os::fd::RawFd,
    },
}

impl Command {
    /// Where the command runs on a host whose VMs need the hull machine.
    fn placement(&self) -> machine::Placement {
        use machine::Placement;
        match self {
            Command::Version
            | Command::Info
            | Command::Machine(_)
            | Command::Monitor { .. }
            | Command::Vmm { .. }
            | Command::TesthostExec(_)
            | Command::MachineSupervisor { .. } => Placement::Host,
            // They add to the image store or reach registries: here, where
            // image layers' device nodes can be made (the machine's 9p share
            // cannot) and registries (even on this host's loopback) and
            // credentials are reached as the user does.
            Command::Pull(_)
            | Command::Push(_)
            | Command::Import(_)
            | Command::Load(_)
            | Command::Login(_)
            | Command::Logout(_) => Placement::Host,
            // They start VMs, wait for them, or change their networks.
            Command::Run(_)
            | Command::Start(_)
            | Command::Restart(_)
            | Command::Wait(_)
            | Command::Network(_)
            | Command::System(_) => Placement::Vm,
            _ => Placement::Root,
        }
    }

    /// Whether the command deletes from the image store.
    fn removes_images(&self) -> bool {
        matches!(
            self,
            Command::Rmi(_)
                | Command::Image(image_cmd::ImageCommand::Rm(_))
                | Command::Image(image_cmd::ImageCommand::Prune(_))
                | Command::System(_)
        )
    }

    /// What of this terminal the command gets when it runs in the machine.
    fn forwarded_stdio(&self) -> machine::ForwardedStdio {
        match self {
            Command::Run(args) => args.attached_stdio().map(Into::into).unwrap_or_default(),
            Command::Exec(args) => args.stdio().into(),
            Command::Attach(args) => machine::ForwardedStdio {
                stdin: args.takes_stdin(),
                tty: true,
            },
            _ => machine::ForwardedStdio::default(),
        }
    }
}

/// `hull container SUBCOMMAND`.
#[derive(Subcommand)]
enum ContainerCommand {
    /// Remove all stopped containers.
    Prune(container_cmd::PruneArgs),
    /// List containers.
    Ls(container_cmd::PsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("HULL_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let root = state::StateRoot::new(cli.root);
    let result = match machine::route(&root, cli.command.placement()) {
        Ok(machine::Route::Here(_machine_down)) => execute(cli.command, &root),
        Ok(machine::Route::Machine { notice }) => forward(&cli.command, &root, &notice),
        Err(err) => Err(err),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("hull: {err:#}");
            ExitCode::from(HULL_ERROR)
        }
    }
}

/// Runs this command line in the hull machine.
fn forward(command: &Command, root: &state::StateRoot, notice: &str) -> anyhow::Result<u8> {
    let env = match command {
        Command::Run(args) => args.prepare_for_machine(root)?,
        _ => Vec::new(),
    };
    // The machine's store locks do not reach this host, where images are
    // added: a removal there holds the store's lock here.
    let _removing = match command.removes_images() {
        true => Some(hull_image::Store::open(root.path())?.exclude_changes()?),
        false => None,
    };
    machine::forward(root, notice, command.forwarded_stdio(), env)
}

/// Runs `command` in this process.
fn execute(command: Command, root: &state::StateRoot) -> anyhow::Result<u8> {
    match command {
        Command::Run(args) => run::run(*args, root),
        Command::Ps(args) => container_cmd::ps(args, root),
        Command::Logs(args) => container_cmd::logs(args, root),
        Command::Attach(args) => container_cmd::attach(args, root),
        Command::Exec(args) => container_cmd::exec(args, root),
        Command::Cp(args) => container_cmd::cp(args, root),
        Command::Top(args) => container_cmd::top(args, root),
        Command::Stats(args) => container_cmd::stats(args, root),
        Command::Stop(args) => container_cmd::stop(args, root),
        Command::Rm(args) => container_cmd::rm(args, root),
        Command::Wait(args) => container_cmd::wait(args, root),
        Command::Start(args) => container_cmd::start(args, root),
        Command::Restart(args) => container_cmd::restart(args, root),
        Command::Kill(args) => container_cmd::kill(args, root),
        Command::Rename(args) => container_cmd::rename(args, root),
        Command::Inspect(args) => container_cmd::inspect(args, root),
        Command::Port(args) => container_cmd::port(args, root),
        Command::Container(ContainerCommand::Prune(args)) => container_cmd::prune(args, root),
        Command::Container(ContainerCommand::Ls(args)) => container_cmd::ps(args, root),
        Command::Network(command) => network_cmd::network(command, root),
        Command::System(command) => system_cmd::system(command, root),
        Command::Monitor { id } => monitor::monitor(&id, root),
        Command::Version => version::print(root),
        Command::Pull(args) => image_cmd::pull(args, root.path()),
        Command::Push(args) => image_cmd::push(args, root.path()),
        Command::Images(args) => image_cmd::images(args, root.path()),
        Command::Rmi(args) => image_cmd::rmi(args, root.path()),
        Command::Tag(args) => image_cmd::tag(args, root.path()),
        Command::Image(command) => image_cmd::image(command, root.path()),
        Command::Import(args) => image_cmd::import(args, root.path()),
        Command::Save(args) => image_cmd::save(args, root.path()),
        Command::Load(args) => image_cmd::load(args, root.path()),
        Command::Login(args) => image_cmd::login(args, root.path()),
        Command::Logout(args) => image_cmd::logout(args, root.path()),
        Command::Vmm { config } => run_vmm(&config),
        Command::TesthostExec(args) => testhost::exec(args),
        Command::Info => version::info(root),
        Command::Machine(command) => machine::machine(command, root),
        Command::MachineSupervisor { lock_fd } => machine::supervise(root, lock_fd),
    }
}

fn run_vmm(config_path: &std::path::Path) -> anyhow::Result<u8> {
    use anyhow::Context;
    let json = std::fs::read(config_path)
        .with_context(|| format!("cannot read VM config {}", config_path.display()))?;
    let config: hull_vmm::VmConfig = serde_json::from_slice(&json)
        .with_context(|| format!("invalid VM config {}", config_path.display()))?;
    hull_vmm::run(config)?;
    Ok(0)
}
