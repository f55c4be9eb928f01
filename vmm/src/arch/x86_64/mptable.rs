//! Intel MultiProcessor Specification 1.4 tables, which tell the kernel
//! (CONFIG_X86_MPPARSE) about every vCPU, the IOAPIC and how ISA IRQs are
//! routed. Without ACPI this is how secondary vCPUs are found.
//!
//! Layout at [`MPTABLE_START`]: the 16-byte floating pointer, then the
//! configuration table (header and entries) right after it.

use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError};

use super::layout::{APIC_START, EBDA_END, IOAPIC_PINS, IOAPIC_START, MPTABLE_START};

const FLOATING_POINTER_LEN: usize = 16;
const HEADER_LEN: usize = 44;

const SPEC_REVISION: u8 = 4;
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;

const CPU_ENABLED: u8 = 1;
const CPU_BOOTSTRAP: u8 = 2;
/// Local APIC version of KVM's in-kernel LAPIC.
const APIC_VERSION: u8 = 0x14;
/// Version of KVM's in-kernel IOAPIC.
const IOAPIC_VERSION: u8 = 0x11;
const IOAPIC_ENABLED: u8 = 1;
/// CPU signature (family 6) and feature flags (FPU, APIC) of each
/// processor entry; the kernel uses CPUID instead, but fills its view from
/// these.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = (1 << 0) | (1 << 9);

const BUS_ID_ISA: u8 = 0;
const INTERRUPT_TYPE_INT: u8 = 0;
const INTERRUPT_TYPE_NMI: u8 = 1;
const INTERRUPT_TYPE_EXTINT: u8 = 3;
/// Polarity and trigger mode "conforms to the bus".
const INTERRUPT_FLAGS_DEFAULT: u16 = 0;
/// Destination "all local APICs".
const ALL_LOCAL_APICS: u8 = 0xff;

#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    #[error("the MP table for {0} vCPUs does not fit in the EBDA")]
    TooLarge(u8),
    #[error("cannot write the MP table to guest memory: {0}")]
    Write(#[source] GuestMemoryError),
}

/// The IOAPIC's ID: the first one after the vCPUs' APIC IDs.
pub fn ioapic_id(vcpus: u8) -> u8 {
    vcpus + 1
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_sub(*b))
}

/// Builds the floating pointer and configuration table for `vcpus` vCPUs,
/// addressed as if placed at `base`.
pub fn build(vcpus: u8, base: u64) -> Vec<u8> {
    let table_start = base + FLOATING_POINTER_LEN as u64;
    let ioapic = ioapic_id(vcpus);

    let mut entries = Vec::new();
    for cpu in 0..vcpus {
        let flags = CPU_ENABLED | if cpu == 0 { CPU_BOOTSTRAP } else { 0 };
        entries.extend([ENTRY_PROCESSOR, cpu, APIC_VERSION, flags]);
        entries.extend(CPU_SIGNATURE.to_le_bytes());
        entries.extend(CPU_FEATURES.to_le_bytes());
        entries.extend([0u8; 8]);
    }
    entries.extend([ENTRY_BUS, BUS_ID_ISA]);
    entries.extend(*b"ISA   ");
    entries.extend([ENTRY_IOAPIC, ioapic, IOAPIC_VERSION, IOAPIC_ENABLED]);
    entries.extend((IOAPIC_START as u32).to_le_bytes());
    for irq in 0..IOAPIC_PINS as u8 {
        entries.extend([ENTRY_IO_INTERRUPT, INTERRUPT_TYPE_INT]);
        entries.extend(INTERRUPT_FLAGS_DEFAULT.to_le_bytes());
        entries.extend([BUS_ID_ISA, irq, ioapic, irq]);
    }
    for (kind, destination, lint) in [
        (INTERRUPT_TYPE_EXTINT, 0, 0),
        (INTERRUPT_TYPE_NMI, ALL_LOCAL_APICS, 1),
    ] {
        entries.extend([ENTRY_LOCAL_INTERRUPT, kind]);
        entries.extend(INTERRUPT_FLAGS_DEFAULT.to_le_bytes());
        entries.extend([BUS_ID_ISA, 0, destination, lint]);
    }
    let entry_count = usize::from(vcpus) + 1 + 1 + IOAPIC_PINS as usize + 2;

    let mut table = Vec::with_capacity(HEADER_LEN + entries.len());
    table.extend(*b"PCMP");
    table.extend(((HEADER_LEN + entries.len()) as u16).to_le_bytes());
    table.push(SPEC_REVISION);
    table.push(0); // checksum, set below
    table.extend(*b"HULL    ");
    table.extend(*b"hull-vmm    ");
    table.extend(0u32.to_le_bytes()); // no OEM table
    table.extend(0u16.to_le_bytes()); // OEM table size
    table.extend((entry_count as u16).to_le_bytes());
    table.extend((APIC_START as u32).to_le_bytes());
    table.extend(0u32.to_le_bytes()); // no extended table
    table.extend(entries);
    table[7] = checksum(&table);

    let mut out = Vec::with_capacity(FLOATING_POINTER_LEN + table.len());
    out.extend(*b"_MP_");
    out.extend((table_start as u32).to_le_bytes());
    out.push(1); // length in 16-byte units
    out.push(SPEC_REVISION);
    out.push(0); // checksum, set below
    out.extend([0u8; 5]); // feature 1 = 0: the configuration table is present
    out[10] = checksum(&out);
    out.extend(table);
    out
}

/// Writes the MP table for `vcpus` vCPUs at [`MPTABLE_START`].
pub fn write<M: GuestMemory>(mem: &M, vcpus: u8) -> Result<(), MptableError> {
    let bytes = build(vcpus, MPTABLE_START);
    if MPTABLE_START + bytes.len() as u64 > EBDA_END {
        return Err(MptableError::TooLarge(vcpus));
    }
    mem.write_slice(&bytes, GuestAddress(MPTABLE_START))
        .map_err(MptableError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn floating_pointer_and_table_checksums_are_zero() {
        for vcpus in [1, 2, 7, 32] {
            let bytes = build(vcpus, MPTABLE_START);
            assert_eq!(&bytes[0..4], b"_MP_");
            assert_eq!(sum(&bytes[..16]), 0);
            let table = &bytes[16..];
            assert_eq!(&table[0..4], b"PCMP");
            let len = u16::from_le_bytes([table[4], table[5]]) as usize;
            assert_eq!(len, table.len());
            assert_eq!(sum(table), 0);
        }
    }

    #[test]
    fn layout_lists_processors_bus_ioapic_and_interrupts() {
        let vcpus = 2;
        let bytes = build(vcpus, MPTABLE_START);
        let pointer = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(u64::from(pointer), MPTABLE_START + 16);

        let table = &bytes[16..];
        let count = u16::from_le_bytes([table[34], table[35]]);
        assert_eq!(count, 2 + 1 + 1 + 24 + 2);
        assert_eq!(
            u32::from_le_bytes(table[36..40].try_into().unwrap()),
            0xfee0_0000
        );

        let entries = &table[HEADER_LEN..];
        // Processor 0 is the enabled bootstrap processor, 1 is enabled.
        assert_eq!(&entries[0..4], &[ENTRY_PROCESSOR, 0, APIC_VERSION, 3]);
        assert_eq!(&entries[20..24], &[ENTRY_PROCESSOR, 1, APIC_VERSION, 1]);
        let rest = &entries[40..];
        assert_eq!(&rest[0..8], b"\x01\x00ISA   ");
        assert_eq!(&rest[8..12], &[ENTRY_IOAPIC, 3, IOAPIC_VERSION, 1]);
        assert_eq!(
            u32::from_le_bytes(rest[12..16].try_into().unwrap()),
            0xfec0_0000
        );
        // IRQ 4 (the serial port) goes to IOAPIC pin 4.
        let irq4 = &rest[16 + 4 * 8..16 + 5 * 8];
        assert_eq!(irq4, &[ENTRY_IO_INTERRUPT, 0, 0, 0, 0, 4, 3, 4]);
        let locals = &rest[16 + 24 * 8..];
        assert_eq!(locals, &[4, 3, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0xff, 1]);
    }

    #[test]
    fn largest_table_fits_in_the_ebda() {
        let mem: GuestMemoryMmap<()> =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        write(&mem, 32).unwrap();
        let mut signature = [0u8; 4];
        mem.read_slice(&mut signature, GuestAddress(MPTABLE_START))
            .unwrap();
        assert_eq!(&signature, b"_MP_");
    }
}
