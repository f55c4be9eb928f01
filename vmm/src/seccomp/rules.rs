//! The syscalls each kind of VMM thread may make, with the arguments
//! narrowed where one value is all a thread needs (its ioctls, the memory
//! protections it maps, the signals it sends).
//!
//! The lists are what glibc, Rust's standard library and our crates call
//! on these threads' paths; a syscall missing here fails with EPERM (or
//! kills the VMM, in kill mode) the first time a guest drives a thread
//! down a path that makes it.

use std::collections::BTreeMap;
use std::fmt;

use seccompiler::{BackendError, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

/// KVM_RUN: `_IO(KVMIO, 0x80)`.
pub(super) const KVM_RUN: u64 = 0xae80;

/// The kinds of thread a VMM runs, each with its own allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadKind {
    /// The main thread once the guest runs: it waits for the VM to stop,
    /// kicks the vCPUs and tears the devices down.
    Vmm,
    /// A vCPU: KVM_RUN and the device registers it traps into, including
    /// a device's activation and the serial console's log.
    Vcpu,
    /// The worker of a virtio-blk, virtio-net or virtio-vsock device.
    Device,
    /// The worker of a virtio-fs device: the FUSE server.
    VirtioFs,
}

impl fmt::Display for ThreadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThreadKind::Vmm => "VMM",
            ThreadKind::Vcpu => "vCPU",
            ThreadKind::Device => "device worker",
            ThreadKind::VirtioFs => "virtio-fs worker",
        })
    }
}

/// Syscalls and the rules that allow them; no rule allows any arguments.
pub type Rules = BTreeMap<i64, Vec<SeccompRule>>;

impl ThreadKind {
    /// This kind's allow-list.
    pub fn rules(self) -> Result<Rules, BackendError> {
        let mut rules = common()?;
        let extra = match self {
            ThreadKind::Vmm => vmm(),
            ThreadKind::Vcpu => vcpu()?,
            ThreadKind::Device => device()?,
            ThreadKind::VirtioFs => virtio_fs(),
        };
        rules.extend(extra);
        Ok(rules)
    }
}

/// `syscall` with any arguments.
fn any(syscall: libc::c_long) -> (i64, Vec<SeccompRule>) {
    (syscall, Vec::new())
}

/// `syscall` when its argument `arg` is one of `values`.
fn arg_in(
    syscall: libc::c_long,
    arg: u8,
    values: &[u64],
) -> Result<(i64, Vec<SeccompRule>), BackendError> {
    let rules = values
        .iter()
        .map(|&value| {
            let condition =
                SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, value)?;
            SeccompRule::new(vec![condition])
        })
        .collect::<Result<_, _>>()?;
    Ok((syscall, rules))
}

/// `syscall` when the bits `mask` of its argument `arg` equal `value`.
fn arg_masked(
    syscall: libc::c_long,
    arg: u8,
    mask: u64,
    value: u64,
) -> Result<(i64, Vec<SeccompRule>), BackendError> {
    let condition = SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(mask),
        value,
    )?;
    Ok((syscall, vec![SeccompRule::new(vec![condition])?]))
}

/// What every thread does: allocate (never executable memory), lock, tell
/// the time, write its log lines, handle and raise signals within this
/// process (a vCPU's kick, abort), and end.
fn common() -> Result<Rules, BackendError> {
    let exec = libc::PROT_EXEC as u64;
    let pid = u64::from(std::process::id());
    let mut rules: Rules = [
        libc::SYS_brk,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_sched_yield,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_gettimeofday,
        libc::SYS_getrandom,
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_close,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_sigaltstack,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_restart_syscall,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ]
    .into_iter()
    .map(any)
    .collect();
    rules.extend([
        arg_masked(libc::SYS_mmap, 2, exec, 0)?,
        arg_masked(libc::SYS_mprotect, 2, exec, 0)?,
        arg_in(libc::SYS_tgkill, 0, &[pid])?,
    ]);
    Ok(rules)
}

/// The main thread: joining threads, stopping workers through their
/// eventfds, removing the vsock socket.
fn vmm() -> Rules {
    [libc::SYS_read, libc::SYS_unlink, libc::SYS_unlinkat]
        .into_iter()
        .map(any)
        .collect()
}

/// A vCPU: KVM_RUN; the devices' activation (their eventfds, copied for
/// the workers, and epoll sets, the tap's offloads); the serial console's
/// rotating log, which copies between its two open files and truncates
/// (it opens and renames nothing: a guest that took a vCPU gets no way to
/// create or rename host files).
fn vcpu() -> Result<Rules, BackendError> {
    let mut rules: Rules = [
        libc::SYS_eventfd2,
        libc::SYS_epoll_create1,
        libc::SYS_epoll_ctl,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_ftruncate,
    ]
    .into_iter()
    .map(any)
    .collect();
    rules.extend([
        arg_in(libc::SYS_ioctl, 1, &[KVM_RUN, libc::TUNSETOFFLOAD])?,
        arg_in(libc::SYS_fcntl, 1, &[libc::F_DUPFD_CLOEXEC as u64])?,
    ]);
    Ok(rules)
}

/// The epoll loop every device worker runs on its queues' eventfds.
fn event_loop() -> Vec<(i64, Vec<SeccompRule>)> {
    [
        libc::SYS_epoll_create1,
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_ctl,
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_preadv,
        libc::SYS_pwritev,
    ]
    .into_iter()
    .map(any)
    .collect()
}

/// virtio-blk (reads, writes, flushes and discards of its image),
/// virtio-net (frames on its tap) and virtio-vsock (unix sockets: host
/// clients accepted, guest connections to `<uds_path>_PORT`).
fn device() -> Result<Rules, BackendError> {
    let mut rules: Rules = event_loop().into_iter().collect();
    rules.extend(
        [
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_fallocate,
            libc::SYS_accept4,
            libc::SYS_connect,
            libc::SYS_recvfrom,
            libc::SYS_recvmsg,
            libc::SYS_sendto,
            libc::SYS_sendmsg,
            libc::SYS_shutdown,
            libc::SYS_fcntl,
        ]
        .into_iter()
        .map(any),
    );
    rules.extend([
        arg_in(libc::SYS_socket, 0, &[libc::AF_UNIX as u64])?,
        arg_in(libc::SYS_ioctl, 1, &[libc::FIONBIO])?,
    ]);
    Ok(rules)
}

/// The FUSE server: the passthrough file system of fuse-backend-rs on the
/// share's directory, which switches its thread's credentials for creating
/// files as the guest's user and drops its CAP_FSETID for writes that must
/// clear set-id bits.
fn virtio_fs() -> Rules {
    let mut rules: Rules = event_loop().into_iter().collect();
    rules.extend(
        [
            libc::SYS_preadv2,
            libc::SYS_pwritev2,
            libc::SYS_lseek,
            libc::SYS_openat,
            // Not open_by_handle_at: with the VMM's CAP_DAC_READ_SEARCH it
            // opens any file of the host by handle, whatever the share
            // (and hull's passthrough uses no file handles).
            libc::SYS_name_to_handle_at,
            libc::SYS_newfstatat,
            libc::SYS_fstat,
            libc::SYS_statx,
            libc::SYS_fstatfs,
            libc::SYS_statfs,
            libc::SYS_getdents64,
            libc::SYS_readlinkat,
            libc::SYS_linkat,
            libc::SYS_symlinkat,
            libc::SYS_mkdirat,
            libc::SYS_mknodat,
            libc::SYS_unlinkat,
            libc::SYS_renameat,
            libc::SYS_renameat2,
            libc::SYS_fchownat,
            libc::SYS_fchown,
            libc::SYS_fchmodat,
            libc::SYS_fchmodat2,
            libc::SYS_fchmod,
            libc::SYS_utimensat,
            libc::SYS_ftruncate,
            libc::SYS_fallocate,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_copy_file_range,
            libc::SYS_flock,
            libc::SYS_fcntl,
            libc::SYS_dup,
            libc::SYS_umask,
            libc::SYS_getuid,
            libc::SYS_getgid,
            libc::SYS_setresuid,
            libc::SYS_setresgid,
            libc::SYS_capget,
            libc::SYS_capset,
            libc::SYS_setxattr,
            libc::SYS_lsetxattr,
            libc::SYS_fsetxattr,
            libc::SYS_getxattr,
            libc::SYS_lgetxattr,
            libc::SYS_fgetxattr,
            libc::SYS_listxattr,
            libc::SYS_llistxattr,
            libc::SYS_flistxattr,
            libc::SYS_removexattr,
            libc::SYS_lremovexattr,
            libc::SYS_fremovexattr,
        ]
        .into_iter()
        .map(any),
    );
    rules
}
