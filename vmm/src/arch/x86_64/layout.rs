//! Guest physical memory layout.
//!
//! ```text
//! 0x0000_0500  GDT
//! 0x0000_7000  zero page (boot_params)
//! 0x0000_8ff0  initial stack pointer
//! 0x0000_9000  PML4, PDPT (0xa000), PD (0xb000)
//! 0x0002_0000  kernel command line
//! 0x0009_fc00  EBDA: MP table (up to 0xa_0000)
//! 0x0010_0000  high RAM; the kernel loads at its ELF physical addresses
//!  ...         initramfs at the top of low RAM
//! 0xc000_0000  32-bit MMIO gap: virtio-mmio devices, IOAPIC, LAPIC, TSS
//! 0x1_0000_0000  RAM above the gap when the guest has more than 3 GiB
//! ```

/// Global descriptor table used during boot.
pub const GDT_START: u64 = 0x500;
/// Zero page handed to the kernel in RSI.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial RSP/RBP; the kernel switches to its own stack at once.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Page-map level 4 table.
pub const PML4_START: u64 = 0x9000;
/// Page-directory-pointer table.
pub const PDPTE_START: u64 = 0xa000;
/// Page directory (2 MiB pages).
pub const PDE_START: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_START: u64 = 0x20000;
/// x86 COMMAND_LINE_SIZE, including the terminating NUL.
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// Start of the extended BIOS data area: RAM below it is usable.
pub const EBDA_START: u64 = 0x9fc00;
/// End of the EBDA, where the legacy ISA hole begins.
pub const EBDA_END: u64 = 0xa0000;
/// The MP table lives in the EBDA, where the kernel scans for it.
pub const MPTABLE_START: u64 = EBDA_START;
/// First byte after the legacy ISA hole (video RAM, option ROMs, BIOS).
pub const HIMEM_START: u64 = 0x10_0000;

/// Start of the 32-bit MMIO gap; RAM never overlaps it.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// First address above 4 GiB: RAM past the gap continues here.
pub const MMIO_GAP_END: u64 = 1 << 32;

/// virtio-mmio device windows: one page per device from here.
pub const VIRTIO_MMIO_START: u64 = 0xd000_0000;
/// Size of each virtio-mmio device window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// Space reserved for virtio-mmio devices.
pub const VIRTIO_MMIO_END: u64 = 0xe000_0000;

/// In-kernel IOAPIC (KVM_CREATE_IRQCHIP).
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// Local APIC of every vCPU.
pub const APIC_START: u64 = 0xfee0_0000;
/// Three pages KVM needs for the real-mode TSS on Intel (KVM_SET_TSS_ADDR).
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;
/// One page for KVM's EPT identity map, just below the TSS.
pub const KVM_IDENTITY_MAP_ADDRESS: u64 = 0xfffb_c000;

/// Number of IOAPIC pins (GSIs 0..=23).
pub const IOAPIC_PINS: u32 = 24;
/// Legacy serial port COM1.
pub const SERIAL_PORT_BASE: u64 = 0x3f8;
/// Number of COM1 registers.
pub const SERIAL_PORT_LEN: u64 = 8;
/// ISA IRQ of COM1.
pub const SERIAL_GSI: u32 = 4;
/// i8042 keyboard controller: data at 0x60, command/status at 0x64.
pub const I8042_PORT_BASE: u64 = 0x60;
/// 0x60..=0x64.
pub const I8042_PORT_LEN: u64 = 5;
/// First GSI handed to virtio-mmio devices (0..4 are legacy ISA lines).
pub const VIRTIO_GSI_START: u32 = 5;

/// Page size of the guest.
pub const PAGE_SIZE: u64 = 0x1000;

/// A RAM range in guest physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    pub start: u64,
    pub len: u64,
}

impl RamRange {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// Splits `size` bytes of RAM around the MMIO gap: everything below
/// [`MMIO_GAP_START`] first, the rest from 4 GiB up.
pub fn ram_ranges(size: u64) -> Vec<RamRange> {
    let low = size.min(MMIO_GAP_START);
    let mut ranges = vec![RamRange { start: 0, len: low }];
    if size > low {
        ranges.push(RamRange {
            start: MMIO_GAP_END,
            len: size - low,
        });
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ram_is_one_range_below_the_gap() {
        assert_eq!(
            ram_ranges(512 << 20),
            vec![RamRange {
                start: 0,
                len: 512 << 20
            }]
        );
        assert_eq!(
            ram_ranges(MMIO_GAP_START),
            vec![RamRange {
                start: 0,
                len: MMIO_GAP_START
            }]
        );
    }

    #[test]
    fn large_ram_is_split_around_the_gap() {
        let ranges = ram_ranges(4 << 30);
        assert_eq!(
            ranges,
            vec![
                RamRange {
                    start: 0,
                    len: MMIO_GAP_START
                },
                RamRange {
                    start: 1 << 32,
                    len: (4 << 30) - MMIO_GAP_START
                },
            ]
        );
        assert_eq!(ranges.iter().map(|r| r.len).sum::<u64>(), 4 << 30);
    }

    #[test]
    fn fixed_windows_sit_inside_the_gap() {
        for addr in [
            VIRTIO_MMIO_START,
            VIRTIO_MMIO_END - 1,
            IOAPIC_START,
            APIC_START,
            KVM_TSS_ADDRESS,
        ] {
            assert!((MMIO_GAP_START..MMIO_GAP_END).contains(&addr));
        }
        const { assert!(MPTABLE_START + 1024 <= EBDA_END) };
    }
}
