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
use std::os::fd::AsRawFd;
use std::panic;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use hull_protocol::AGENT_READY_PORT;
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, VsockAddr};

use crate::session;
use run::ContainerLauncher;

/// How long the host gets to accept our vsock connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(20);

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
        match connect(socket.as_raw_fd(), &host) {
            Ok(()) => return Ok(File::from(socket)),
            Err(errno) if Instant::now() >= deadline => {
                return Err(errno).with_context(|| format!("connecting to the host at {host}"))
            }
            Err(_) => thread::sleep(CONNECT_RETRY_INTERVAL),
        }
    }
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
