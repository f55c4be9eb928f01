//! `hull logs`: a container's output, from its log.

use std::io::Write;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;
use hull_runtime::{LogsOptions, Runtime};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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

/// A point in time as Docker's `--since`/`--until` take it: RFC 3339,
/// Unix seconds (with a fraction), or a duration before now (`10m`,
/// `1h30m`, `90s`).
pub fn parse_time(value: &str) -> Result<SystemTime, String> {
    if let Ok(time) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(time.into());
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0)));
    }
    let ago = duration(value).ok_or_else(|| {
        format!("{value:?} is not a time: give 2026-01-02T15:04:05Z, Unix seconds, or 10m, 1h30m")
    })?;
    Ok(SystemTime::now() - ago)
}

/// `1h30m`, `10m`, `90s`, `250ms`: Go's duration syntax, whole numbers.
fn duration(value: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .filter(|&at| at > 0)?;
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => Duration::from_secs(3600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            _ => return None,
        };
        total += unit * u32::try_from(number).ok()?;
        rest = &rest[unit_len..];
    }
    (!value.is_empty()).then_some(total)
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
        let _ = match timestamps {
            true => write!(out, "{} {}", entry.time, entry.log),
            false => write!(out, "{}", entry.log),
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
    fn durations_read_as_go_writes_them() {
        assert_eq!(duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "m", "10", "10x", "1.5h"] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339_unix_seconds_or_ago() {
        let at = parse_time("2026-01-02T15:04:05Z").unwrap();
        assert_eq!(
            at.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_767_366_245
        );
        assert_eq!(parse_time("1767366245").unwrap(), at);
        let ago = SystemTime::now()
            .duration_since(parse_time("10m").unwrap())
            .unwrap();
        assert!((599..=601).contains(&ago.as_secs()), "{ago:?}");
        assert!(parse_time("yesterday").is_err());
        assert!(matches!(parse_tail("all"), Ok(Tail(None))));
        assert!(matches!(parse_tail("5"), Ok(Tail(Some(5)))));
    }
}
