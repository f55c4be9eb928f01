//! `hull-agent`: the guest agent of a hull microVM.
//!
//! As PID 1 of the microVM it sets up the machine and the container's root
//! filesystem, then runs one process for the host (container mode). Inside
//! the KVM test host it runs the same session over a serial port or a unix
//! socket without any isolation (relay mode); in the hull machine it listens
//! for many such sessions on a TCP port (relay listener).

mod container;
mod copy;
mod diff;
mod exec;
mod identity;
mod privileges;
mod process;
mod reaper;
mod relay;
mod relay_listener;
mod session;
mod stdio;
mod workdir;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: hull-agent relay --channel PATH|-\n\
                     \x20      hull-agent relay --listen PORT --token-file PATH\n\
                     (without arguments, as PID 1 of a hull microVM: container mode)";

/// What the agent was asked to do outside container mode.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// One session on a channel (`-`: standard input).
    Relay { channel: PathBuf },
    /// Sessions for every connection that presents the token.
    Listen { port: u16, token_file: PathBuf },
}

fn main() -> ExitCode {
    // The kernel hands init any command-line words it does not understand as
    // arguments, so container mode is chosen by being PID 1, not by argv.
    if std::process::id() == 1 {
        container::run_as_init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = parse_mode(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match mode {
        Mode::Relay { channel } => relay::run(&channel),
        Mode::Listen { port, token_file } => relay_listener::listen(port, &token_file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hull-agent relay: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `relay --channel PATH` and `relay --listen PORT --token-file PATH`.
fn parse_mode(args: &[String]) -> Option<Mode> {
    match args {
        [mode, flag, path] if mode == "relay" && flag == "--channel" => Some(Mode::Relay {
            channel: PathBuf::from(path),
        }),
        [mode, listen, port, token, path]
            if mode == "relay" && listen == "--listen" && token == "--token-file" =>
        {
            Some(Mode::Listen {
                port: port.parse().ok()?,
                token_file: PathBuf::from(path),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn only_the_relay_forms_are_accepted() {
        assert_eq!(
            parse_mode(&args(&["relay", "--channel", "/dev/vport0p1"])),
            Some(Mode::Relay {
                channel: PathBuf::from("/dev/vport0p1")
            })
        );
        assert_eq!(
            parse_mode(&args(&["relay", "--listen", "7070", "--token-file", "/t"])),
            Some(Mode::Listen {
                port: 7070,
                token_file: PathBuf::from("/t")
            })
        );
        assert_eq!(parse_mode(&args(&[])), None);
        assert_eq!(parse_mode(&args(&["relay"])), None);
        assert_eq!(parse_mode(&args(&["relay", "--chan", "x"])), None);
        assert_eq!(parse_mode(&args(&["relay", "--channel", "x", "y"])), None);
        assert_eq!(
            parse_mode(&args(&["relay", "--listen", "port", "--token-file", "/t"])),
            None
        );
    }
}
