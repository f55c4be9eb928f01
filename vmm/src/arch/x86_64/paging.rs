//! Identity-mapped page tables for the first 1 GiB, as the 64-bit boot
//! protocol requires paging to be on at the kernel entry point.

use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError};

use super::layout::{PDE_START, PDPTE_START, PML4_START};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
/// Page-directory entry maps a 2 MiB page.
const HUGE_PAGE: u64 = 1 << 7;
const ENTRIES: u64 = 512;
const HUGE_PAGE_SIZE: u64 = 2 << 20;

/// Writes PML4 -> PDPT -> PD with 512 2-MiB pages mapping guest physical
/// 0..1 GiB at the same virtual addresses. Returns the CR3 value.
pub fn write_identity_map<M: GuestMemory>(mem: &M) -> Result<u64, GuestMemoryError> {
    mem.write_obj(PDPTE_START | PRESENT | WRITABLE, GuestAddress(PML4_START))?;
    mem.write_obj(PDE_START | PRESENT | WRITABLE, GuestAddress(PDPTE_START))?;
    for i in 0..ENTRIES {
        let entry = (i * HUGE_PAGE_SIZE) | PRESENT | WRITABLE | HUGE_PAGE;
        mem.write_obj(entry, GuestAddress(PDE_START + i * 8))?;
    }
    Ok(PML4_START)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    #[test]
    fn maps_first_gigabyte_with_2mib_pages() {
        let mem: GuestMemoryMmap<()> =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        assert_eq!(write_identity_map(&mem).unwrap(), PML4_START);

        let read = |addr: u64| mem.read_obj::<u64>(GuestAddress(addr)).unwrap();
        assert_eq!(read(PML4_START), 0xa003);
        assert_eq!(read(PML4_START + 8), 0);
        assert_eq!(read(PDPTE_START), 0xb003);
        assert_eq!(read(PDE_START), 0x83);
        assert_eq!(read(PDE_START + 8), 0x20_0083);
        assert_eq!(read(PDE_START + 511 * 8), 0x3fe0_0083);
    }
}
