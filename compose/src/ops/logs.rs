//! The logs of several containers as one stream (`logs`, and attached
//! `up`): a thread reads each container's log and sends its entries on,
//! tagged with the container's name.

use std::sync::mpsc::{self, Receiver};

use hull_runtime::{LogEntry, LogsOptions, Runtime};

/// An entry of one container's log, or its end.
#[derive(Debug, Clone)]
pub enum LogLine {
    /// What the container wrote.
    Entry {
        /// The container's name.
        container: String,
        /// The entry.
        entry: LogEntry,
    },
    /// The container's log ended (it exited, when followed), or could
    /// not be read.
    End {
        /// The container's name.
        container: String,
        /// Why it could not be read, if so.
        error: Option<String>,
    },
}

/// The logs of `containers` (names) as `options` ask, interleaved as they
/// come; the channel closes once every log has ended.
pub fn follow(runtime: &Runtime, containers: &[String], options: LogsOptions) -> Receiver<LogLine> {
    let (sender, receiver) = mpsc::channel();
    for name in containers {
        let (runtime, name, sender) = (runtime.clone(), name.clone(), sender.clone());
        std::thread::spawn(move || {
            let error = match runtime.logs(&name, options) {
                Ok(logs) => logs
                    .into_iter()
                    .try_for_each(|entry| {
                        let line = LogLine::Entry {
                            container: name.clone(),
                            entry: entry?,
                        };
                        // A receiver gone means the caller stopped reading.
                        let _ = sender.send(line);
                        Ok::<(), hull_runtime::Error>(())
                    })
                    .err(),
                Err(err) => Some(err),
            };
            let _ = sender.send(LogLine::End {
                container: name,
                error: error.map(|err| err.to_string()),
            });
        });
    }
    receiver
}
