//! `hull system prune`: removes what nothing uses any more, as Docker's
//! does: exited containers, networks without containers (with the host
//! bridges and NAT rules behind them, the default network's too while it is
//! idle) and untagged images (with `--all`, every image no container uses).

use anyhow::Result;
use clap::Subcommand;
use hull_runtime::Runtime;

use crate::{container_cmd, image_cmd, network_cmd};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Remove exited containers, unused networks and untagged images.
    // With `hull image prune`'s flags: -a/--all (every unused image), -f.
    Prune(image_cmd::PruneArgs),
}

pub fn system(command: SystemCommand, runtime: &Runtime) -> Result<u8> {
    match command {
        SystemCommand::Prune(args) => {
            container_cmd::prune(container_cmd::PruneArgs { force: args.force }, runtime)?;
            network_cmd::prune(runtime)?;
            image_cmd::prune(args, runtime.root())
        }
    }
}
