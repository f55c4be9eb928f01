//! `hull logs`: a container's output, from its log.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use hull_runtime::{LogsOptions, Runtime};

#[derive(Args)]
pub struct LogsArgs {
    /// Keep printing output as it comes, until the container exits.
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<usize>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    timestamps: bool,
    /// Container name or ID.
    container: String,
}

impl LogsArgs {
    /// Whether it follows the log (`-f`).
    pub fn follows(&self) -> bool {
        self.follow
    }
}

pub fn logs(args: LogsArgs, runtime: &Runtime) -> Result<u8> {
    let options = LogsOptions {
        follow: args.follow,
        tail: args.tail,
    };
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    for entry in runtime.logs(&args.container, options)? {
        let entry = entry?;
        let out: &mut dyn Write = match entry.is_stderr() {
            true => &mut stderr,
            false => &mut stdout,
        };
        let _ = match args.timestamps {
            true => write!(out, "{} {}", entry.time, entry.log),
            false => write!(out, "{}", entry.log),
        };
        if args.follow {
            let _ = out.flush();
        }
    }
    let _ = stdout.flush();
    Ok(0)
}
