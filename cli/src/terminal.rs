//! The user's terminal in `-t` sessions: its size, raw mode while the
//! session lasts, and its resizes.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_runtime::session::{self, Controls};
use hull_runtime::signals::Signals;
use hull_runtime::{Stdio, TerminalSize};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, OutputFlags, SetArg, Termios};
use signal_hook::consts::signal::SIGWINCH;

/// The size a process's terminal gets when hull has no terminal to copy.
pub const DEFAULT_SIZE: TerminalSize = TerminalSize { rows: 24, cols: 80 };

/// `-i` and `-t`, as `run` and `exec` take them.
#[derive(Args, Debug)]
pub struct StdioFlags {
    /// Keep stdin open and forward it to the process.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the process a terminal (with -i: this terminal's keys, raw).
    #[arg(short = 't', long)]
    pub tty: bool,
}

impl StdioFlags {
    /// The terminal a `-t` process gets, or `None` without `-t`. With `-i`
    /// on a session this command `attaches` to, our input must be a
    /// terminal: typed keys go to the process raw.
    pub fn terminal(&self, attaches: bool) -> Result<Option<TerminalSize>> {
        if !self.tty {
            return Ok(None);
        }
        if self.interactive && attaches && !io::stdin().is_terminal() {
            bail!("the input device is not a TTY: drop -t, or run hull from a terminal");
        }
        Ok(Some(size().unwrap_or(DEFAULT_SIZE)))
    }
}

/// The size of the terminal on stdout, else on stdin.
pub fn size() -> Option<TerminalSize> {
    size_of(io::stdout().as_fd()).or_else(|| size_of(io::stdin().as_fd()))
}

/// The size of the terminal on stderr.
pub fn size_of_stderr() -> Option<TerminalSize> {
    size_of(io::stderr().as_fd())
}

fn size_of(fd: BorrowedFd) -> Option<TerminalSize> {
    let mut winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer,
    // which points at one we own.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut winsize) };
    (result == 0 && winsize.ws_row > 0 && winsize.ws_col > 0).then_some(TerminalSize {
        rows: winsize.ws_row,
        cols: winsize.ws_col,
    })
}

/// This process's terminal for one session with a process: its sizes
/// followed if the process has a terminal too, and raw mode from the moment
/// the session attaches (keys raw with our stdin, output unprocessed
/// without), until this is dropped.
pub struct Terminal {
    /// Whether the process has a terminal.
    tty: bool,
    /// Whether our stdin goes to it.
    stdin: bool,
    mode: Arc<Mutex<Option<ModeGuard>>>,
}

impl Terminal {
    pub fn new(tty: bool, stdin: bool) -> Terminal {
        Terminal {
            tty,
            stdin,
            mode: Arc::default(),
        }
    }

    /// The session's controls: our resizes and `signals`, and raw mode
    /// once it attaches.
    pub fn controls(&self, signals: Option<Signals>) -> Result<Controls<'static>> {
        let resizes = match (self.tty, size()) {
            (true, Some(current)) => {
                let (sender, resizes) = session::resize_channel();
                // It may have changed since the process's size was taken.
                let _ = sender.send(current);
                on_resize(move |size| sender.send(size).is_ok())?;
                Some(resizes)
            }
            _ => None,
        };
        let (tty, stdin, mode) = (self.tty, self.stdin, self.mode.clone());
        let raw = move || {
            let guard = match (tty, stdin) {
                (true, true) => ModeGuard::raw_input()?,
                (true, false) => ModeGuard::raw_output()?,
                (false, _) => None,
            };
            *mode.lock().unwrap_or_else(PoisonError::into_inner) = guard;
            Ok(())
        };
        Ok(Controls {
            resizes,
            signals,
            on_attached: Some(Box::new(raw)),
            ..Controls::default()
        })
    }

    /// The runtime's I/O for the session: our stdin (if it goes to the
    /// process), stdout and stderr, with [`Terminal::controls`].
    pub fn stdio(&self, signals: Option<Signals>) -> Result<Stdio> {
        let controls = self.controls(signals)?;
        let mut stdio = Stdio::new(Box::new(io::stdout()), Box::new(io::stderr()));
        if self.stdin {
            stdio.stdin = Some(Box::new(io::stdin()));
        }
        stdio.resizes = controls.resizes;
        stdio.signals = controls.signals;
        stdio.on_attached = controls.on_attached;
        Ok(stdio)
    }
}

impl Drop for Terminal {
    /// Our terminal's mode comes back, however the session ended.
    fn drop(&mut self) {
        self.mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// One of our terminals in another mode while a session lasts; the
/// previous mode comes back when this is dropped.
struct ModeGuard {
    stream: Stream,
    saved: Termios,
}

#[derive(Clone, Copy)]
enum Stream {
    Stdin,
    Stdout,
}

impl Stream {
    fn with_fd<R>(self, f: impl FnOnce(BorrowedFd) -> R) -> R {
        match self {
            Stream::Stdin => f(io::stdin().as_fd()),
            Stream::Stdout => f(io::stdout().as_fd()),
        }
    }
}

impl ModeGuard {
    /// Stdin's terminal in raw mode: every key, Ctrl-C included, goes to
    /// the process as typed, for its terminal in the guest to interpret.
    /// `None` when stdin is not a terminal.
    fn raw_input() -> Result<Option<ModeGuard>> {
        Self::change(Stream::Stdin, cfmakeraw)
    }

    /// Stdout's terminal without output processing: the guest's terminal
    /// already turned each newline into CR LF. `None` when stdout is not a
    /// terminal.
    fn raw_output() -> Result<Option<ModeGuard>> {
        Self::change(Stream::Stdout, |mode| {
            mode.output_flags.remove(OutputFlags::OPOST);
        })
    }

    fn change(stream: Stream, adjust: impl FnOnce(&mut Termios)) -> Result<Option<ModeGuard>> {
        stream.with_fd(|fd| {
            if !fd.is_terminal() {
                return Ok(None);
            }
            let saved = tcgetattr(fd).context("cannot read the terminal's mode")?;
            let mut changed = saved.clone();
            adjust(&mut changed);
            tcsetattr(fd, SetArg::TCSANOW, &changed)
                .context("cannot change the terminal's mode")?;
            Ok(Some(ModeGuard { stream, saved }))
        })
    }
}

impl Drop for ModeGuard {
    fn drop(&mut self) {
        // Output still queued for the terminal is written first.
        let _ = self
            .stream
            .with_fd(|fd| tcsetattr(fd, SetArg::TCSADRAIN, &self.saved));
    }
}

/// Calls `resized` with the terminal's new size after each resize, from a
/// thread of its own, until it returns false.
fn on_resize(mut resized: impl FnMut(TerminalSize) -> bool + Send + 'static) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGWINCH])
        .context("cannot watch for terminal resizes")?;
    thread::Builder::new()
        .name("resize".into())
        .spawn(move || {
            for _ in signals.forever() {
                if let Some(size) = size() {
                    if !resized(size) {
                        return;
                    }
                }
            }
        })
        .context("cannot start the resize thread")?;
    Ok(())
}
