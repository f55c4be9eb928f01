//! `hull-agent`: the guest agent of a hull microVM.
//!
//! As PID 1 of the microVM it sets up the machine and the container's root
//! filesystem, then runs one process for the host (container mode). Inside
//! the KVM test host it runs the same session over a serial port or a unix
//! socket without any isolation (relay mode).

mod container;
mod copy;
mod exec;
mod identity;
mod process;
mod reaper;
mod relay;
mod session;
mod stdio;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: hull-agent relay --channel PATH\n\
                     (without arguments, as PID 1 of a hull microVM: container mode)";

fn main() -> ExitCode {
    // The kernel hands init any command-line words it does not understand as
    // arguments, so container mode is chosen by being PID 1, not by argv.
    if std::process::id() == 1 {
        container::run_as_init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(channel) = relay_channel(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match relay::run(&channel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hull-agent relay: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `relay --channel PATH`.
fn relay_channel(args: &[String]) -> Option<PathBuf> {
    match args {
        [mode, flag, path] if mode == "relay" && flag == "--channel" => Some(PathBuf::from(path)),
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
    fn only_the_relay_form_is_accepted() {
        assert_eq!(
            relay_channel(&args(&["relay", "--channel", "/dev/vport0p1"])),
            Some(PathBuf::from("/dev/vport0p1"))
        );
        assert_eq!(relay_channel(&args(&[])), None);
        assert_eq!(relay_channel(&args(&["relay"])), None);
        assert_eq!(relay_channel(&args(&["relay", "--chan", "x"])), None);
        assert_eq!(
            relay_channel(&args(&["relay", "--channel", "x", "y"])),
            None
        );
    }
}
