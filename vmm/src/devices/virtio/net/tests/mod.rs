//! Device tests without KVM: a mock driver posts buffers on virtio-queue
//! mock split queues and the real worker thread serves them, against a
//! unix datagram socket standing in for the tap (one datagram, one frame);
//! and the real [`Tap`](super::Tap) against /dev/net/tun.

mod driver;
mod rx;
mod setup;
mod tap;
mod tx;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};

use nix::sys::socket::{setsockopt, sockopt};
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

use super::{TapIo, TxFrame};

/// The device's end of a datagram socket pair, recording the offloads the
/// device sets.
pub struct FakeTap {
    socket: UnixDatagram,
    offloads: Arc<Mutex<Vec<u32>>>,
}

impl FakeTap {
    /// The fake tap, the host's end of it, and the offloads it records.
    pub fn new() -> (FakeTap, UnixDatagram, Arc<Mutex<Vec<u32>>>) {
        let (device, host) = UnixDatagram::pair().unwrap();
        device.set_nonblocking(true).unwrap();
        // Room for a few of the largest frames, whatever the host's
        // defaults: tests rely on the socket filling up.
        setsockopt(&device, sockopt::SndBuf, &(256 << 10)).unwrap();
        let offloads = Arc::new(Mutex::new(Vec::new()));
        let tap = FakeTap {
            socket: device,
            offloads: Arc::clone(&offloads),
        };
        (tap, host, offloads)
    }
}

impl AsRawFd for FakeTap {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl TapIo for FakeTap {
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }

    fn write_frame(&mut self, frame: &TxFrame<'_>) -> io::Result<usize> {
        frame.write_to(self.socket.as_fd())
    }

    fn set_offload(&mut self, flags: u32) -> io::Result<()> {
        self.offloads.lock().unwrap().push(flags);
        Ok(())
    }
}

/// `struct ifreq` as TUNSETIFF reads it.
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// A /dev/net/tun file attached to a new interface `hulltest<n>` with the
/// tun `flags`; the interface goes away with the file.
pub(crate) fn open_tun(flags: libc::c_int) -> OwnedFd {
    let file = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .expect("open /dev/net/tun");
    let mut name = [0u8; libc::IFNAMSIZ];
    name[..10].copy_from_slice(b"hulltest%d");
    let mut ifreq = IfReqFlags {
        name,
        flags: flags as libc::c_short,
        _rest: [0; 22],
    };
    // SAFETY: TUNSETIFF reads and updates one `struct ifreq`, whose 40
    // bytes `IfReqFlags` spans.
    let result = unsafe { ioctl_with_mut_ref(&file, libc::TUNSETIFF, &mut ifreq) };
    assert_eq!(result, 0, "TUNSETIFF: {}", io::Error::last_os_error());
    file.into()
}

/// A frame of `payload_len` bytes behind a vnet header asking for a
/// checksum, with `num_buffers` set to garbage the device must overwrite.
pub fn frame(payload_len: usize, seed: u8) -> Vec<u8> {
    let mut frame = vec![1, 0, 54, 0, 0, 0, 34, 0, 16, 0, 0xee, 0xee];
    frame.extend((0..payload_len).map(|i| (i % 251) as u8 ^ seed));
    frame
}

/// `frame` as the guest receives it, in `num_buffers` buffers.
pub fn received(frame: &[u8], num_buffers: u16) -> Vec<u8> {
    let mut frame = frame.to_vec();
    frame[10..12].copy_from_slice(&num_buffers.to_le_bytes());
    frame
}
