//! The machine-wide mounts PID 1 makes before anything else.

use std::os::fd::RawFd;

use anyhow::Context;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, close, dup2};

use super::mount::{mount_fs, move_mount};

/// Where the agent's own root file system is mounted before it moves to "/".
const AGENT_ROOT: &str = "/agent-root";

/// Mounts /dev (with the console on fds 0-2), moves the agent off the
/// initramfs, then mounts /proc, /sys, /sys/fs/cgroup, /dev/pts and /run.
pub fn prepare_machine() -> anyhow::Result<()> {
    attach_console()?;
    leave_initramfs().context("moving the agent's root off the initramfs")?;
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", "/proc", "proc", hardened, None)?;
    mount_fs("sysfs", "/sys", "sysfs", hardened, None)?;
    mount_fs("cgroup2", "/sys/fs/cgroup", "cgroup2", hardened, None)?;
    mount_fs(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    mount_fs(
        "tmpfs",
        "/run",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
}

/// Mounts devtmpfs on /dev and makes /dev/console fds 0, 1 and 2, where the
/// agent's errors go. The initramfs holds only /init, so the kernel found no
/// console to open for us.
fn attach_console() -> anyhow::Result<()> {
    mount_fs(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        None,
    )?;
    let console: RawFd = open(
        "/dev/console",
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .context("opening /dev/console")?;
    for fd in 0..=2 {
        if fd != console {
            dup2(console, fd).with_context(|| format!("making the console fd {fd}"))?;
        }
    }
    if console > 2 {
        close(console).context("closing the spare console fd")?;
    }
    Ok(())
}

/// Gives the agent a tmpfs root mounted over the initramfs, as switch_root
/// does. pivot_root(2) cannot move away from the initramfs itself (that
/// mount has no parent), and the container's init must pivot away from the
/// agent's root; a tmpfs mounted over it can be pivoted away from.
fn leave_initramfs() -> anyhow::Result<()> {
    mount_fs(
        "tmpfs",
        AGENT_ROOT,
        "tmpfs",
        MsFlags::empty(),
        Some("mode=0755"),
    )?;
    move_mount("/dev", format!("{AGENT_ROOT}/dev"))?;
    chdir(AGENT_ROOT).with_context(|| format!("entering {AGENT_ROOT}"))?;
    move_mount(".", "/")?;
    chroot(".").context("chroot into the agent's root")?;
    chdir("/").context("entering the agent's root")
}
