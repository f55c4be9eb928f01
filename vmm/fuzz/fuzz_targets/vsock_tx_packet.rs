//! libFuzzer entry for `hull_vmm::fuzz::vsock_tx_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_vmm::fuzz::vsock_tx_packet(data));
