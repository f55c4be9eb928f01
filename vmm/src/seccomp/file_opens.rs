//! Opening a file by path fails with EPERM on a thread whose list does not
//! allow it, in every mode that filters, rather than killing the VMM: libc
//! opens files lazily and goes on without them (glibc's malloc reads
//! `/proc/sys/vm/overcommit_memory` the first time it shrinks a thread's
//! heap, which a vsock worker streaming a guest's output meets about once
//! per VM). The file is not opened either way.
//!
//! seccompiler gives every rule of a filter one action, so this is a
//! short BPF prefix put before the compiled allow-list.

use seccompiler::{sock_filter, BpfProgram};

/// `AUDIT_ARCH_X86_64`, the architecture word of `struct seccomp_data`.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

/// The syscalls that open a file by path.
const OPENS: [libc::c_long; 3] = [libc::SYS_open, libc::SYS_openat, libc::SYS_openat2];

/// `program` behind a prefix that answers [`OPENS`] with EPERM on x86_64
/// and hands every other syscall to `program`.
pub(super) fn refused_before(program: BpfProgram) -> BpfProgram {
    let load = |offset| statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let count = OPENS.len() as u8;
    // Jump offsets count the instructions skipped: the prefix is the
    // architecture's load and test, the number's load, a test per
    // syscall, and the return.
    let mut prefix = vec![
        load(ARCH_OFFSET),
        jump_if_equal(AUDIT_ARCH_X86_64, 0, count + 2),
        load(NR_OFFSET),
    ];
    for (index, &syscall) in OPENS.iter().enumerate() {
        let to_return = count - 1 - index as u8;
        let past_return = u8::from(index as u8 == count - 1);
        prefix.push(jump_if_equal(syscall as u32, to_return, past_return));
    }
    prefix.push(statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
    ));
    prefix.extend(program);
    prefix
}

fn statement(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_if_equal(k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_on_the_return_or_the_program() {
        let program = vec![statement(libc::BPF_RET | libc::BPF_K, 0)];
        let filter = refused_before(program.clone());
        let start = filter.len() - program.len();
        let ret = start - 1;
        assert_eq!(filter[ret].k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
        // The architecture test falls through or goes to the program.
        assert_eq!(2 + filter[1].jf as usize, start);
        for (index, jump) in filter[3..ret].iter().enumerate() {
            let at = 3 + index;
            assert_eq!(at + 1 + jump.jt as usize, ret, "{jump:?}");
            let next = at + 1 + jump.jf as usize;
            assert!(next == at + 1 || next == start, "{jump:?}");
        }
        assert_eq!(filter[ret - 1].jf, 1);
        assert_eq!(filter[start..], program[..]);
    }
}
