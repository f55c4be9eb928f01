//! The real [`Tap`] on /dev/net/tun (the tests run as root): the ioctls
//! that set it up, and the fds it refuses.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;

use libc::{
    c_int, IFF_NO_PI, IFF_TAP, IFF_TUN, IFF_VNET_HDR, IFNAMSIZ, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6,
    TUN_F_TSO_ECN,
};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

use super::open_tun;
use crate::devices::virtio::net::{check_tun_fd, NetError, Tap, TapIo};

const VIRTIO_NET_TAP: c_int = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;

/// ETHTOOL_GTSO: whether an interface does TCP segmentation offload.
const ETHTOOL_GTSO: u32 = 0x1e;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` as SIOCETHTOOL reads it.
#[repr(C)]
struct IfReqData {
    name: [u8; IFNAMSIZ],
    data: *mut EthtoolValue,
    _rest: [u8; 16],
}

/// Whether interface `name` does TSO now, as `ethtool -k` would say: the
/// tap offloads decide it.
fn tso_enabled(name: &str) -> bool {
    let socket = UnixDatagram::unbound().unwrap();
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GTSO,
        data: 0,
    };
    let mut ifreq = IfReqData {
        name: [0; IFNAMSIZ],
        data: &raw mut value,
        _rest: [0; 16],
    };
    ifreq.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: SIOCETHTOOL reads one `struct ifreq`, whose 40 bytes
    // `IfReqData` spans, and ETHTOOL_GTSO writes one `struct ethtool_value`
    // where its data pointer points: `value`, which outlives the call.
    let result = unsafe { ioctl_with_mut_ref(&socket, libc::SIOCETHTOOL, &mut ifreq) };
    assert_eq!(result, 0, "SIOCETHTOOL: {}", io::Error::last_os_error());
    value.data != 0
}

#[test]
fn a_tap_is_set_up_for_virtio_net_headers_and_offloads() {
    let fd = open_tun(VIRTIO_NET_TAP);
    let raw = fd.as_raw_fd();
    let mut tap = Tap::new(fd).unwrap();
    assert!(tap.name().starts_with("hulltest"), "{}", tap.name());

    let mut header_len: c_int = 0;
    // SAFETY: TUNGETVNETHDRSZ writes one int, `header_len`.
    let result = unsafe { ioctl_with_mut_ref(&tap, libc::TUNGETVNETHDRSZ, &mut header_len) };
    assert_eq!((result, header_len), (0, 12));
    let status = OFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFL).unwrap());
    assert!(status.contains(OFlag::O_NONBLOCK));
    let fd_flags = FdFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFD).unwrap());
    assert!(fd_flags.contains(FdFlag::FD_CLOEXEC));
    // The interface is down: no frame, and no waiting for one.
    let mut buf = [0u8; 64];
    let err = tap.read_frame(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

    assert!(!tso_enabled(tap.name()), "no offloads before activation");
    tap.set_offload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
        .unwrap();
    assert!(tso_enabled(tap.name()));
    tap.set_offload(TUN_F_CSUM).unwrap();
    assert!(!tso_enabled(tap.name()));
    // The tap refuses offloads it does not know.
    let err = tap.set_offload(1 << 20).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn fds_that_are_not_virtio_net_taps_are_refused() {
    for fd in [-1, 999_999] {
        let err = check_tun_fd(fd).unwrap_err();
        assert!(matches!(err, NetError::NotOpen { .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("tap fd {fd} is not open"));
    }

    let null = File::open("/dev/null").unwrap();
    let null_fd = null.as_raw_fd();
    let err = check_tun_fd(null_fd).unwrap_err();
    assert!(matches!(err, NetError::NotTun { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("tap fd {null_fd} is not a tap")),
        "{err}"
    );
    let err = Tap::new(OwnedFd::from(null)).unwrap_err();
    assert!(matches!(err, NetError::NotTun { .. }), "{err:?}");

    let unattached = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap();
    let err = Tap::new(unattached.into()).unwrap_err();
    assert!(matches!(err, NetError::Detached { .. }), "{err:?}");

    let err = Tap::new(open_tun(IFF_TUN | IFF_NO_PI | IFF_VNET_HDR)).unwrap_err();
    assert!(matches!(err, NetError::NotTap { .. }), "{err:?}");
    assert!(err.to_string().contains("not a tap"), "{err}");

    let err = Tap::new(open_tun(IFF_TAP | IFF_NO_PI)).unwrap_err();
    assert!(matches!(err, NetError::NoVnetHeader { .. }), "{err:?}");
    assert!(err.to_string().contains("without IFF_VNET_HDR"), "{err}");
}
