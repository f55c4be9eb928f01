//! libFuzzer entry for `hull_vmm::fuzz::virtio_net_rx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_vmm::fuzz::virtio_net_rx(data));
