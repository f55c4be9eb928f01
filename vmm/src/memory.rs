//! Guest RAM: anonymous host mappings laid out by [`ram_ranges`] and
//! registered with KVM as memory slots.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemory as _, GuestMemoryRegion, MemoryRegionAddress};

use crate::arch::x86_64::layout::RamRange;
use crate::devices::virtio::GuestMemory;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot map {size_mib} MiB of guest memory: {source}")]
    Map {
        size_mib: u64,
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
    #[error("cannot register guest memory slot {slot} with KVM: {source}")]
    Register {
        slot: u32,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("guest memory region at {0:#x} has no host mapping")]
    NoHostMapping(u64),
}

/// Maps host memory for every range of `ranges`.
pub fn create(ranges: &[RamRange]) -> Result<GuestMemory, MemoryError> {
    let regions: Vec<_> = ranges
        .iter()
        .map(|r| (GuestAddress(r.start), r.len as usize))
        .collect();
    GuestMemory::from_ranges(&regions).map_err(|source| MemoryError::Map {
        size_mib: ranges.iter().map(|r| r.len).sum::<u64>() >> 20,
        source,
    })
}

/// Registers each region of `mem` as a KVM memory slot.
pub fn register(vm: &VmFd, mem: &GuestMemory) -> Result<(), MemoryError> {
    for (slot, region) in mem.iter().enumerate() {
        let slot = slot as u32;
        let host = region
            .get_host_address(MemoryRegionAddress(0))
            .map_err(|_| MemoryError::NoHostMapping(region.start_addr().0))?;
        let memory_region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the host range is a live mapping owned by `mem`, which the
        // caller keeps alive until `vm` is closed (see `vm::run`).
        unsafe { vm.set_user_memory_region(memory_region) }
            .map_err(|source| MemoryError::Register { slot, source })?;
    }
    Ok(())
}
