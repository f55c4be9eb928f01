//! BuildKit's plain progress, for logs and pipes.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use hull_builder::{Event, Progress};

use crate::report::escaped;

/// BuildKit's plain progress: `#N name`, the step's output lines as
/// `#N 1.234 line`, then `#N CACHED` or `#N DONE 1.2s`. A step's name,
/// notes and error come from the Dockerfile, which may hold any bytes:
/// their control characters are escaped (its output is the program's, as
/// BuildKit shows it).
pub struct PlainProgress<W = std::io::Stderr> {
    quiet: bool,
    out: W,
    started: BTreeMap<usize, Instant>,
    /// A step's output not yet ended by a newline.
    partial: BTreeMap<usize, Vec<u8>>,
}

impl PlainProgress {
    pub fn new(quiet: bool) -> PlainProgress {
        PlainProgress::to(std::io::stderr(), quiet)
    }
}

impl<W: Write> PlainProgress<W> {
    fn to(out: W, quiet: bool) -> PlainProgress<W> {
        PlainProgress {
            quiet,
            out,
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

impl<W: Write + Send> Progress for PlainProgress<W> {
    fn event(&mut self, event: Event<'_>) {
        // -q shows a failing step's output only, as Docker does.
        if self.quiet && !matches!(event, Event::Failed { .. }) {
            return;
        }
        match event {
            Event::Started { id, name } => {
                self.started.insert(id, Instant::now());
                self.line(&format!("#{id} {}", escaped(name)));
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
            Event::Note { id, text } => self.line(&format!("#{id} {}", escaped(text))),
            Event::Done { id, elapsed } => {
                self.flush_partial(id);
                self.line(&format!("#{id} DONE {:.1}s", elapsed.as_secs_f64()));
            }
            Event::Failed { id, error } => {
                self.flush_partial(id);
                self.line(&format!("#{id} ERROR: {}", escaped(error)));
            }
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_dockerfile_wrote_cannot_drive_the_terminal() {
        let mut progress = PlainProgress::to(Vec::new(), false);
        let name = "[2/2] COPY a \"/\u{1b}]0;title\u{7}\0x\"";
        progress.event(Event::Started { id: 2, name });
        progress.event(Event::Note {
            id: 2,
            text: "note \u{1b}[2J",
        });
        progress.event(Event::Failed {
            id: 2,
            error: "bad \u{1b}[31m",
        });
        let shown = String::from_utf8(progress.out).unwrap();
        assert_eq!(
            shown,
            "#2 [2/2] COPY a \"/\\u{1b}]0;title\\u{7}\\0x\"\n#2 note \\u{1b}[2J\n\
             #2 ERROR: bad \\u{1b}[31m\n"
        );
    }
}
