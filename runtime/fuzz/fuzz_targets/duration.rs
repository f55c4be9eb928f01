//! libFuzzer entry for `hull_runtime::fuzz::duration`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_runtime::fuzz::duration(data));
