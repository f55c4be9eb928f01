//! The zero page (`struct boot_params`) of the Linux x86 boot protocol,
//! with the E820 memory map the kernel learns its RAM from.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params};
use vm_memory::{ByteValued, GuestAddress};

use super::layout::{RamRange, CMDLINE_START, EBDA_START, HIMEM_START};

/// E820 type of usable RAM.
const E820_RAM: u32 = 1;
/// "HdrS": the setup header is valid.
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448;
const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// Boot loader ID "undefined", the one for loaders without an assigned ID.
const KERNEL_LOADER_OTHER: u8 = 0xff;
/// CONFIG_PHYSICAL_ALIGN of x86_64 kernels.
const KERNEL_MIN_ALIGNMENT_BYTES: u32 = 0x100_0000;

/// The initramfs as loaded into guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitramfsPlacement {
    pub address: GuestAddress,
    pub size: u32,
}

/// `boot_params`, writable into guest memory.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct ZeroPage(pub boot_params);

// SAFETY: boot_params is a packed, plain-old-data C struct: every byte
// pattern is a valid value and it has no padding.
unsafe impl ByteValued for ZeroPage {}

impl Default for ZeroPage {
    fn default() -> Self {
        // SAFETY: boot_params consists of integers and arrays of integers,
        // for which all-zero is a valid (and the expected initial) value.
        Self(unsafe { std::mem::zeroed() })
    }
}

/// The E820 map for `ram`: the first range loses the EBDA and the legacy
/// ISA hole (0x9fc00..1 MiB), which the kernel must not use as RAM.
pub fn e820_map(ram: &[RamRange]) -> Vec<boot_e820_entry> {
    let entry = |addr, size| boot_e820_entry {
        addr,
        size,
        type_: E820_RAM,
    };
    let mut map = Vec::with_capacity(ram.len() + 1);
    for range in ram {
        let end = range.start + range.len;
        if range.start < EBDA_START {
            map.push(entry(range.start, EBDA_START.min(end) - range.start));
            if end > HIMEM_START {
                map.push(entry(HIMEM_START, end - HIMEM_START));
            }
        } else {
            map.push(entry(range.start, range.len));
        }
    }
    map
}

/// Builds the zero page for a kernel whose NUL-terminated command line of
/// `cmdline_size` bytes sits at [`CMDLINE_START`].
pub fn zero_page(
    ram: &[RamRange],
    cmdline_size: usize,
    initramfs: Option<InitramfsPlacement>,
) -> ZeroPage {
    let mut page = ZeroPage::default();
    let params = &mut page.0;
    params.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    params.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    params.hdr.header = KERNEL_HDR_MAGIC;
    params.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT_BYTES;
    params.hdr.cmd_line_ptr = CMDLINE_START as u32;
    params.hdr.cmdline_size = cmdline_size as u32;
    if let Some(initramfs) = initramfs {
        params.hdr.ramdisk_image = initramfs.address.0 as u32;
        params.hdr.ramdisk_size = initramfs.size;
    }
    let map = e820_map(ram);
    params.e820_entries = map.len() as u8;
    for (slot, entry) in params.e820_table.iter_mut().zip(map) {
        *slot = entry;
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(e: &boot_e820_entry) -> (u64, u64, u32) {
        (e.addr, e.size, e.type_)
    }

    #[test]
    fn e820_skips_the_legacy_hole_and_keeps_high_ram() {
        let ram = [
            RamRange {
                start: 0,
                len: 0xc000_0000,
            },
            RamRange {
                start: 1 << 32,
                len: 1 << 30,
            },
        ];
        let map: Vec<_> = e820_map(&ram).iter().map(entry).collect();
        assert_eq!(
            map,
            vec![
                (0, EBDA_START, E820_RAM),
                (HIMEM_START, 0xc000_0000 - HIMEM_START, E820_RAM),
                (1 << 32, 1 << 30, E820_RAM),
            ]
        );
    }

    #[test]
    fn zero_page_carries_header_cmdline_initramfs_and_e820() {
        let ram = [RamRange {
            start: 0,
            len: 256 << 20,
        }];
        let initramfs = InitramfsPlacement {
            address: GuestAddress(0x0f00_0000),
            size: 0x1234,
        };
        let page = zero_page(&ram, 42, Some(initramfs));
        let bytes = page.as_slice();
        assert_eq!(bytes.len(), 4096);
        // Offsets from Documentation/arch/x86/zero-page.rst and boot.rst.
        let u32_at = |off: usize| u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
        let u16_at = |off: usize| u16::from_le_bytes(bytes[off..off + 2].try_into().unwrap());
        assert_eq!(u16_at(0x1fe), 0xaa55);
        assert_eq!(u32_at(0x202), 0x5372_6448);
        assert_eq!(bytes[0x210], 0xff);
        assert_eq!(u32_at(0x218), 0x0f00_0000);
        assert_eq!(u32_at(0x21c), 0x1234);
        assert_eq!(u32_at(0x228), CMDLINE_START as u32);
        assert_eq!(u32_at(0x230), KERNEL_MIN_ALIGNMENT_BYTES);
        assert_eq!(u32_at(0x238), 42);
        assert_eq!(bytes[0x1e8], 2);
        // Second e820 entry (20 bytes each, from 0x2d0): high RAM.
        let second = &bytes[0x2d0 + 20..0x2d0 + 40];
        assert_eq!(
            u64::from_le_bytes(second[0..8].try_into().unwrap()),
            HIMEM_START
        );
        assert_eq!(
            u64::from_le_bytes(second[8..16].try_into().unwrap()),
            (256 << 20) - HIMEM_START
        );
        assert_eq!(
            u32::from_le_bytes(second[16..20].try_into().unwrap()),
            E820_RAM
        );
    }

    #[test]
    fn zero_page_without_initramfs_leaves_ramdisk_fields_zero() {
        let page = zero_page(
            &[RamRange {
                start: 0,
                len: 128 << 20,
            }],
            1,
            None,
        );
        let bytes = page.as_slice();
        assert!(bytes[0x218..0x220].iter().all(|b| *b == 0));
    }
}
