//! `hull diff`: what a container changed in its root file system,
//! a line per path as Docker prints it (`A /path`, `C /path`, `D /path`).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use hull_runtime::Runtime;

#[derive(Args)]
pub struct DiffArgs {
    /// Container name or ID.
    container: String,
}

impl DiffArgs {
    /// The container it lists the changes of.
    pub fn container(&self) -> &str {
        &self.container
    }
}

pub fn diff(args: DiffArgs, runtime: &Runtime) -> Result<u8> {
    let changes = runtime.diff(&args.container)?;
    let mut out = std::io::stdout().lock();
    for change in changes {
        writeln!(out, "{} {}", change.kind.letter(), change.path)?;
    }
    Ok(0)
}
