//! `hull export`: a container's root file system as a tar, on
//! stdout or into a file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use hull_runtime::Runtime;

#[derive(Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Container name or ID.
    container: String,
}

impl ExportArgs {
    /// The container it exports.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The file it writes, if not stdout.
    pub fn output(&self) -> Option<&Path> {
        self.output.as_deref()
    }

    /// Refuses a terminal or a device for the tar, here, before the
    /// command runs (in the hull machine, stdout is no terminal).
    pub fn check_output(&self) -> Result<()> {
        crate::output_file::check(self.output())
    }
}

pub fn export(args: ExportArgs, runtime: &Runtime) -> Result<u8> {
    args.check_output()?;
    match &args.output {
        Some(path) => {
            crate::output_file::write_whole(path, |out| Ok(runtime.export(&args.container, out)?))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            runtime.export(&args.container, &mut out)?;
            out.flush()?;
        }
    }
    Ok(0)
}
