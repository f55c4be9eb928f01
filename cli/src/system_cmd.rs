//! `hull system prune`: removes what nothing uses any more, as Docker's
//! does: exited containers, networks without containers (with the host
//! bridges and NAT rules behind them, the default network's too while it is
//! idle) and untagged images (with `--all`, every image no container uses).

use anyhow::Result;
use clap::Subcommand;
use hull_runtime::Runtime;

use crate::{container_cmd, image_cmd, network_cmd, prompt};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Remove exited containers, unused networks and untagged images.
    // With `hull image prune`'s flags: -a/--all (every unused image), -f.
    Prune(image_cmd::PruneArgs),
}

pub fn system(command: SystemCommand, runtime: &Runtime) -> Result<u8> {
    match command {
        SystemCommand::Prune(args) => {
            let images = match args.all {
                true => "all images without at least one container associated to them",
                false => "all dangling images",
            };
            let question = format!(
                "WARNING! This will remove:\n  - all stopped containers\n  - all networks not \
                 used by at least one container\n  - {images}"
            );
            if !args.force && !prompt::confirm(&question)? {
                return Ok(0);
            }
            container_cmd::prune(container_cmd::PruneArgs { force: true }, runtime)?;
            network_cmd::prune(runtime)?;
            let all = args.all;
            image_cmd::prune(image_cmd::PruneArgs { all, force: true }, runtime.root())
        }
    }
}
