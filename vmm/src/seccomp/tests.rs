use std::thread;

use super::*;

/// Runs `body` on a new thread after installing `kind`'s filter with
/// `mode` there; returns what `body` returned.
fn under_filter<T: Send + 'static>(
    kind: ThreadKind,
    mode: SeccompMode,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let filters = Filters::new(mode).unwrap().unwrap();
    let filter = filters.get(kind);
    thread::spawn(move || {
        filter.apply().unwrap();
        body()
    })
    .join()
    .unwrap()
}

/// The errno of a failed libc call's -1, or 0 when it succeeded.
fn errno_of(result: libc::c_long) -> i32 {
    if result == -1 {
        std::io::Error::last_os_error().raw_os_error().unwrap()
    } else {
        0
    }
}

#[test]
fn every_kind_compiles_in_every_mode_but_off() {
    for mode in [SeccompMode::Kill, SeccompMode::Errno, SeccompMode::Log] {
        let filters = Filters::new(mode).unwrap().expect("filters");
        for kind in [
            ThreadKind::Vmm,
            ThreadKind::Vcpu,
            ThreadKind::Device,
            ThreadKind::VirtioFs,
        ] {
            assert_eq!(filters.get(kind).kind(), kind);
            assert!(!filters.get(kind).program.is_empty());
        }
    }
    assert!(Filters::new(SeccompMode::Off).unwrap().is_none());
}

#[test]
fn the_mode_is_lowercase_in_the_config_and_errno_by_default() {
    assert_eq!(SeccompMode::default(), SeccompMode::Errno);
    assert_eq!(
        serde_json::to_string(&SeccompMode::Errno).unwrap(),
        "\"errno\""
    );
    let off: SeccompMode = serde_json::from_str("\"off\"").unwrap();
    assert_eq!(off, SeccompMode::Off);
}

#[test]
fn a_vcpu_may_not_open_sockets_or_files_or_rename_them() {
    let errnos = under_filter(ThreadKind::Vcpu, SeccompMode::Errno, || {
        // SAFETY: plain syscalls on no memory of ours but a static path.
        unsafe {
            [
                errno_of(libc::syscall(libc::SYS_getpid)),
                errno_of(libc::syscall(
                    libc::SYS_socket,
                    libc::AF_INET,
                    libc::SOCK_STREAM,
                    0,
                )),
                errno_of(libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    c"/etc/hostname".as_ptr(),
                    libc::O_RDONLY,
                )),
                errno_of(libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    c"/nonexistent/hull-vcpu-test".as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                    0o600,
                )),
                errno_of(libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    c"/nonexistent/a".as_ptr(),
                    libc::AT_FDCWD,
                    c"/nonexistent/b".as_ptr(),
                    0,
                )),
            ]
        }
    });
    assert_eq!(
        errnos,
        [0, libc::EPERM, libc::EPERM, libc::EPERM, libc::EPERM]
    );
}

#[test]
fn ioctls_and_memory_protections_are_narrowed_by_argument() {
    let errnos = under_filter(ThreadKind::Vcpu, SeccompMode::Errno, || {
        // SAFETY: ioctls on -1 (EBADF if let through) and an anonymous
        // mapping that is unmapped again if it is made.
        unsafe {
            let kvm_run = errno_of(libc::syscall(libc::SYS_ioctl, -1, rules::KVM_RUN, 0));
            let other = errno_of(libc::syscall(libc::SYS_ioctl, -1, libc::TIOCGWINSZ, 0));
            let exec = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            let exec_errno = std::io::Error::last_os_error().raw_os_error().unwrap();
            [
                kvm_run,
                other,
                i32::from(exec == libc::MAP_FAILED) * exec_errno,
            ]
        }
    });
    assert_eq!(errnos, [libc::EBADF, libc::EPERM, libc::EPERM]);
}

#[test]
fn a_device_worker_may_connect_unix_sockets_only() {
    let errnos = under_filter(ThreadKind::Device, SeccompMode::Errno, || {
        // SAFETY: socket(2) makes no use of our memory; any fd is closed.
        unsafe {
            [libc::AF_UNIX, libc::AF_INET, libc::AF_NETLINK].map(|family| {
                let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                if fd >= 0 {
                    libc::close(fd);
                    0
                } else {
                    std::io::Error::last_os_error().raw_os_error().unwrap()
                }
            })
        }
    });
    assert_eq!(errnos[0], 0);
    assert_eq!(errnos[1..], [libc::EPERM, libc::EPERM]);
}

/// Forks a child that installs `kind`'s filter in `mode` and runs `body`
/// (raw syscalls only), exiting with what it returns; returns the child's
/// wait status.
fn status_of_filtered_child(
    kind: ThreadKind,
    mode: SeccompMode,
    body: unsafe fn() -> libc::c_int,
) -> libc::c_int {
    let filters = Filters::new(mode).unwrap().unwrap();
    let filter = filters.get(kind);
    // SAFETY: the child only makes raw syscalls (the filter is compiled
    // already) and leaves with _exit, as a child of a threaded parent must.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            if filter.apply().is_err() {
                libc::_exit(2);
            }
            libc::_exit(body());
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

#[test]
fn a_disallowed_syscall_kills_the_process() {
    /// virtio-fs workers never open sockets.
    unsafe fn open_a_socket() -> libc::c_int {
        // SAFETY: a raw syscall with integer arguments.
        unsafe { libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0) };
        0
    }
    let status = status_of_filtered_child(ThreadKind::VirtioFs, SeccompMode::Kill, open_a_socket);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "child ended with status {status:#x}, not SIGSYS"
    );
}

#[test]
fn opening_a_file_fails_with_eperm_even_in_kill_mode() {
    /// 0 when the open failed with EPERM.
    unsafe fn open_a_file() -> libc::c_int {
        let path = c"/proc/sys/vm/overcommit_memory";
        // SAFETY: a raw syscall on a static NUL-terminated path; errno is
        // this thread's.
        unsafe {
            let fd = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), 0);
            match fd == -1 && *libc::__errno_location() == libc::EPERM {
                true => 0,
                false => 3,
            }
        }
    }
    let status = status_of_filtered_child(ThreadKind::Device, SeccompMode::Kill, open_a_file);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child ended with status {status:#x}: the open was not refused with EPERM"
    );
}
