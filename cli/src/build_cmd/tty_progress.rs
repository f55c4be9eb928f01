//! BuildKit's tty progress: one block, redrawn in place as the build goes
//! (and every tick, so a silent step's time still moves):
//!
//! ```text
//! [+] Building 4.2s (3/4)
//!  => CACHED [1/4] FROM docker.io/library/alpine           0.0s
//!  => [2/4] COPY app.py /app/                              0.1s
//!  => [3/4] RUN pip install -r requirements.txt            3.9s
//!  => => # Collecting flask
//!  => => # Downloading flask-3.0.0-py3-none-any.whl
//! ```
//!
//! A finished step folds to its one line; a running one shows its last
//! output lines under it. A failed step's last lines stay under the block,
//! as BuildKit leaves them.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Stderr, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hull_builder::{Event, Progress};

/// Output lines shown under a running step.
const TAIL_LINES: usize = 6;
/// Output lines of a failed step shown after the block.
const FAILED_LINES: usize = 20;
/// How often the block is redrawn while nothing happens.
const TICK: Duration = Duration::from_millis(200);

/// A build's progress on a terminal; dropping it draws the block a last
/// time.
pub struct TtyProgress {
    screen: Arc<Mutex<Screen>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl TtyProgress {
    /// Draws on stderr, `width` columns wide.
    pub fn new(width: usize) -> TtyProgress {
        let screen = Arc::new(Mutex::new(Screen::new(width)));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (screen, stop) = (Arc::clone(&screen), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("build progress".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        lock(&screen).draw();
                    }
                })
                .ok()
        };
        TtyProgress {
            screen,
            stop,
            ticker,
        }
    }
}

impl Progress for TtyProgress {
    fn event(&mut self, event: Event<'_>) {
        let mut screen = lock(&self.screen);
        screen.steps.apply(event, Instant::now());
        screen.draw();
        if let Event::Failed { id, .. } = event {
            screen.leave_failure(id);
        }
    }
}

impl Drop for TtyProgress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        lock(&self.screen).draw();
    }
}

fn lock(screen: &Mutex<Screen>) -> std::sync::MutexGuard<'_, Screen> {
    screen.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The block on the terminal: what it shows and how many lines it took.
struct Screen {
    out: Stderr,
    width: usize,
    steps: Steps,
    drawn: usize,
    /// Set once a failure was printed under the block, which then stays.
    frozen: bool,
}

impl Screen {
    fn new(width: usize) -> Screen {
        Screen {
            out: std::io::stderr(),
            width,
            steps: Steps::new(Instant::now()),
            drawn: 0,
            frozen: false,
        }
    }

    /// Replaces the block drawn last with the current one.
    fn draw(&mut self) {
        if self.frozen {
            return;
        }
        let lines = self.steps.render(Instant::now(), self.width);
        let mut text = String::new();
        if self.drawn > 0 {
            // To the start of the block, then clear to the end of the screen.
            text.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
        }
        for line in &lines {
            text.push_str(line);
            text.push('\n');
        }
        self.drawn = lines.len();
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// Prints step `id`'s error and last output lines under the block,
    /// which is not redrawn any more.
    fn leave_failure(&mut self, id: usize) {
        let Some(step) = self.steps.steps.get(&id) else {
            return;
        };
        let mut text = format!("------\n > {}:\n", clip(&step.name, self.width));
        for line in &step.last_lines {
            text.push_str(&format!("{}\n", clip(line, self.width)));
        }
        text.push_str("------\n");
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
        self.frozen = true;
    }
}

/// What a step is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Cached,
    Done(Duration),
    Failed(Duration),
}

#[derive(Debug)]
struct Step {
    name: String,
    state: State,
    started: Instant,
    /// Its last complete output lines, and the line being written.
    last_lines: VecDeque<String>,
    partial: Vec<u8>,
    notes: Vec<String>,
}

/// Every step reported so far, in BuildKit's order (by number).
#[derive(Debug)]
struct Steps {
    started: Instant,
    steps: BTreeMap<usize, Step>,
}

impl Steps {
    fn new(started: Instant) -> Steps {
        Steps {
            started,
            steps: BTreeMap::new(),
        }
    }

    fn apply(&mut self, event: Event<'_>, now: Instant) {
        match event {
            Event::Started { id, name } => {
                self.steps.insert(
                    id,
                    Step {
                        name: name.to_owned(),
                        state: State::Running,
                        started: now,
                        last_lines: VecDeque::new(),
                        partial: Vec::new(),
                        notes: Vec::new(),
                    },
                );
            }
            Event::Cached { id } => self.set(id, |_| State::Cached),
            Event::Output { id, data } => {
                if let Some(step) = self.steps.get_mut(&id) {
                    step.partial.extend_from_slice(data);
                    while let Some(end) = step.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = step.partial.drain(..=end).collect();
                        let text = String::from_utf8_lossy(&line[..end]);
                        step.last_lines
                            .push_back(text.trim_end_matches('\r').to_owned());
                        if step.last_lines.len() > FAILED_LINES {
                            step.last_lines.pop_front();
                        }
                    }
                }
            }
            Event::Note { id, text } => {
                if let Some(step) = self.steps.get_mut(&id) {
                    step.notes.push(text.to_owned());
                }
            }
            Event::Done { id, elapsed } => self.set(id, |_| State::Done(elapsed)),
            Event::Failed { id, .. } => {
                self.set(id, |step| State::Failed(now - step.started));
                if let Some(step) = self.steps.get_mut(&id) {
                    let rest = std::mem::take(&mut step.partial);
                    if !rest.is_empty() {
                        step.last_lines
                            .push_back(String::from_utf8_lossy(&rest).into_owned());
                    }
                }
            }
        }
    }

    fn set(&mut self, id: usize, state: impl FnOnce(&Step) -> State) {
        if let Some(step) = self.steps.get_mut(&id) {
            step.state = state(step);
        }
    }

    /// The block's lines at `now`, each at most `width` columns.
    fn render(&self, now: Instant, width: usize) -> Vec<String> {
        let finished = self
            .steps
            .values()
            .filter(|step| step.state != State::Running)
            .count();
        let mut lines = vec![clip(
            &format!(
                "[+] Building {:.1}s ({finished}/{})",
                (now - self.started).as_secs_f64(),
                self.steps.len()
            ),
            width,
        )];
        for step in self.steps.values() {
            let (label, time) = match step.state {
                State::Running => ("", now - step.started),
                State::Cached => ("CACHED ", Duration::ZERO),
                State::Done(elapsed) => ("", elapsed),
                State::Failed(elapsed) => ("ERROR ", elapsed),
            };
            lines.push(with_time(&format!(" => {label}{}", step.name), time, width));
            for note in &step.notes {
                lines.push(clip(&format!(" => => {note}"), width));
            }
            if step.state == State::Running {
                let skip = step.last_lines.len().saturating_sub(TAIL_LINES);
                for line in step.last_lines.iter().skip(skip) {
                    lines.push(clip(&format!(" => => # {line}"), width));
                }
            }
        }
        lines
    }
}

/// `text` with `time` at the right edge of `width` columns, cut to fit.
fn with_time(text: &str, time: Duration, width: usize) -> String {
    let time = format!("{:.1}s", time.as_secs_f64());
    let room = width.saturating_sub(time.len() + 1);
    let text = clip(text, room);
    let pad = room.saturating_sub(text.chars().count());
    format!("{text}{} {time}", " ".repeat(pad))
}

/// `text` cut to `width` characters, control characters (a step's output
/// may hold any) left out so that they cannot move the cursor.
fn clip(text: &str, width: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(width)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, millis: u64) -> Instant {
        base + Duration::from_millis(millis)
    }

    #[test]
    fn finished_steps_fold_and_a_running_one_shows_its_last_lines() {
        let base = Instant::now();
        let mut steps = Steps::new(base);
        steps.apply(
            Event::Started {
                id: 1,
                name: "[1/3] FROM alpine",
            },
            base,
        );
        steps.apply(Event::Cached { id: 1 }, base);
        steps.apply(
            Event::Started {
                id: 2,
                name: "[2/3] RUN make",
            },
            at(base, 100),
        );
        let output: String = (1..=9).map(|n| format!("line {n}\n")).collect();
        steps.apply(
            Event::Output {
                id: 2,
                data: output.as_bytes(),
            },
            at(base, 200),
        );
        let lines = steps.render(at(base, 1600), 40);
        assert_eq!(
            lines,
            [
                "[+] Building 1.6s (1/2)",
                " => CACHED [1/3] FROM alpine        0.0s",
                " => [2/3] RUN make                  1.5s",
                " => => # line 4",
                " => => # line 5",
                " => => # line 6",
                " => => # line 7",
                " => => # line 8",
                " => => # line 9",
            ]
        );
        steps.apply(
            Event::Done {
                id: 2,
                elapsed: Duration::from_millis(1700),
            },
            at(base, 1800),
        );
        let lines = steps.render(at(base, 1900), 40);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[2], " => [2/3] RUN make                  1.7s");
    }

    #[test]
    fn lines_never_pass_the_width_nor_carry_control_characters() {
        let base = Instant::now();
        let mut steps = Steps::new(base);
        let name = format!("[1/1] RUN echo {}", "x".repeat(200));
        steps.apply(Event::Started { id: 1, name: &name }, base);
        steps.apply(
            Event::Output {
                id: 1,
                data: b"\x1b[2Jclear\ttab\n",
            },
            base,
        );
        for line in steps.render(at(base, 10), 30) {
            assert!(line.chars().count() <= 30, "{line:?}");
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
    }

    #[test]
    fn a_failed_step_keeps_its_last_lines_and_its_time() {
        let base = Instant::now();
        let mut steps = Steps::new(base);
        steps.apply(
            Event::Started {
                id: 3,
                name: "[3/3] RUN false",
            },
            base,
        );
        steps.apply(
            Event::Output {
                id: 3,
                data: b"before\nno newline",
            },
            base,
        );
        steps.apply(
            Event::Failed {
                id: 3,
                error: "exit code 1",
            },
            at(base, 400),
        );
        let step = &steps.steps[&3];
        assert_eq!(step.state, State::Failed(Duration::from_millis(400)));
        assert_eq!(step.last_lines, ["before", "no newline"]);
        let lines = steps.render(at(base, 500), 40);
        assert_eq!(lines[1], " => ERROR [3/3] RUN false           0.4s");
    }
}
