//! Initial vCPU register state for the 64-bit boot protocol: long mode with
//! paging on, flat segments from the boot GDT, RIP at the kernel entry and
//! RSI pointing at the zero page.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};

use super::gdt::{boot_gdt, kvm_segment_from_gdt, CODE_INDEX, DATA_INDEX, TSS_INDEX};
use super::layout::{BOOT_STACK_POINTER, GDT_START, ZERO_PAGE_START};

const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// Bit 1 of RFLAGS is reserved and always set; interrupts stay off.
const RFLAGS_RESERVED: u64 = 1 << 1;

/// x87 control word after FNINIT.
const FPU_CONTROL_WORD: u16 = 0x37f;
/// MXCSR after reset: all SIMD exceptions masked.
const MXCSR_DEFAULT: u32 = 0x1f80;

/// General-purpose registers at the kernel's 64-bit entry point.
pub fn boot_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rsi: ZERO_PAGE_START,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

/// Switches `sregs` (as read from a fresh vCPU) to 64-bit mode with the
/// boot GDT and the page tables rooted at `cr3`.
pub fn configure_long_mode(sregs: &mut kvm_sregs, cr3: u64) {
    let gdt = boot_gdt();
    let code = kvm_segment_from_gdt(gdt[CODE_INDEX as usize], CODE_INDEX);
    let data = kvm_segment_from_gdt(gdt[DATA_INDEX as usize], DATA_INDEX);
    let tss = kvm_segment_from_gdt(gdt[TSS_INDEX as usize], TSS_INDEX);

    sregs.gdt.base = GDT_START;
    sregs.gdt.limit = (std::mem::size_of_val(&gdt) - 1) as u16;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;

    sregs.cr3 = cr3;
    sregs.cr4 |= CR4_PAE;
    sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
    sregs.efer |= EFER_LME | EFER_LMA;
}

/// FPU state after FNINIT, with SSE exceptions masked.
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: FPU_CONTROL_WORD,
        mxcsr: MXCSR_DEFAULT,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regs_point_at_entry_and_zero_page() {
        let regs = boot_regs(0x100_0000);
        assert_eq!(regs.rip, 0x100_0000);
        assert_eq!(regs.rsi, ZERO_PAGE_START);
        assert_eq!(regs.rflags, 2);
        assert_eq!(regs.rsp, BOOT_STACK_POINTER);
    }

    #[test]
    fn sregs_enable_long_mode_with_boot_selectors() {
        let mut sregs = kvm_sregs::default();
        configure_long_mode(&mut sregs, 0x9000);
        assert_eq!(sregs.cr3, 0x9000);
        assert_ne!(sregs.cr0 & CR0_PG, 0);
        assert_ne!(sregs.cr0 & CR0_PE, 0);
        assert_ne!(sregs.cr4 & CR4_PAE, 0);
        assert_eq!(sregs.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!((sregs.cs.selector, sregs.cs.l), (0x8, 1));
        assert_eq!((sregs.ds.selector, sregs.ss.selector), (0x10, 0x10));
        assert_eq!(sregs.gdt.base, GDT_START);
        assert_eq!(sregs.gdt.limit, 31);
    }
}
