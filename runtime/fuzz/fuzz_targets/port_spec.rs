//! libFuzzer entry for `hull_runtime::fuzz::port_spec`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_runtime::fuzz::port_spec(data));
