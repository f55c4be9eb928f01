//! Local APIC setup: LINT0 delivers the PIC's ExtINT, LINT1 delivers NMI,
//! as on a PC where the BIOS configured virtual wire mode.

use kvm_bindings::kvm_lapic_state;

/// Register offsets in the APIC page.
const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;

/// Delivery modes (bits 8..=10 of an LVT entry).
const DELIVERY_MODE_EXTINT: u32 = 0b111;
const DELIVERY_MODE_NMI: u32 = 0b100;

fn read_register(state: &kvm_lapic_state, offset: usize) -> u32 {
    let bytes: [u8; 4] = std::array::from_fn(|i| state.regs[offset + i] as u8);
    u32::from_le_bytes(bytes)
}

fn write_register(state: &mut kvm_lapic_state, offset: usize, value: u32) {
    for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
        state.regs[offset + i] = byte as _;
    }
}

fn with_delivery_mode(lvt: u32, mode: u32) -> u32 {
    (lvt & !0x700) | (mode << 8)
}

/// Rewrites LVT0/LVT1 of `state` (from KVM_GET_LAPIC) for virtual wire mode.
pub fn configure_lint(state: &mut kvm_lapic_state) {
    let lvt0 = read_register(state, APIC_LVT0);
    write_register(
        state,
        APIC_LVT0,
        with_delivery_mode(lvt0, DELIVERY_MODE_EXTINT),
    );
    let lvt1 = read_register(state, APIC_LVT1);
    write_register(
        state,
        APIC_LVT1,
        with_delivery_mode(lvt1, DELIVERY_MODE_NMI),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_extint_on_lint0_and_nmi_on_lint1_keeping_other_bits() {
        let mut state = kvm_lapic_state::default();
        // Masked, with delivery mode "fixed" and vector 0x30.
        write_register(&mut state, APIC_LVT0, 0x0001_0030);
        write_register(&mut state, APIC_LVT1, 0x0001_0700);
        configure_lint(&mut state);
        assert_eq!(read_register(&state, APIC_LVT0), 0x0001_0730);
        assert_eq!(read_register(&state, APIC_LVT1), 0x0001_0400);
    }
}
