//! `hull`: Docker-style container commands, each container in its own microVM.

mod assets;
mod fsutil;
mod initramfs;
mod kvm;
mod run;
mod scratch;
mod session;
mod state;
mod testhost;
mod version;
mod vm_process;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for errors of hull itself, as Docker uses it.
const HULL_ERROR: u8 = 125;

#[derive(Parser)]
#[command(name = "hull", version, about = "Run containers, each in its own KVM microVM")]
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
    Run(run::RunArgs),

    /// Show hull's version, the guest kernel it uses and the KVM it found.
    Version,

    /// Run one VM from a JSON config (the VMM process behind a container).
    #[command(name = "__vmm", hide = true)]
    Vmm { config: PathBuf },

    /// Run a command inside the KVM test host (QEMU TCG with nested SVM) and
    /// pass its stdio and exit code through. Used by tests and by `hull`
    /// itself when this host's KVM cannot run hull's guest.
    #[command(name = "__testhost-exec", hide = true)]
    TesthostExec(testhost::ExecArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("HULL_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let root = state::StateRoot::new(cli.root);
    let result = match cli.command {
        Command::Run(args) => run::run(args, &root),
        Command::Version => version::print(),
        Command::Vmm { config } => run_vmm(&config),
        Command::TesthostExec(args) => testhost::exec(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("hull: {err:#}");
            ExitCode::from(HULL_ERROR)
        }
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
