//! What a build reports as it goes, for a front end to show: steps
//! numbered as BuildKit numbers them (`#N`), each cached or run, the
//! output of `RUN`s, the end.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One thing a build reports.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Step `id` starts: `name` is what it shows (`[builder 2/4] RUN make`).
    Started { id: usize, name: &'a str },
    /// Step `id` came from the build cache.
    Cached { id: usize },
    /// Output of step `id`'s command (stdout and stderr both).
    Output { id: usize, data: &'a [u8] },
    /// A line about step `id` (`writing image sha256:...`).
    Note { id: usize, text: &'a str },
    /// Step `id` is done.
    Done { id: usize, elapsed: Duration },
    /// Step `id` failed: `error` says why.
    Failed { id: usize, error: &'a str },
}

/// Where a build's events go.
pub trait Progress: Send {
    fn event(&mut self, event: Event<'_>);
}

/// A [`Progress`] shared by the build and the threads of its steps.
pub type SharedProgress = Arc<Mutex<dyn Progress>>;

/// Sends `event` to `progress`.
pub fn report(progress: &SharedProgress, event: Event<'_>) {
    progress
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .event(event);
}

/// A writer whose bytes are step `id`'s output.
pub struct OutputWriter {
    pub progress: SharedProgress,
    pub id: usize,
}

impl Write for OutputWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        report(&self.progress, Event::Output { id: self.id, data });
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
