//! The flags each open handle of a share was opened with, which
//! `Bounded` hands the inner filesystem with every READ
//! and WRITE on the handle in place of the guest's.
//!
//! fuse-backend-rs's passthrough (0.14) applies a READ's or WRITE's flags
//! to the handle's host descriptor with `fcntl(F_SETFL)` when they differ
//! from the handle's, and when that fails (O_DIRECT on a directory or on a
//! filesystem without direct I/O, O_NOATIME on a file the VMM does not
//! own, O_APPEND cleared on an append-only file) it closes the descriptor
//! while the handle keeps its number: the handle's next READ or WRITE
//! would use, and its RELEASE close, whatever the VMM opens next under
//! that number (a disk image, a socket, another share's file). With the
//! handle's own flags the passthrough never calls `fcntl`. What the guest
//! loses: O_APPEND or O_NONBLOCK set or cleared with F_SETFL after open
//! does not reach the host descriptor (O_APPEND given at open does).

use std::collections::HashMap;
use std::sync::Mutex;

/// Open handles' flags, by handle.
#[derive(Default)]
pub(super) struct HandleFlags {
    flags: Mutex<HashMap<u64, u32>>,
}

impl HandleFlags {
    /// Records that `handle` was opened with `flags`.
    pub(super) fn opened(&self, handle: u64, flags: u32) {
        self.map().insert(handle, flags);
    }

    /// Forgets `handle`, closed.
    pub(super) fn closed(&self, handle: u64) {
        self.map().remove(&handle);
    }

    /// Forgets every handle.
    pub(super) fn clear(&self) {
        self.map().clear();
    }

    /// The flags to serve a request on `handle` with: those it was opened
    /// with, or `requested` for a handle not open (which the inner
    /// filesystem refuses before looking at the flags).
    pub(super) fn for_request(&self, handle: u64, requested: u32) -> u32 {
        self.map().get(&handle).copied().unwrap_or(requested)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u32>> {
        // A panic while holding the lock leaves the map whole: every
        // operation on it is a single call.
        self.flags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_served_with_its_open_flags_until_closed() {
        let flags = HandleFlags::default();
        flags.opened(1, libc::O_RDONLY as u32);
        flags.opened(2, (libc::O_WRONLY | libc::O_APPEND) as u32);
        let direct = libc::O_DIRECT as u32;
        assert_eq!(flags.for_request(1, direct), libc::O_RDONLY as u32);
        assert_eq!(
            flags.for_request(2, libc::O_WRONLY as u32),
            (libc::O_WRONLY | libc::O_APPEND) as u32
        );
        flags.closed(1);
        assert_eq!(flags.for_request(1, direct), direct);
        flags.clear();
        assert_eq!(flags.for_request(2, direct), direct);
    }
}
