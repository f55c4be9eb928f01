//! The signals a session passes on to its process.
//!
//! A front end catches them from before the VM starts (a Ctrl-C while the
//! VM boots must not kill it before the VM is torn down and its files are
//! removed) and hands the runtime a [`Signals`] channel. Until the process
//! runs, a terminating signal ends the boot ([`Signals::interruption`]);
//! from then on every one of them goes to the process.

use std::str::FromStr;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// Signals a front end receives and passes on to the process in the guest.
pub const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];
/// Those of them that end a boot: there is no process to pass them to yet.
const TERMINATING: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// Signal numbers for a session's process, as they arrive. Clones share
/// one queue: each signal is taken once.
#[derive(Debug, Clone)]
pub struct Signals(Receiver<i32>);

impl Signals {
    /// A channel to send signal numbers on, and its receiving end.
    pub fn channel() -> (Sender<i32>, Signals) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        (sender, Signals(receiver))
    }

    /// The [`FORWARDED`] signals this process gets, caught from now on (a
    /// thread feeds them to the channel).
    pub fn catch() -> Result<Signals> {
        let mut caught = signal_hook::iterator::Signals::new(FORWARDED)
            .context("cannot install signal handlers")?;
        let (sender, signals) = Signals::channel();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in caught.forever() {
                    if sender.send(signal).is_err() {
                        return;
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(signals)
    }

    /// A terminating signal that arrived since the last call, if any;
    /// others that arrived meanwhile are dropped (there is no process yet).
    pub fn interruption(&self) -> Option<i32> {
        self.0
            .try_iter()
            .find(|signal| TERMINATING.contains(signal))
    }

    /// The channel's receiving end.
    pub(crate) fn receiver(&self) -> &Receiver<i32> {
        &self.0
    }
}

/// The number of the signal `name` names: `TERM`, `SIGTERM`, `sigterm`,
/// `15`, or a real-time signal as Docker names them (`SIGRTMIN+3`); 1 to
/// 64.
pub fn signal_number(name: &str) -> Option<i32> {
    if let Ok(number) = name.parse::<i32>() {
        return (1..=64).contains(&number).then_some(number);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(number) = realtime_signal_number(bare) {
        return Some(number);
    }
    nix::sys::signal::Signal::from_str(&format!("SIG{bare}"))
        .ok()
        .map(|signal| signal as i32)
}

/// The number of a real-time signal named as Docker's Linux signal map
/// names them, without `SIG`: `RTMIN` (34), `RTMIN+1` to `RTMIN+15`,
/// `RTMAX-14` to `RTMAX-1` and `RTMAX` (64).
fn realtime_signal_number(bare: &str) -> Option<i32> {
    const RTMIN: i32 = 34;
    const RTMAX: i32 = 64;
    let offset = |rest: &str, sign: char, most: i32| match rest {
        "" => Some(0),
        _ => {
            let digits = rest.strip_prefix(sign)?;
            let number = digits.parse::<i32>().ok()?;
            ((1..=most).contains(&number) && number.to_string() == digits).then_some(number)
        }
    };
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        return offset(rest, '+', 15).map(|number| RTMIN + number);
    }
    offset(bare.strip_prefix("RTMAX")?, '-', 14).map(|number| RTMAX - number)
}

/// What a shell reports for a process killed by `signal`: the front end
/// was stopped by it before the container's process started.
pub fn interrupted_exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_terminating_signals_interrupt_and_each_is_taken_once() {
        let (sender, signals) = Signals::channel();
        let other = signals.clone();
        sender.send(SIGUSR1).unwrap();
        assert_eq!(signals.interruption(), None);
        sender.send(SIGUSR2).unwrap();
        sender.send(SIGTERM).unwrap();
        assert_eq!(other.interruption(), Some(SIGTERM));
        assert_eq!(signals.interruption(), None);
        assert_eq!(interrupted_exit_code(SIGINT), 130);
    }

    #[test]
    fn signals_are_named_as_docker_names_them() {
        assert_eq!(signal_number("TERM"), Some(SIGTERM));
        assert_eq!(signal_number("sigusr1"), Some(SIGUSR1));
        assert_eq!(signal_number("STOP"), Some(libc::SIGSTOP));
        assert_eq!(signal_number("9"), Some(libc::SIGKILL));
        assert_eq!(signal_number("WINCH"), Some(libc::SIGWINCH));
        for (name, number) in [
            ("SIGRTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("rtmin+15", 49),
            ("RTMAX-14", 50),
            ("SIGRTMAX", 64),
        ] {
            assert_eq!(signal_number(name), Some(number), "{name}");
        }
        for bad in [
            "", "0", "65", "NOPE", "SIG", "RTMIN+16", "RTMIN+03", "RTMIN++3", "RTMAX+1",
        ] {
            assert_eq!(signal_number(bad), None, "{bad}");
        }
    }
}
