//! BuildKit's plain progress, for logs and pipes.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use hull_builder::{Event, Progress};

/// BuildKit's plain progress: `#N name`, the step's output lines as
/// `#N 1.234 line`, then `#N CACHED` or `#N DONE 1.2s`.
pub struct PlainProgress {
    quiet: bool,
    out: std::io::Stderr,
    started: BTreeMap<usize, Instant>,
    /// A step's output not yet ended by a newline.
    partial: BTreeMap<usize, Vec<u8>>,
}

impl PlainProgress {
    pub fn new(quiet: bool) -> PlainProgress {
        PlainProgress {
            quiet,
            out: std::io::stderr(),
            started: BTreeMap::new(),
            partial: BTreeMap::new(),
        }
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn elapsed(&self, id: usize) -> Duration {
        self.started
            .get(&id)
            .map_or(Duration::ZERO, Instant::elapsed)
    }

    fn flush_partial(&mut self, id: usize) {
        if let Some(rest) = self.partial.remove(&id).filter(|rest| !rest.is_empty()) {
            let text = format!(
                "#{id} {:.3} {}",
                self.elapsed(id).as_secs_f64(),
                String::from_utf8_lossy(&rest)
            );
            self.line(&text);
        }
    }
}

impl Progress for PlainProgress {
    fn event(&mut self, event: Event<'_>) {
        // -q shows a failing step's output only, as Docker does.
        if self.quiet && !matches!(event, Event::Failed { .. }) {
            return;
        }
        match event {
            Event::Started { id, name } => {
                self.started.insert(id, Instant::now());
                self.line(&format!("#{id} {name}"));
            }
            Event::Cached { id } => self.line(&format!("#{id} CACHED")),
            Event::Output { id, data } => {
                let mut buffer = self.partial.remove(&id).unwrap_or_default();
                buffer.extend_from_slice(data);
                let elapsed = self.elapsed(id).as_secs_f64();
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line[..end]);
                    self.line(&format!(
                        "#{id} {elapsed:.3} {}",
                        text.trim_end_matches('\r')
                    ));
                }
                self.partial.insert(id, buffer);
            }
            Event::Note { id, text } => self.line(&format!("#{id} {text}")),
            Event::Done { id, elapsed } => {
                self.flush_partial(id);
                self.line(&format!("#{id} DONE {:.1}s", elapsed.as_secs_f64()));
            }
            Event::Failed { id, error } => {
                self.flush_partial(id);
                self.line(&format!("#{id} ERROR: {error}"));
            }
        }
        let _ = self.out.flush();
    }
}
