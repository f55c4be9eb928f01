//! `hull logs`: a container's output, from its log.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Result;
use clap::Args;
use hull_runtime::{LogsOptions, Runtime};

use crate::times::parse_time;

/// `--tail`: a number of lines, or all of them (`None`).
#[derive(Debug, Clone, Copy)]
pub struct Tail(pub Option<usize>);

/// Parses `--tail`'s value: a number of lines or `all`.
pub fn parse_tail(value: &str) -> Result<Tail, String> {
    match value {
        "all" => Ok(Tail(None)),
        lines => lines
            .parse()
            .map(|lines| Tail(Some(lines)))
            .map_err(|_| format!("{value:?} is not a number of lines or \"all\"")),
    }
}

/// Which lines of a log to print, and how: the flags `hull logs` and
/// `hull compose logs` share.
#[derive(Args)]
pub struct LogSelection {
    /// Keep printing output as it comes, until the container exits.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each container ("all": every line).
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_tail)]
    tail: Option<Tail>,
    /// Only lines written since: an RFC 3339 time, Unix seconds, or a
    /// duration back from now (10m, 1h30m).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<SystemTime>,
    /// Only lines written before, as --since takes it.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<SystemTime>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,
}

impl LogSelection {
    /// The runtime's options for these flags.
    pub fn options(&self) -> LogsOptions {
        LogsOptions {
            follow: self.follow,
            tail: self.tail.and_then(|Tail(lines)| lines),
            since: self.since,
            until: self.until,
        }
    }
}

#[derive(Args)]
pub struct LogsArgs {
    #[command(flatten)]
    selection: LogSelection,
    /// Prefix each line with the attributes a log driver attaches to it
    /// and a space, as Docker prints them: hull attaches none.
    #[arg(long)]
    details: bool,
    /// Container name or ID.
    container: String,
}

impl LogsArgs {
    /// Whether it follows the log (`-f`).
    pub fn follows(&self) -> bool {
        self.selection.follow
    }
}

pub fn logs(args: LogsArgs, runtime: &Runtime) -> Result<u8> {
    let LogSelection {
        follow, timestamps, ..
    } = args.selection;
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    for entry in runtime.logs(&args.container, args.selection.options())? {
        let entry = entry?;
        let out: &mut dyn Write = match entry.is_stderr() {
            true => &mut stderr,
            false => &mut stdout,
        };
        let details = match args.details {
            true => " ",
            false => "",
        };
        let _ = match timestamps {
            true => write!(out, "{} {details}{}", entry.time, entry.log),
            false => write!(out, "{details}{}", entry.log),
        };
        if follow {
            let _ = out.flush();
        }
    }
    let _ = stdout.flush();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_a_number_or_all() {
        assert!(matches!(parse_tail("all"), Ok(Tail(None))));
        assert!(matches!(parse_tail("5"), Ok(Tail(Some(5)))));
        assert!(parse_tail("some").is_err());
    }
}
