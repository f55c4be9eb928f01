//! `hull logs`: a container's output, from its log.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::container::{self, Status};
use crate::container_log::{Entry, LogReader};
use crate::state::StateRoot;

/// How often `logs -f` looks for more output.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

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

pub fn logs(args: LogsArgs, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, &args.container)?;
    let (mut reader, mut entries) = LogReader::open(&container.log_path())?;
    if let Some(tail) = args.tail {
        entries.drain(..entries.len().saturating_sub(tail));
    }
    print(&entries, args.timestamps);
    if !args.follow {
        return Ok(0);
    }
    loop {
        // The state first: output written before the exit is read below.
        let running = container.state()?.status != Status::Exited;
        print(&reader.read_new()?, args.timestamps);
        if !running {
            return Ok(0);
        }
        std::thread::sleep(FOLLOW_INTERVAL);
    }
}

fn print(entries: &[Entry], timestamps: bool) {
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    for entry in entries {
        let out: &mut dyn Write = if entry.stream == "stderr" {
            &mut stderr
        } else {
            &mut stdout
        };
        let _ = match timestamps {
            true => write!(out, "{} {}", entry.time, entry.log),
            false => write!(out, "{}", entry.log),
        };
    }
    let _ = stdout.flush();
}
