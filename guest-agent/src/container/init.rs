//! The tiny init a container's processes run under, as with
//! `docker run --init`. For the container's process it is PID 1 of new pid,
//! mount, UTS and IPC namespaces and sets up the container's view of the
//! machine; a `hull exec` process it supervises from outside its pid
//! namespace. Either way it runs the user's process, forwards the signals
//! it gets to it, reaps every orphan, and reports the process's exact status
//! before it exits (for the container's init, the kernel then kills whatever
//! is left in the namespace, which closes the stdio pipes).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::Context;
use hull_protocol::ExitStatus;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use super::cgroup;
use super::rootfs::ROOT_DIR;
use super::sandbox::{self, Sandbox};
use crate::exec::Command;
use crate::process::{
    await_start, encode_exit, exit_status, in_forked_child, start_report_pipe, write_all, Launch,
    Process, StartFailure, StartReporter, AGENT_ERROR_CODE,
};
use crate::reaper::{self, Forked};
use crate::stdio::ChildStdio;
use crate::workdir;

/// Signals the tiny init keeps for itself: faults of its own, which cannot
/// be meant for the user's process.
const UNFORWARDED: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGABRT,
];

/// Forks with `fork` a tiny init that does `work` in `namespaces`, and
/// returns once it runs or has failed to start.
pub(super) fn launch_under_init(
    work: Work,
    stdio: ChildStdio,
    namespaces: Namespaces,
    fork: impl FnOnce() -> anyhow::Result<ForkResult>,
) -> anyhow::Result<Launch> {
    let (report, reporter) = start_report_pipe().context("creating the start report pipe")?;
    let (exit_read, exit_write) =
        pipe2(OFlag::O_CLOEXEC).context("creating the exit report pipe")?;
    match reaper::fork_watched(fork)? {
        Forked::Child => in_forked_child(|| {
            drop((report, exit_read));
            let init = TinyInit {
                work,
                stdio,
                reporter,
                exit_report: exit_write,
                namespaces,
            };
            init.run()
        }),
        Forked::Parent { pid, child } => {
            drop((stdio, reporter, exit_write, namespaces));
            await_start(Process::new(pid, child, Some(exit_read.into())), report)
        }
    }
}

/// What a tiny init runs.
pub(super) enum Work {
    /// The user's command, until it ends.
    Command(Box<Command>),
    /// No process: the container is held for its files (`RunSpec::hold`),
    /// with its working directory made as Docker makes it when it creates a
    /// container, until the init is killed.
    Hold { cwd: PathBuf },
}

/// The namespaces a tiny init puts its process in.
pub(super) enum Namespaces {
    /// New ones: the init is the container's (PID 1 of its pid namespace),
    /// and sets up `Sandbox` in them.
    New(Sandbox),
    /// Those of a running container (`hull exec`), as namespace fds in the
    /// order to join them.
    Join(Vec<OwnedFd>),
}

/// What the tiny init holds; every other fd of the agent is closed in it.
/// It also supervises `hull exec` processes, from outside their pid
/// namespace.
struct TinyInit {
    work: Work,
    stdio: ChildStdio,
    reporter: StartReporter,
    exit_report: OwnedFd,
    namespaces: Namespaces,
}

impl TinyInit {
    fn run(mut self) -> ! {
        let fail = |step: &str, err: anyhow::Error| -> ! {
            self.reporter.fail(&StartFailure {
                code: AGENT_ERROR_CODE,
                reason: format!("container init: {step}: {err:#}"),
            })
        };
        if let Err(err) = close_fds_except(&self.kept_fds()) {
            fail("closing the agent's fds", err.into());
        }
        // Blocked before the user's process exists, so no signal is lost;
        // blocked signals stay pending even for a pid namespace's init.
        let signals = match block_forwarded_signals() {
            Ok(signals) => signals,
            Err(err) => fail("blocking signals", err.into()),
        };
        if let Err(err) = cgroup::enter() {
            fail("entering the container's cgroup", err.into());
        }
        let entered = match &self.namespaces {
            Namespaces::New(sandbox) => enter_container(sandbox),
            Namespaces::Join(namespaces) => join_container(namespaces),
        };
        if let Err(err) = entered {
            fail("entering the container", err);
        }
        if let Namespaces::New(sandbox) = &self.namespaces {
            // While the root is still writable.
            match &mut self.work {
                Work::Command(command) => {
                    if let Err(failure) = command.create_working_directory() {
                        self.reporter.fail(&failure);
                    }
                }
                Work::Hold { cwd } => {
                    // Not needed for the files: a failure is only reported.
                    if let Err(err) = workdir::create_missing(Path::new("/"), cwd) {
                        eprintln!("hull-agent: cannot create {}: {err}", cwd.display());
                    }
                }
            }
            if sandbox.read_only {
                if let Err(err) = sandbox::make_root_read_only() {
                    fail("making the root file system read-only", err);
                }
            }
        }
        let Work::Command(command) = &self.work else {
            // Set up: the report pipe closes empty, which reads as started.
            drop(self.reporter);
            hold(&signals)
        };
        // SAFETY: the init is single-threaded (forked from the
        // single-threaded agent).
        let user = match unsafe { fork() } {
            Ok(ForkResult::Child) => in_forked_child(|| command.exec(&self.stdio, &self.reporter)),
            Ok(ForkResult::Parent { child }) => child,
            Err(errno) => fail("forking the user's process", errno.into()),
        };
        let TinyInit {
            stdio,
            reporter,
            exit_report,
            ..
        } = self;
        drop((stdio, reporter));
        let code = match supervise(user, &signals) {
            Ok(status) => {
                // Nothing is left to tell if this fails: the agent then
                // reports the init's own exit status.
                let _ = write_all(exit_report.as_fd(), &encode_exit(status));
                0
            }
            Err(errno) => {
                eprintln!(
                    "hull-agent: container init lost its process: {}",
                    errno.desc()
                );
                AGENT_ERROR_CODE
            }
        };
        // SAFETY: _exit(2) is always safe; it skips the exit handlers of the
        // agent's copy of this address space.
        unsafe { libc::_exit(code) }
    }

    fn kept_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![
            0,
            1,
            2,
            self.reporter.as_raw_fd(),
            self.exit_report.as_raw_fd(),
        ];
        fds.extend(self.stdio.raw_fds());
        if let Namespaces::Join(namespaces) = &self.namespaces {
            fds.extend(namespaces.iter().map(AsRawFd::as_raw_fd));
        }
        fds
    }
}

/// Joins a running container's namespaces; its pid namespace applies to
/// the children forked next. Joining the mount namespace also makes its
/// root (the container's) this process's root and working directory.
fn join_container(namespaces: &[OwnedFd]) -> anyhow::Result<()> {
    for namespace in namespaces {
        setns(namespace.as_fd(), CloneFlags::empty()).context("joining a namespace")?;
    }
    Ok(())
}

/// Creates the container's mount, UTS, IPC and cgroup namespaces (the
/// last after entering its cgroup, which becomes the namespace's root, as
/// Docker's `--cgroupns private`) and sets up its view of the machine.
fn enter_container(sandbox: &Sandbox) -> anyhow::Result<()> {
    let namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    unshare(namespaces).context("creating the mount, UTS, IPC and cgroup namespaces")?;
    sandbox::enter(ROOT_DIR, sandbox)
}

/// Closes every fd but `keep`: the agent's channel and its ends of the pipes
/// must not stay open in the init (an open stdin write end would keep the
/// user's process from ever seeing end of file).
fn close_fds_except(keep: &[RawFd]) -> Result<(), Errno> {
    for (first, last) in ranges_to_close(keep) {
        // SAFETY: close_range(2) only closes fds; none of those in the range
        // is used again in this process (the values owning them are never
        // dropped: the init ends with _exit).
        Errno::result(unsafe { libc::close_range(first, last, 0) })?;
    }
    Ok(())
}

/// The inclusive fd ranges between and above the fds of `keep`.
fn ranges_to_close(keep: &[RawFd]) -> Vec<(u32, u32)> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut ranges = Vec::new();
    let mut next = 0;
    for fd in keep {
        if fd > next {
            ranges.push((next, fd - 1));
        }
        next = fd + 1;
    }
    ranges.push((next, u32::MAX));
    ranges
}

/// The signals the init waits for: all but [`UNFORWARDED`].
struct ForwardedSignals(SigSet);

fn block_forwarded_signals() -> Result<ForwardedSignals, Errno> {
    let mut set = SigSet::all();
    for signal in UNFORWARDED {
        set.remove(signal);
    }
    set.thread_block()?;
    Ok(ForwardedSignals(set))
}

impl ForwardedSignals {
    /// Waits for the next signal, real-time signals included.
    fn next(&self) -> i32 {
        loop {
            // SAFETY: the set is a valid sigset_t and a null siginfo pointer
            // is allowed.
            let signo = unsafe { libc::sigwaitinfo(self.0.as_ref(), std::ptr::null_mut()) };
            if signo > 0 {
                return signo;
            }
        }
    }
}

/// Holds a container that runs no process: takes every signal it may be
/// sent (a container's init dies only of SIGKILL) and reaps whatever a
/// session leaves behind, until the end of the session kills it.
fn hold(signals: &ForwardedSignals) -> ! {
    loop {
        if signals.next() == libc::SIGCHLD {
            while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                waitpid(None, Some(WaitPidFlag::WNOHANG))
            {}
        }
    }
}

/// Forwards signals to `user` and reaps children until `user` ends.
fn supervise(user: Pid, signals: &ForwardedSignals) -> Result<ExitStatus, Errno> {
    loop {
        let signo = signals.next();
        if signo != libc::SIGCHLD {
            // SAFETY: kill(2) touches no memory of ours; `user` is not reaped
            // yet (only this thread reaps), so the pid is still its.
            unsafe { libc::kill(user.as_raw(), signo) };
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG))? {
                WaitStatus::StillAlive => break,
                status if status.pid() == Some(user) => {
                    if let Some(status) = exit_status(status) {
                        return Ok(status);
                    }
                }
                _orphan => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds_between_and_above_the_kept_ones_are_closed() {
        assert_eq!(
            ranges_to_close(&[0, 1, 2, 7, 4, 5]),
            vec![(3, 3), (6, 6), (8, u32::MAX)]
        );
        assert_eq!(ranges_to_close(&[2, 2, 0]), vec![(1, 1), (3, u32::MAX)]);
        assert_eq!(ranges_to_close(&[]), vec![(0, u32::MAX)]);
    }
}
