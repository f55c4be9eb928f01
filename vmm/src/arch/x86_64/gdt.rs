//! The boot GDT: flat 64-bit code and data segments for the 64-bit boot
//! protocol, plus the matching KVM segment descriptors for SREGS.

use kvm_bindings::kvm_segment;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError};

use super::layout::GDT_START;

/// Access/flags of a long-mode code segment: present, DPL 0, execute/read,
/// accessed, L=1, G=1.
const CODE64: u16 = 0xa09b;
/// Access/flags of a data segment: present, DPL 0, read/write, accessed,
/// D/B=1, G=1.
const DATA: u16 = 0xc093;
/// Access/flags of a busy 64-bit TSS: present, type 0xb.
const TSS: u16 = 0x808b;

/// Indices into [`boot_gdt`].
pub const CODE_INDEX: u16 = 1;
pub const DATA_INDEX: u16 = 2;
pub const TSS_INDEX: u16 = 3;

/// Encodes one segment descriptor (the layout of the kernel's GDT_ENTRY).
pub fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let (flags, base, limit) = (u64::from(flags), u64::from(base), u64::from(limit));
    ((base & 0xff00_0000) << (56 - 24))
        | ((flags & 0x0000_f0ff) << 40)
        | ((limit & 0x000f_0000) << (48 - 16))
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0x0000_ffff)
}

/// Null, code, data and TSS descriptors, all flat over 4 GiB.
pub fn boot_gdt() -> [u64; 4] {
    [
        0,
        gdt_entry(CODE64, 0, 0xfffff),
        gdt_entry(DATA, 0, 0xfffff),
        gdt_entry(TSS, 0, 0xfffff),
    ]
}

/// Decodes GDT entry `index` of `entry` into the form KVM_SET_SREGS takes.
pub fn kvm_segment_from_gdt(entry: u64, index: u16) -> kvm_segment {
    let bit = |shift: u32| ((entry >> shift) & 1) as u8;
    let granularity = bit(55);
    let raw_limit = ((entry & 0x000f_0000_0000_0000) >> 32) as u32 | (entry & 0xffff) as u32;
    let limit = if granularity == 1 {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    let base = ((entry & 0xff00_0000_0000_0000) >> 32) | ((entry & 0x0000_00ff_ffff_0000) >> 16);
    let present = bit(47);
    kvm_segment {
        base,
        limit,
        selector: index * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present,
        dpl: ((entry >> 45) & 0x3) as u8,
        db: bit(54),
        s: bit(44),
        l: bit(53),
        g: granularity,
        avl: bit(52),
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

/// Writes [`boot_gdt`] to [`GDT_START`].
pub fn write_boot_gdt<M: GuestMemory>(mem: &M) -> Result<(), GuestMemoryError> {
    for (i, entry) in boot_gdt().iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(GDT_START + i as u64 * 8))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_flat_segments_like_the_kernel() {
        // Values of GDT_ENTRY(0xa09b, 0, 0xfffff) etc. in the kernel sources.
        assert_eq!(gdt_entry(CODE64, 0, 0xfffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(DATA, 0, 0xfffff), 0x00cf_9300_0000_ffff);
        assert_eq!(gdt_entry(0, 0x1234_5678, 0xabcde), 0x120a_0034_5678_bcde);
    }

    #[test]
    fn decodes_code_segment_for_long_mode() {
        let code = kvm_segment_from_gdt(boot_gdt()[CODE_INDEX as usize], CODE_INDEX);
        assert_eq!(code.selector, 0x8);
        assert_eq!((code.base, code.limit), (0, 0xffff_ffff));
        assert_eq!((code.type_, code.present, code.dpl, code.s), (0xb, 1, 0, 1));
        assert_eq!((code.l, code.db, code.g, code.unusable), (1, 0, 1, 0));

        let data = kvm_segment_from_gdt(boot_gdt()[DATA_INDEX as usize], DATA_INDEX);
        assert_eq!(data.selector, 0x10);
        assert_eq!((data.type_, data.l, data.db), (0x3, 0, 1));

        let tss = kvm_segment_from_gdt(boot_gdt()[TSS_INDEX as usize], TSS_INDEX);
        assert_eq!((tss.selector, tss.type_, tss.s), (0x18, 0xb, 0));

        let null = kvm_segment_from_gdt(0, 0);
        assert_eq!(null.unusable, 1);
    }
}
