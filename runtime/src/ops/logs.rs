//! `logs`: a container's output, from its log, followed as it grows.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::container::{self, Container, Status};
use crate::container_log::{LogDriver, LogEntry, LogReader};
use crate::error::{Error, Result};
use crate::Runtime;

/// How often a followed log is looked at for more output.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// Which of a container's log to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// Go on reading as the container writes, until it exits (or `until`).
    pub follow: bool,
    /// Only the last N entries kept so far (of those in the time window).
    pub tail: Option<usize>,
    /// Only entries written at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries written before this time.
    pub until: Option<SystemTime>,
}

impl LogsOptions {
    /// Whether `entry` falls in the time window.
    fn admits(&self, entry: &LogEntry) -> bool {
        let Some(time) = written_at(entry) else {
            return true;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }

    /// Whether no entry written from now on falls in the time window.
    fn window_closed(&self) -> bool {
        self.until.is_some_and(|until| SystemTime::now() >= until)
    }
}

/// When `entry` was written.
fn written_at(entry: &LogEntry) -> Option<SystemTime> {
    let time = OffsetDateTime::parse(&entry.time, &Rfc3339).ok()?;
    Some(SystemTime::from(time))
}

/// A container's log entries, oldest first; followed, the iterator waits
/// for more until the container has exited.
pub struct Logs {
    container: Container,
    reader: LogReader,
    pending: VecDeque<LogEntry>,
    options: LogsOptions,
}

impl Iterator for Logs {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Result<LogEntry>> {
        loop {
            if let Some(entry) = self.pending.pop_front() {
                return Some(Ok(entry));
            }
            if !self.options.follow {
                return None;
            }
            match self.read_more() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

impl Logs {
    /// Waits for more output; false once the container has exited and all
    /// it wrote is read.
    fn read_more(&mut self) -> Result<bool> {
        // The state first: output written before the exit is read below.
        // A container removed meanwhile (`rm -f`) has ended too; what it
        // wrote is still read from the open log.
        let running = match self.container.state() {
            Ok(state) => state.status != Status::Exited,
            Err(_) if !self.container.exists() => false,
            Err(err) => return Err(err.into()),
        };
        let options = self.options;
        let new = match self.reader.read_new() {
            Err(_) if !self.container.exists() => Vec::new(),
            new => new?,
        };
        self.pending
            .extend(new.into_iter().filter(|entry| options.admits(entry)));
        if !running || options.window_closed() {
            self.options.follow = false;
        } else if self.pending.is_empty() {
            std::thread::sleep(FOLLOW_INTERVAL);
        }
        Ok(self.options.follow || !self.pending.is_empty())
    }
}

impl Runtime {
    /// The log of the container `name`, as `options` ask.
    pub fn logs(&self, name: &str, options: LogsOptions) -> Result<Logs> {
        let container = container::find(&self.root, name)?;
        if container.config.log_driver == LogDriver::None {
            return Err(Error::invalid(format!(
                "container {name} has the none log driver: it keeps no log to read"
            )));
        }
        let (reader, entries) = LogReader::open(&container.log_path())?;
        let mut entries: Vec<LogEntry> = entries
            .into_iter()
            .filter(|entry| options.admits(entry))
            .collect();
        if let Some(tail) = options.tail {
            entries.drain(..entries.len().saturating_sub(tail));
        }
        Ok(Logs {
            container,
            reader,
            pending: entries.into(),
            options,
        })
    }
}
