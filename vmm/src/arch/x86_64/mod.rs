//! x86_64 guest setup for the 64-bit Linux boot protocol: memory layout,
//! zero page, page tables, GDT, vCPU registers, CPUID, MSRs, LAPIC and the
//! MP table that lets the kernel find every vCPU.

pub mod boot_params;
pub mod cpuid;
pub mod gdt;
pub mod lapic;
pub mod layout;
pub mod mptable;
pub mod msr;
pub mod paging;
pub mod regs;
