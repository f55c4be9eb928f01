//! Container mode: the agent as PID 1 of a hull microVM.
//!
//! It mounts what the machine needs, connects to the host over vsock, runs
//! the session (assembling the container's root file system as the host's
//! run request describes it), and reboots
//! the machine when the session is over (the kernel runs with `reboot=k`, so
//! the VMM sees a reset and exits). PID 1 must never exit: a fatal error is
//! logged to the serial console and ends in the same reboot.

mod boot;
mod cgroup;
mod copy_up;
mod exec;
mod fs_context;
mod init;
mod mount;
mod mounts;
mod network;
mod report;
mod rootfs;
mod run;
mod sandbox;
mod secure_join;
mod sysctl;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use hull_protocol::AGENT_READY_PORT;
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, VsockAddr};

use crate::session;
use run::ContainerLauncher;

/// How long the host gets to accept our vsock connection, over all tries
/// (one under way when it passes runs to its end).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one try waits for the host's answer. Linux gives up after 2 s
/// by default, which a host starting many VMs at once can take; a try that
/// gave up leaves the host a connection it drops for the next.
const CONNECT_TRY_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(20);
/// `SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD` of `<linux/vm_sockets.h>` (a
/// `struct timeval` at level `AF_VSOCK`), which the libc crate lacks.
const SO_VM_SOCKETS_CONNECT_TIMEOUT: libc::c_int = 6;

/// Runs the machine's whole life; never returns.
pub fn run_as_init() -> ! {
    match panic::catch_unwind(run) {
        Ok(Ok(())) => {}
        Ok(Err(err)) => session::log_error("fatal", &err),
        // The panic hook already printed the message on the console.
        Err(_) => eprintln!("hull-agent: fatal: the agent panicked"),
    }
    power_off()
}

fn run() -> anyhow::Result<()> {
    boot::prepare_machine().context("preparing the machine")?;
    let channel = connect_to_host()?;
    session::run(channel, &ContainerLauncher)
}

/// Connects to the host's agent port, retrying while the host gets ready.
fn connect_to_host() -> anyhow::Result<File> {
    let host = VsockAddr::new(libc::VMADDR_CID_HOST, AGENT_READY_PORT);
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let socket = socket(
            AddressFamily::Vsock,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .context("creating the vsock socket")?;
        set_connect_timeout(&socket, CONNECT_TRY_TIMEOUT)
            .context("setting the vsock connect timeout")?;
        match connect(socket.as_raw_fd(), &host) {
            Ok(()) => return Ok(File::from(socket)),
            Err(errno) if Instant::now() >= deadline => {
                return Err(errno).with_context(|| format!("connecting to the host at {host}"))
            }
            Err(_) => thread::sleep(CONNECT_RETRY_INTERVAL),
        }
    }
}

/// Sets how long a connect on the vsock `socket` waits for the peer.
fn set_connect_timeout(socket: &OwnedFd, timeout: Duration) -> nix::Result<()> {
    let timeval = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `socket` is an open socket for the call, and the option value
    // is a `timeval` that outlives it, passed with its exact size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::AF_VSOCK,
            SO_VM_SOCKETS_CONNECT_TIMEOUT,
            std::ptr::addr_of!(timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    nix::errno::Errno::result(result).map(drop)
}

/// Flushes the file systems and resets the machine.
fn power_off() -> ! {
    nix::unistd::sync();
    let Err(errno) = reboot(RebootMode::RB_AUTOBOOT);
    eprintln!("hull-agent: fatal: reboot: {}", errno.desc());
    loop {
        nix::unistd::pause();
    }
}
