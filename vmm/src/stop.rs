//! The VM-wide stop request: the first vCPU or device that decides the VM
//! is over records why, and [`crate::run`] wakes up to tear it down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};

use crate::{Error, VmExit};

/// Why the VM stopped: a guest-requested exit or a VMM failure.
pub type StopReason = Result<VmExit, Error>;

/// Shared by vCPU threads and devices.
pub struct StopSignal {
    stopping: AtomicBool,
    reasons: Sender<StopReason>,
}

impl StopSignal {
    /// The signal, and the receiver that gets the first stop reason.
    pub fn new() -> (Self, Receiver<StopReason>) {
        let (reasons, receiver) = channel();
        let signal = Self {
            stopping: AtomicBool::new(false),
            reasons,
        };
        (signal, receiver)
    }

    /// Requests the stop. Only the first request's reason is reported;
    /// later ones (other vCPUs noticing the same shutdown) are dropped.
    pub fn request(&self, reason: StopReason) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            log::debug!("VM already stopping; dropping stop reason {reason:?}");
            return;
        }
        // The receiver lives in `run` until the VM is torn down; a send
        // after that has nobody left to tell.
        let _ = self.reasons.send(reason);
    }

    /// True once a stop was requested; vCPUs check this between exits.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_only_the_first_reason() {
        let (signal, reasons) = StopSignal::new();
        assert!(!signal.is_stopping());
        signal.request(Ok(VmExit::Reset));
        signal.request(Ok(VmExit::Shutdown));
        assert!(signal.is_stopping());
        assert!(matches!(reasons.try_recv(), Ok(Ok(VmExit::Reset))));
        assert!(reasons.try_recv().is_err());
    }
}
