//! libFuzzer entry for `hull_vmm::fuzz::virtio_mmio_registers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_vmm::fuzz::virtio_mmio_registers(data));
