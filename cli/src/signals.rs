//! The signals `hull` passes on to the container's process.
//!
//! They are caught from before the VM starts: a Ctrl-C while the VM boots
//! must not kill `hull` before it has torn the VM down and removed its
//! files. Until the process runs, a terminating signal ends the boot
//! ([`ForwardedSignals::interruption`]); from then on every one of them is
//! forwarded to the process ([`ForwardedSignals::for_each`]).

use anyhow::{Context, Result};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

/// Signals the CLI receives and passes on to the process in the guest.
const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];
/// Those of them that end `hull` while there is no process to pass them to.
const TERMINATING: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

pub struct ForwardedSignals(Signals);

impl ForwardedSignals {
    /// Catches the forwarded signals from now on.
    pub fn catch() -> Result<ForwardedSignals> {
        Signals::new(FORWARDED)
            .map(ForwardedSignals)
            .context("cannot install signal handlers")
    }

    /// A terminating signal that arrived since the last call, if any;
    /// others that arrived meanwhile are dropped (there is no process yet).
    pub fn interruption(&mut self) -> Option<i32> {
        self.0.pending().find(|signal| TERMINATING.contains(signal))
    }

    /// Calls `forward` with each signal as it arrives, until it returns
    /// false.
    pub fn for_each(mut self, mut forward: impl FnMut(i32) -> bool) {
        for signal in self.0.forever() {
            if !forward(signal) {
                return;
            }
        }
    }
}

/// What a shell reports for a process killed by `signal`: `hull` was
/// stopped by it before the container's process started.
pub fn interrupted_exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}
