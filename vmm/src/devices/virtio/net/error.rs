//! Errors from setting up a virtio-net device's tap.

use std::io;
use std::os::fd::RawFd;

/// Why a file descriptor cannot serve as a device's tap.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("tap fd {fd} is not open")]
    NotOpen { fd: RawFd },
    #[error("cannot inspect tap fd {fd}: {source}")]
    Stat {
        fd: RawFd,
        #[source]
        source: io::Error,
    },
    #[error("tap fd {fd} is not a tap: it is not a /dev/net/tun file")]
    NotTun { fd: RawFd },
    #[error(
        "tap fd {fd} is not a tap: TUNGETIFF failed ({source}); is it attached to an interface?"
    )]
    Detached {
        fd: RawFd,
        #[source]
        source: io::Error,
    },
    #[error("tap fd {fd} is tun interface {name}, not a tap (IFF_TAP)")]
    NotTap { fd: RawFd, name: String },
    #[error(
        "tap {name} (fd {fd}) was opened without IFF_VNET_HDR; it needs IFF_TAP | IFF_NO_PI | IFF_VNET_HDR"
    )]
    NoVnetHeader { fd: RawFd, name: String },
    #[error("cannot set up tap {name} (fd {fd}): {op} failed: {source}")]
    Setup {
        fd: RawFd,
        name: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}
