//! `pty-session`: drives a command on a pseudo-terminal the way a person at
//! a terminal would, for the end-to-end tests of `-t`.
//!
//! ```text
//! pty-session [--size ROWSxCOLS] STEP... -- COMMAND [ARG...]
//!   expect=TEXT   wait until the output after the last match contains TEXT
//!   send=TEXT     type TEXT
//!   resize=RxC    resize the terminal (the command gets SIGWINCH)
//! ```
//!
//! TEXT takes the escapes `\r`, `\n`, `\\` and `\xHH`.
//!
//! The command runs in a new session with the terminal as its controlling
//! terminal. Once the steps are done and the command has exited, it prints
//! `exit=N` and `termios=restored` (or `termios=changed`: the command left
//! the terminal in another mode than it found it) on stdout, and the whole
//! transcript on stderr. A step that times out ends it with status 1.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::tcgetattr;

/// How long one step, or the command's exit, may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

enum Step {
    Expect(Vec<u8>),
    Send(Vec<u8>),
    Resize(Winsize),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pty-session: {err}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let split = args
        .iter()
        .position(|arg| arg == "--")
        .ok_or("usage: pty-session [--size RxC] STEP... -- COMMAND...")?;
    let (mut options, command) = (&args[..split], &args[split + 1..]);
    let mut size = winsize(24, 80);
    if options.first().map(String::as_str) == Some("--size") {
        size = parse_size(options.get(1).ok_or("--size needs ROWSxCOLS")?)?;
        options = &options[2..];
    }
    let steps = options
        .iter()
        .map(|option| parse_step(option))
        .collect::<Result<Vec<_>, _>>()?;
    let (program, program_args) = command.split_first().ok_or("no command given")?;

    let pty = openpty(Some(&size), None).map_err(|err| format!("openpty: {err}"))?;
    let mut child = spawn_on(&pty.slave, program, program_args)?;
    let initial_mode = tcgetattr(pty.slave.as_fd()).map_err(|err| format!("tcgetattr: {err}"))?;
    let mut terminal = Transcript::new(File::from(pty.master));

    for step in &steps {
        let done = match step {
            Step::Expect(text) => terminal.expect(text),
            Step::Send(bytes) => terminal.send(bytes),
            Step::Resize(size) => terminal.resize(size),
        };
        if let Err(err) = done {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("transcript: {:?}", terminal.text());
            return Err(err);
        }
    }
    let status = terminal.drain_until_exit(&mut child);
    eprintln!("transcript: {:?}", terminal.text());
    let status = status?;
    let final_mode = tcgetattr(pty.slave.as_fd()).map_err(|err| format!("tcgetattr: {err}"))?;
    let restored = format!("{initial_mode:?}") == format!("{final_mode:?}");
    println!("exit={}", status.code().map_or(-1, |code| code));
    println!("termios={}", if restored { "restored" } else { "changed" });
    Ok(ExitCode::SUCCESS)
}

/// Starts the command as the leader of a new session whose controlling
/// terminal is `slave`.
fn spawn_on(slave: &OwnedFd, program: &str, args: &[String]) -> Result<Child, String> {
    let stdio = || {
        slave
            .try_clone()
            .map(Stdio::from)
            .map_err(|err| format!("dup: {err}"))
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(stdio()?)
        .stdout(stdio()?)
        .stderr(stdio()?);
    // SAFETY: setsid and ioctl are async-signal-safe and take no pointers
    // into memory the parent owns.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|err| format!("cannot start {program}: {err}"))
}

/// The terminal's master side and everything read from it.
struct Transcript {
    master: File,
    output: Vec<u8>,
    /// Where the next `expect` starts looking.
    matched: usize,
}

impl Transcript {
    fn new(master: File) -> Self {
        Transcript {
            master,
            output: Vec::new(),
            matched: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    fn expect(&mut self, text: &[u8]) -> Result<(), String> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(at) = find(&self.output[self.matched..], text) {
                self.matched += at + text.len();
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out waiting for {:?}",
                    String::from_utf8_lossy(text)
                ));
            }
            if self.read_some(Duration::from_millis(200))? == Arrival::Closed {
                return Err(format!(
                    "the terminal closed before {:?} appeared",
                    String::from_utf8_lossy(text)
                ));
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.master
            .write_all(bytes)
            .map_err(|err| format!("typing {bytes:?}: {err}"))
    }

    fn resize(&mut self, size: &Winsize) -> Result<(), String> {
        // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer,
        // which points at a live one.
        let result = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, size) };
        if result == -1 {
            return Err(format!("resize: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Reads what arrives within `wait`.
    fn read_some(&mut self, wait: Duration) -> Result<Arrival, String> {
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(wait).expect("a short timeout");
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(Arrival::Nothing),
            Ok(_) => {}
            Err(err) => return Err(format!("poll: {err}")),
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) => Ok(Arrival::Closed),
            Ok(len) => {
                self.output.extend_from_slice(&buf[..len]);
                Ok(Arrival::Data)
            }
            // EIO: no process has the terminal open any more.
            Err(err) if err.raw_os_error() == Some(libc::EIO) => Ok(Arrival::Closed),
            Err(err) => Err(format!("reading the terminal: {err}")),
        }
    }

    /// Keeps reading until the command exits, then takes what is left.
    fn drain_until_exit(&mut self, child: &mut Child) -> Result<std::process::ExitStatus, String> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().map_err(|err| format!("wait: {err}"))? {
                while self.read_some(Duration::from_millis(100))? == Arrival::Data {}
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return Err("timed out waiting for the command to exit".into());
            }
            self.read_some(Duration::from_millis(200))?;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Arrival {
    Data,
    Nothing,
    Closed,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn parse_size(text: &str) -> Result<Winsize, String> {
    let parsed = text
        .split_once('x')
        .and_then(|(rows, cols)| Some(winsize(rows.parse().ok()?, cols.parse().ok()?)));
    parsed.ok_or_else(|| format!("{text:?} is not ROWSxCOLS"))
}

fn parse_step(option: &str) -> Result<Step, String> {
    let (kind, value) = option
        .split_once('=')
        .ok_or_else(|| format!("{option:?} is not KIND=VALUE"))?;
    match kind {
        "expect" => unescape(value).map(Step::Expect),
        "send" => unescape(value).map(Step::Send),
        "resize" => parse_size(value).map(Step::Resize),
        _ => Err(format!("unknown step {kind:?}")),
    }
}

/// Turns `\r`, `\n`, `\\` and `\xHH` into the bytes they name.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        if byte != b'\\' {
            bytes.push(byte);
            continue;
        }
        let (&escape, tail) = rest
            .split_first()
            .ok_or_else(|| format!("{text:?} ends in a lone backslash"))?;
        rest = tail;
        match escape {
            b'r' => bytes.push(b'\r'),
            b'n' => bytes.push(b'\n'),
            b'\\' => bytes.push(b'\\'),
            b'x' if rest.len() >= 2 => {
                let hex = std::str::from_utf8(&rest[..2]).unwrap_or("");
                let value = u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad \\x escape in {text:?}"))?;
                bytes.push(value);
                rest = &rest[2..];
            }
            other => return Err(format!("unknown escape \\{} in {text:?}", other as char)),
        }
    }
    Ok(bytes)
}
