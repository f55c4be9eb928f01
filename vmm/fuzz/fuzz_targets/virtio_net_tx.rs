//! libFuzzer entry for `hull_vmm::fuzz::virtio_net_tx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_vmm::fuzz::virtio_net_tx(data));
