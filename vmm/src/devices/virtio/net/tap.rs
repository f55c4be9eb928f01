//! The host side of a virtio-net device: a tap interface, reached through
//! a /dev/net/tun file that the VMM inherits already attached to it, and
//! [`TapIo`], what the worker needs from it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::stat::{fstat, major, minor, SFlag};
use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6,
};
use vmm_sys_util::ioctl::{ioctl_with_mut_ref, ioctl_with_ref, ioctl_with_val};

use super::error::NetError;
use super::tx_frame::TxFrame;
use super::VNET_HDR_LEN;

/// /dev/net/tun is the misc character device 10:200.
const TUN_MAJOR: u64 = 10;
const TUN_MINOR: u64 = 200;

/// What the worker does with the host side of the device. Each read or
/// write moves one whole frame, vnet header first.
pub trait TapIo: AsRawFd + Send + 'static {
    /// Reads the next frame into `buf` and returns its length. The file is
    /// non-blocking: `WouldBlock` means no frame is waiting, and the file
    /// polls readable once one is.
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes `frame` with a single call and returns the bytes written.
    fn write_frame(&mut self, frame: &TxFrame<'_>) -> io::Result<usize>;

    /// Sets the offloads (`TUN_F_*`) frames read from the tap may use.
    fn set_offload(&mut self, flags: u32) -> io::Result<()>;
}

/// Checks, without taking it over, that `fd` is open and a /dev/net/tun
/// file; [`Tap::new`] checks the rest once it owns the fd.
pub fn check_tun_fd(fd: RawFd) -> Result<(), NetError> {
    let stat = match fstat(fd) {
        Ok(stat) => stat,
        Err(Errno::EBADF) => return Err(NetError::NotOpen { fd }),
        Err(e) => {
            return Err(NetError::Stat {
                fd,
                source: e.into(),
            })
        }
    };
    let file_type = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let device = (major(stat.st_rdev), minor(stat.st_rdev));
    if file_type == SFlag::S_IFCHR && device == (TUN_MAJOR, TUN_MINOR) {
        Ok(())
    } else {
        Err(NetError::NotTun { fd })
    }
}

/// `struct ifreq` as TUNGETIFF fills it: the interface name and the tun
/// flags; the rest of its 40 bytes is unused here.
#[repr(C)]
#[derive(Default)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

const _: () = assert!(size_of::<IfReq>() == 40);

/// A tap interface's /dev/net/tun file, set up for virtio-net frames.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Takes over `fd`, which must be a /dev/net/tun file attached to a tap
    /// interface opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, and makes
    /// it non-blocking and close-on-exec, with 12-byte vnet headers. No
    /// offloads are enabled until the device is activated. IFF_NO_PI is
    /// the opener's to get right: the kernel does not report it.
    pub fn new(fd: OwnedFd) -> Result<Tap, NetError> {
        let raw = fd.as_raw_fd();
        check_tun_fd(raw)?;
        let file = File::from(fd);
        let mut ifreq = IfReq::default();
        // SAFETY: TUNGETIFF writes one `struct ifreq`, whose 40 bytes
        // `IfReq` spans, and `file` is a tun file.
        if unsafe { ioctl_with_mut_ref(&file, libc::TUNGETIFF, &mut ifreq) } < 0 {
            return Err(NetError::Detached {
                fd: raw,
                source: io::Error::last_os_error(),
            });
        }
        let name_len = ifreq
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(ifreq.name.len());
        let name = String::from_utf8_lossy(&ifreq.name[..name_len]).into_owned();
        let flags = libc::c_int::from(ifreq.flags);
        if flags & libc::IFF_TAP == 0 {
            return Err(NetError::NotTap { fd: raw, name });
        }
        // IFF_NO_PI cannot be checked: TUNGETIFF sets the same bit for
        // IFF_NOFILTER whenever no socket filter is attached.
        if flags & libc::IFF_VNET_HDR == 0 {
            return Err(NetError::NoVnetHeader { fd: raw, name });
        }
        let setup_error = |op, source: io::Error| NetError::Setup {
            fd: raw,
            name: name.clone(),
            op,
            source,
        };
        let status = fcntl(raw, FcntlArg::F_GETFL).map_err(|e| setup_error("F_GETFL", e.into()))?;
        let status = OFlag::from_bits_truncate(status) | OFlag::O_NONBLOCK;
        fcntl(raw, FcntlArg::F_SETFL(status)).map_err(|e| setup_error("F_SETFL", e.into()))?;
        fcntl(raw, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| setup_error("F_SETFD", e.into()))?;
        let header_len = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int, `header_len`.
        if unsafe { ioctl_with_ref(&file, libc::TUNSETVNETHDRSZ, &header_len) } < 0 {
            return Err(setup_error("TUNSETVNETHDRSZ", io::Error::last_os_error()));
        }
        Ok(Tap { file, name })
    }

    /// The tap interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl TapIo for Tap {
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }

    fn write_frame(&mut self, frame: &TxFrame<'_>) -> io::Result<usize> {
        frame.write_to(self.file.as_fd())
    }

    fn set_offload(&mut self, flags: u32) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value and touches no
        // memory of ours.
        let result =
            unsafe { ioctl_with_val(&self.file, libc::TUNSETOFFLOAD, libc::c_ulong::from(flags)) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The tap offloads for the virtio-net `features` the driver accepted: the
/// tap may hand over frames with partial checksums, TSO segments and ECN
/// only where the driver takes them. TSO needs checksum offload, and ECN
/// needs TSO, for the tap as for virtio-net.
pub(super) fn offload_flags(features: u64) -> u32 {
    let acked = |bit: u32| features & (1 << bit) != 0;
    if !acked(VIRTIO_NET_F_GUEST_CSUM) {
        return 0;
    }
    let mut flags = libc::TUN_F_CSUM;
    if acked(VIRTIO_NET_F_GUEST_TSO4) {
        flags |= libc::TUN_F_TSO4;
    }
    if acked(VIRTIO_NET_F_GUEST_TSO6) {
        flags |= libc::TUN_F_TSO6;
    }
    if acked(VIRTIO_NET_F_GUEST_ECN) && flags & (libc::TUN_F_TSO4 | libc::TUN_F_TSO6) != 0 {
        flags |= libc::TUN_F_TSO_ECN;
    }
    flags
}
