//! Questions to the user, asked and read as Docker's: the question on
//! stdout, the answer a line of stdin.

use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::SigId;

/// Asks `question`, followed by ` [y/N] `, and reads the answer from stdin
/// whether it is a terminal or not, as Docker does. Yes is `y` or `yes` in
/// any case; anything else, or no answer at all (end of input), is no.
pub fn confirm(question: &str) -> Result<bool> {
    confirm_on(question, &mut io::stdin().lock(), &mut io::stdout().lock())
}

/// Asks `prompt` and reads a line of stdin, without the whitespace around
/// it: empty at the end of input.
pub fn ask(prompt: &str) -> Result<String> {
    ask_on(prompt, &mut io::stdin().lock(), &mut io::stdout().lock())
}

/// Like [`ask`], with the terminal on stdin (which it must be) not echoing
/// what is typed; the line ends after the answer as if echoed.
pub fn ask_secret(prompt: &str) -> Result<String> {
    let echo_off = EchoOff::on_stdin()?;
    let answer = ask(prompt);
    println!();
    drop(echo_off);
    answer
}

/// [`confirm`] on `input` and `output`.
fn confirm_on(question: &str, input: &mut impl BufRead, output: &mut impl Write) -> Result<bool> {
    let answer = ask_on(&format!("{question} [y/N] "), input, output)?;
    Ok(is_yes(&answer))
}

/// [`ask`] on `input` and `output`.
fn ask_on(prompt: &str, input: &mut impl BufRead, output: &mut impl Write) -> Result<String> {
    output
        .write_all(prompt.as_bytes())
        .and_then(|()| output.flush())
        .context("cannot write the question to stdout")?;
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the answer from stdin")?;
    Ok(line.trim().to_owned())
}

/// Whether `answer` (trimmed) says yes.
fn is_yes(answer: &str) -> bool {
    ["y", "yes"]
        .iter()
        .any(|yes| answer.eq_ignore_ascii_case(yes))
}

/// The terminal on stdin with echo off. Its settings are put back when this
/// is dropped, or, should a signal end the process first, before it ends.
struct EchoOff {
    saved: Termios,
    handlers: Vec<SigId>,
}

impl EchoOff {
    fn on_stdin() -> Result<EchoOff> {
        let stdin = io::stdin();
        let saved =
            termios::tcgetattr(stdin.as_fd()).context("cannot read the terminal's settings")?;
        // Dropped on an error below: the handlers installed go again.
        let mut echo_off = EchoOff {
            saved: saved.clone(),
            handlers: Vec::new(),
        };
        let restore: libc::termios = saved.clone().into();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let action = move || {
                // SAFETY: tcsetattr(3) and write(2) are async-signal-safe;
                // they read the settings the closure owns and a static.
                unsafe {
                    libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &restore);
                    // End the prompt's line, as Docker does when interrupted.
                    libc::write(libc::STDOUT_FILENO, b"\n".as_ptr().cast(), 1);
                }
                // Documented as usable in a signal handler: ends the process
                // as the default action would.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            };
            // SAFETY: the action does only what is safe in a signal handler
            // (see above): no allocation, no locks.
            let handler = unsafe { signal_hook::low_level::register(signal, action) }
                .context("cannot install a signal handler")?;
            echo_off.handlers.push(handler);
        }
        let mut quiet = saved;
        quiet.local_flags.remove(LocalFlags::ECHO);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet)
            .context("cannot turn off the terminal's echo")?;
        Ok(echo_off)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
        for handler in self.handlers.drain(..) {
            signal_hook::low_level::unregister(handler);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmed(typed: &str) -> (bool, String) {
        let mut output = Vec::new();
        let answer = confirm_on("Sure?", &mut typed.as_bytes(), &mut output).unwrap();
        (answer, String::from_utf8(output).unwrap())
    }

    #[test]
    fn only_y_or_yes_confirms() {
        for yes in ["y\n", "Y\n", "yes\n", "YES\n", "  y \r\n", "y"] {
            assert_eq!(confirmed(yes), (true, "Sure? [y/N] ".to_owned()), "{yes:?}");
        }
        for no in ["n\n", "\n", "", "yess\n", "no\n", "sure\n", "y es\n"] {
            assert!(!confirmed(no).0, "{no:?}");
        }
    }

    #[test]
    fn only_the_first_line_is_the_answer() {
        let mut input = "alice\nsecond\n".as_bytes();
        let mut output = Vec::new();
        assert_eq!(
            ask_on("Username: ", &mut input, &mut output).unwrap(),
            "alice"
        );
        assert_eq!(output, b"Username: ");
        assert_eq!(input, b"second\n");
    }
}
