//! Per-vCPU CPUID, derived from KVM_GET_SUPPORTED_CPUID.
//!
//! Every vCPU is one core of a single socket with one thread per core; its
//! APIC ID is its index. The leaves that describe identity and topology are
//! rewritten so the kernel sees a consistent machine; the rest (including
//! the KVM paravirtual leaves at 0x4000_0000) passes through unchanged.

use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

const LEAF_VENDOR: u32 = 0;
const LEAF_FEATURES: u32 = 1;
const LEAF_CACHE_PARAMS: u32 = 4;
const LEAF_TOPOLOGY: u32 = 0xb;
const LEAF_TOPOLOGY_V2: u32 = 0x1f;
const LEAF_EXT_FEATURES: u32 = 0x8000_0001;
const LEAF_AMD_SIZE_IDENTIFIERS: u32 = 0x8000_0008;
const LEAF_AMD_EXT_APIC_ID: u32 = 0x8000_001e;

/// "Auth" of "AuthenticAMD" in EBX of leaf 0.
const AMD_VENDOR_EBX: u32 = 0x6874_7541;

/// Leaf 1 ECX: running under a hypervisor.
const ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 ECX: the LAPIC timer has TSC-deadline mode.
const ECX_TSC_DEADLINE: u32 = 1 << 24;
/// Leaf 1 EDX: EBX[23:16] (logical processor count) is valid.
const EDX_HTT: u32 = 1 << 28;
/// Leaf 0x8000_0001 ECX: core multi-processing legacy mode (AMD).
const ECX_CMP_LEGACY: u32 = 1 << 1;

/// Level types of leaves 0xb/0x1f (ECX[15:8]).
const LEVEL_TYPE_SMT: u32 = 1;
const LEVEL_TYPE_CORE: u32 = 2;

/// Number of APIC ID bits that tell `count` cores apart.
fn id_bits(count: u8) -> u32 {
    u32::BITS - u32::from(count.saturating_sub(1)).leading_zeros()
}

/// Leaves 0xb/0x1f for `function`: an SMT level with one thread, a core
/// level with `vcpus` cores, then the terminating invalid level.
fn topology_leaves(function: u32, apic_id: u32, vcpus: u8) -> [kvm_cpuid_entry2; 3] {
    let entry = |index: u32, eax, ebx, level_type: u32| kvm_cpuid_entry2 {
        function,
        index,
        flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
        eax,
        ebx,
        ecx: (level_type << 8) | index,
        edx: apic_id,
        ..Default::default()
    };
    [
        entry(0, 0, 1, LEVEL_TYPE_SMT),
        entry(1, id_bits(vcpus), u32::from(vcpus), LEVEL_TYPE_CORE),
        entry(2, 0, 0, 0),
    ]
}

/// The CPUID entries of vCPU `index` out of `vcpus`.
pub fn vcpu_cpuid_entries(
    supported: &[kvm_cpuid_entry2],
    index: u8,
    vcpus: u8,
) -> Vec<kvm_cpuid_entry2> {
    let apic_id = u32::from(index);
    let is_amd = supported
        .iter()
        .any(|e| e.function == LEAF_VENDOR && e.ebx == AMD_VENDOR_EBX);
    let mut entries = Vec::with_capacity(supported.len() + 3);
    let mut topology_written = Vec::new();

    for entry in supported {
        let mut entry = *entry;
        match entry.function {
            LEAF_FEATURES => {
                entry.ebx = (entry.ebx & 0x0000_ffff) | (u32::from(vcpus) << 16) | (apic_id << 24);
                entry.ecx |= ECX_HYPERVISOR;
                if vcpus > 1 {
                    entry.edx |= EDX_HTT;
                } else {
                    entry.edx &= !EDX_HTT;
                }
            }
            LEAF_CACHE_PARAMS => {
                let cache_level = (entry.eax >> 5) & 0x7;
                let sharing = if cache_level == 3 {
                    u32::from(vcpus) - 1
                } else {
                    0
                };
                entry.eax &= 0x3fff;
                entry.eax |= ((u32::from(vcpus) - 1) << 26) | (sharing << 14);
            }
            LEAF_TOPOLOGY | LEAF_TOPOLOGY_V2 => {
                if !topology_written.contains(&entry.function) {
                    topology_written.push(entry.function);
                    entries.extend(topology_leaves(entry.function, apic_id, vcpus));
                }
                continue;
            }
            LEAF_EXT_FEATURES if is_amd => {
                if vcpus > 1 {
                    entry.ecx |= ECX_CMP_LEGACY;
                } else {
                    entry.ecx &= !ECX_CMP_LEGACY;
                }
            }
            LEAF_AMD_SIZE_IDENTIFIERS if is_amd => {
                entry.ecx = (entry.ecx & !0xf0ff) | (id_bits(vcpus) << 12) | (u32::from(vcpus) - 1);
            }
            LEAF_AMD_EXT_APIC_ID if is_amd => {
                entry.eax = apic_id;
                // One thread per core (EBX[15:8] = 0); core ID = index.
                entry.ebx = (entry.ebx & !0xffff) | apic_id;
                // One node (ECX[10:8] = 0), node ID 0.
                entry.ecx &= !0x7ff;
            }
            _ => {}
        }
        entries.push(entry);
    }
    entries
}

/// Advertises the TSC-deadline LAPIC timer, which KVM emulates when it has
/// KVM_CAP_TSC_DEADLINE_TIMER but leaves out of KVM_GET_SUPPORTED_CPUID.
/// With it the kernel need not calibrate the LAPIC timer against the PIT.
pub fn advertise_tsc_deadline_timer(entries: &mut [kvm_cpuid_entry2]) {
    for entry in entries.iter_mut().filter(|e| e.function == LEAF_FEATURES) {
        entry.ecx |= ECX_TSC_DEADLINE;
    }
}

/// [`vcpu_cpuid_entries`] in the form KVM_SET_CPUID2 takes.
pub fn vcpu_cpuid(
    supported: &CpuId,
    index: u8,
    vcpus: u8,
) -> Result<CpuId, vmm_sys_util::fam::Error> {
    CpuId::from_entries(&vcpu_cpuid_entries(supported.as_slice(), index, vcpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        }
    }

    fn supported() -> Vec<kvm_cpuid_entry2> {
        vec![
            leaf(0, 0, 0x10, AMD_VENDOR_EBX, 0x444d_4163, 0x6974_6e65),
            leaf(1, 0, 0x00a0_0f11, 0x0000_0800, 0x7ed8_320b, 0x078b_fbff),
            leaf(0xb, 0, 1, 2, 0x100, 7),
            leaf(0xb, 1, 4, 8, 0x201, 7),
            leaf(0x4000_0000, 0, 0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
            leaf(0x8000_0001, 0, 0, 0, 0, 0),
            leaf(0x8000_0008, 0, 0x3030, 0, 0x0000_700f, 0),
            leaf(0x8000_001e, 0, 9, 0x0000_0109, 0x0000_0301, 0),
        ]
    }

    fn find(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> kvm_cpuid_entry2 {
        *entries
            .iter()
            .find(|e| e.function == function && e.index == index)
            .unwrap()
    }

    #[test]
    fn leaf1_carries_apic_id_count_and_hypervisor_bit() {
        let entries = vcpu_cpuid_entries(&supported(), 3, 4);
        let l1 = find(&entries, 1, 0);
        assert_eq!(l1.ebx >> 24, 3);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        assert_eq!(l1.ebx & 0xffff, 0x0800);
        assert_ne!(l1.ecx & ECX_HYPERVISOR, 0);
        assert_ne!(l1.edx & EDX_HTT, 0);

        let single = vcpu_cpuid_entries(&supported(), 0, 1);
        assert_eq!(find(&single, 1, 0).edx & EDX_HTT, 0);
    }

    #[test]
    fn topology_leaf_describes_one_socket_of_single_thread_cores() {
        let entries = vcpu_cpuid_entries(&supported(), 2, 3);
        let topo: Vec<_> = entries.iter().filter(|e| e.function == 0xb).collect();
        assert_eq!(topo.len(), 3);
        assert_eq!(
            (topo[0].eax, topo[0].ebx, topo[0].ecx, topo[0].edx),
            (0, 1, 0x100, 2)
        );
        assert_eq!(
            (topo[1].eax, topo[1].ebx, topo[1].ecx, topo[1].edx),
            (2, 3, 0x201, 2)
        );
        assert_eq!((topo[2].ebx, topo[2].ecx), (0, 2));
        assert!(topo
            .iter()
            .all(|e| e.flags == KVM_CPUID_FLAG_SIGNIFCANT_INDEX));
    }

    #[test]
    fn amd_leaves_count_cores_and_kvm_leaves_pass_through() {
        let entries = vcpu_cpuid_entries(&supported(), 1, 2);
        let sizes = find(&entries, 0x8000_0008, 0);
        assert_eq!(sizes.ecx & 0xff, 1);
        assert_eq!((sizes.ecx >> 12) & 0xf, 1);
        let ext_apic = find(&entries, 0x8000_001e, 0);
        assert_eq!((ext_apic.eax, ext_apic.ebx, ext_apic.ecx), (1, 1, 0));
        assert_ne!(find(&entries, 0x8000_0001, 0).ecx & ECX_CMP_LEGACY, 0);
        assert_eq!(find(&entries, 0x4000_0000, 0), supported()[4]);
    }

    #[test]
    fn tsc_deadline_bit_is_set_only_in_leaf1() {
        let mut entries = supported();
        advertise_tsc_deadline_timer(&mut entries);
        assert_ne!(find(&entries, 1, 0).ecx & ECX_TSC_DEADLINE, 0);
        assert_eq!(find(&entries, 0x8000_0001, 0).ecx, 0);
    }

    #[test]
    fn id_bits_covers_every_core() {
        assert_eq!([1, 2, 3, 4, 5, 32].map(id_bits), [0, 1, 2, 2, 3, 5]);
    }
}
