//! libFuzzer entry for `hull_protocol::fuzz::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_protocol::fuzz::frames(data));
