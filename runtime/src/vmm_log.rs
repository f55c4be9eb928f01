//! The VMM's log (`vmm.log`): what the VMM process writes on stdout and
//! stderr, bounded so that a guest cannot fill the host's disk through it.
//!
//! The VMM logs what goes wrong with the guest's requests, and a hostile
//! guest can make it go wrong as often as it likes (fuse-backend-rs logs a
//! malformed virtio-fs name at error level, request body and all). So the
//! VMM writes into a pipe, and a thread of the process that holds the VM
//! copies it into the file:
//!
//! - a line longer than [`MAX_LINE`] bytes is cut there;
//! - at most [`BURST`] lines at once, then [`RATE`] lines a second (a token
//!   bucket); how many were dropped is said in a line of its own when
//!   lines get through again, or at the end;
//! - the file rotates at [`LIMIT`] bytes into `vmm.log.1`, so the two never
//!   hold more than twice that, and `vmm.log` ends with the newest lines.
//!
//! The pipe is read to its end, so once the VMM has exited, its last words
//! (an error, a panic) are in the file.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hull_vmm::RotatingLog;

/// Bytes `vmm.log` holds before it rotates.
pub const LIMIT: u64 = 1 << 20;
/// Longest line kept whole, in bytes.
pub const MAX_LINE: usize = 4096;
/// Lines written at once before the rate applies.
pub const BURST: u32 = 500;
/// Lines written a second once a burst is spent.
pub const RATE: u32 = 50;
/// How often waiting for the copying thread looks at it.
const POLL: Duration = Duration::from_millis(10);

/// The thread copying the VMM's output into its log.
pub struct VmmLog {
    thread: Option<JoinHandle<()>>,
}

impl VmmLog {
    /// Opens the log at `path` (appending to what it holds) and the pipe
    /// to it; the pipe's write end, returned, is for the VMM's stdout and
    /// stderr (the caller closes its copy once the VMM has it).
    pub fn create(path: &Path) -> Result<(VmmLog, OwnedFd)> {
        let file = RotatingLog::open(path, LIMIT)
            .with_context(|| format!("cannot create the VMM log {}", path.display()))?;
        let (reader, writer) = io::pipe().context("cannot make a pipe for the VMM log")?;
        let thread = thread::Builder::new()
            .name("vmm-log".into())
            .spawn(move || copy(reader, file, Limiter::new(Instant::now())))
            .context("cannot start the VMM log's thread")?;
        let log = VmmLog {
            thread: Some(thread),
        };
        Ok((log, writer.into()))
    }

    /// Waits up to `timeout` for everything written into the pipe to be in
    /// the file, which is once every holder of its write end (the VMM) has
    /// exited.
    pub fn settle(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let Some(thread) = self.thread.take_if(|thread| {
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(POLL);
            }
            thread.is_finished()
        }) else {
            return;
        };
        let _ = thread.join();
    }
}

/// Copies `pipe` into `log` line by line, within `limiter`, until the
/// pipe's end; a failing write loses its line (the pipe is still read, so
/// the VMM never blocks on it).
fn copy(mut pipe: impl Read, mut log: impl Write, mut limiter: Limiter) {
    let mut chunk = vec![0; 64 * 1024];
    let mut line = Vec::with_capacity(MAX_LINE + 1);
    let mut cut = false;
    let mut emit = |line: &mut Vec<u8>, cut: bool| {
        if let Some(text) = limiter.admit(line, cut, Instant::now()) {
            let _ = log.write_all(&text);
        }
        line.clear();
    };
    loop {
        let len = match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for piece in chunk[..len].split_inclusive(|byte| *byte == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            let room = MAX_LINE - line.len();
            line.extend_from_slice(&body[..body.len().min(room)]);
            cut |= body.len() > room;
            if ends {
                emit(&mut line, cut);
                cut = false;
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, cut);
    }
    if let Some(text) = limiter.finish() {
        let _ = log.write_all(&text);
    }
}

/// Which lines get into the log: a token bucket of [`BURST`] lines filled
/// at [`RATE`] a second.
struct Limiter {
    /// Lines that may be written now, in thousandths.
    tokens: u64,
    refilled: Instant,
    /// Lines dropped since the last written.
    dropped: u64,
}

impl Limiter {
    const ONE: u64 = 1000;

    fn new(now: Instant) -> Limiter {
        Limiter {
            tokens: u64::from(BURST) * Self::ONE,
            refilled: now,
            dropped: 0,
        }
    }

    /// What to write for `line` (without its newline) at `now`, `cut` if
    /// it was longer: `None` if it is dropped.
    fn admit(&mut self, line: &[u8], cut: bool, now: Instant) -> Option<Vec<u8>> {
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = elapsed.as_millis().saturating_mul(u128::from(RATE));
        let earned = u64::try_from(earned).unwrap_or(u64::MAX);
        self.tokens = self
            .tokens
            .saturating_add(earned)
            .min(u64::from(BURST) * Self::ONE);
        self.refilled = now;
        if self.tokens < Self::ONE {
            self.dropped += 1;
            return None;
        }
        self.tokens -= Self::ONE;
        let mut text = self.finish().unwrap_or_default();
        text.extend_from_slice(line);
        if cut {
            text.extend_from_slice(b" [cut]");
        }
        text.push(b'\n');
        Some(text)
    }

    /// The line saying how many lines were dropped, if any were.
    fn finish(&mut self) -> Option<Vec<u8>> {
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then(|| {
            format!("hull: {dropped} lines of the VMM's log dropped (more than {RATE} a second)\n")
                .into_bytes()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn the_limiter_lets_a_burst_through_then_its_rate() {
        let start = Instant::now();
        let mut limiter = Limiter::new(start);
        let written = (0..BURST + 100)
            .filter(|_| limiter.admit(b"x", false, start).is_some())
            .count();
        assert_eq!(written, BURST as usize);
        // A second later: RATE more, the first saying what was dropped.
        let later = start + Duration::from_secs(1);
        let first = limiter.admit(b"again", false, later).unwrap();
        let expected = format!(
            "hull: 100 lines of the VMM's log dropped (more than {RATE} a second)\nagain\n"
        );
        assert_eq!(String::from_utf8(first).unwrap(), expected);
        let more = (1..RATE + 10)
            .filter(|_| limiter.admit(b"x", false, later).is_some())
            .count();
        assert_eq!(more, RATE as usize - 1);
        assert!(limiter.finish().unwrap().starts_with(b"hull: 10 lines"));
        assert_eq!(limiter.finish(), None);
    }

    #[test]
    fn long_lines_are_cut_and_the_last_one_kept() {
        let long = "y".repeat(MAX_LINE * 3);
        let input = format!("first\n{long}\nlast words without a newline");
        let mut output = Vec::new();
        copy(input.as_bytes(), &mut output, Limiter::new(Instant::now()));
        let output = String::from_utf8(output).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 3, "{output}");
        assert_eq!(lines[0], "first");
        assert_eq!(lines[1], format!("{} [cut]", &long[..MAX_LINE]));
        assert_eq!(lines[2], "last words without a newline");
    }

    #[test]
    fn a_process_logging_in_a_loop_cannot_fill_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmm.log");
        let (mut log, pipe) = VmmLog::create(&path).unwrap();
        // 64 MiB of long error lines, as fast as a process can write them;
        // then, after a pause that earns it a place, the last line.
        let script = "yes \"error: malformed name $(head -c 3000 /dev/zero | tr '\\0' x)\" \
                      | head -c 67108864; echo; sleep 0.2; echo the end";
        let status = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::from(pipe.try_clone().unwrap()))
            .stderr(Stdio::from(pipe))
            .status()
            .unwrap();
        assert!(status.success());
        log.settle(Duration::from_secs(120));
        let size = |name: &str| fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
        let total = size("vmm.log") + size("vmm.log.1");
        assert!(total <= 2 * LIMIT, "{total} bytes logged");
        let text = fs::read_to_string(&path).unwrap();
        let tail: Vec<&str> = text.lines().rev().take(2).collect();
        assert_eq!(tail[0], "the end", "{tail:?}");
        assert!(
            tail[1].contains("lines of the VMM's log dropped"),
            "{tail:?}"
        );
    }
}
