//! libFuzzer entry for `hull_vmm::fuzz::virtio_fs_writable_requests`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_vmm::fuzz::virtio_fs_writable_requests(data));
