//! `hull system prune`: removes what nothing uses any more, as Docker's
//! does: exited containers, networks without containers (with the host
//! bridges and NAT rules behind them, the default network's too while it is
//! idle) and untagged images (with `--all`, every image no container uses).

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::state::StateRoot;
use crate::{container_cmd, image_cmd, network_cmd};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Remove exited containers, unused networks and untagged images.
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not just untagged ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation (hull never asks; accepted for Docker
    /// compatibility).
    #[arg(short, long)]
    force: bool,
}

pub fn system(command: SystemCommand, root: &StateRoot) -> Result<u8> {
    match command {
        SystemCommand::Prune(args) => {
            container_cmd::prune(container_cmd::PruneArgs { force: args.force }, root)?;
            network_cmd::prune(root)?;
            image_cmd::prune(
                image_cmd::PruneArgs {
                    all: args.all,
                    force: args.force,
                },
                root.path(),
            )
        }
    }
}
