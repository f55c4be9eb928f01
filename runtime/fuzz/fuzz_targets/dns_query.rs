//! libFuzzer entry for `hull_runtime::fuzz::dns_query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_runtime::fuzz::dns_query(data));
