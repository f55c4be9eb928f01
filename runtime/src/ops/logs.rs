//! `logs`: a container's output, from its log, followed as it grows.

use std::collections::VecDeque;
use std::time::Duration;

use crate::container::{self, Container, Status};
use crate::container_log::{LogEntry, LogReader};
use crate::error::Result;
use crate::Runtime;

/// How often a followed log is looked at for more output.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// Which of a container's log to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// Go on reading as the container writes, until it exits.
    pub follow: bool,
    /// Only the last N entries kept so far.
    pub tail: Option<usize>,
}

/// A container's log entries, oldest first; followed, the iterator waits
/// for more until the container has exited.
pub struct Logs {
    container: Container,
    reader: LogReader,
    pending: VecDeque<LogEntry>,
    follow: bool,
}

impl Iterator for Logs {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Result<LogEntry>> {
        loop {
            if let Some(entry) = self.pending.pop_front() {
                return Some(Ok(entry));
            }
            if !self.follow {
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
        let running = self.container.state()?.status != Status::Exited;
        self.pending.extend(self.reader.read_new()?);
        if !running {
            self.follow = false;
        } else if self.pending.is_empty() {
            std::thread::sleep(FOLLOW_INTERVAL);
        }
        Ok(self.follow || !self.pending.is_empty())
    }
}

impl Runtime {
    /// The log of the container `name`, as `options` ask.
    pub fn logs(&self, name: &str, options: LogsOptions) -> Result<Logs> {
        let container = container::find(&self.root, name)?;
        let (reader, mut entries) = LogReader::open(&container.log_path())?;
        if let Some(tail) = options.tail {
            entries.drain(..entries.len().saturating_sub(tail));
        }
        Ok(Logs {
            container,
            reader,
            pending: entries.into(),
            follow: options.follow,
        })
    }
}
