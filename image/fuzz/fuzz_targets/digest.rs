//! libFuzzer entry for `hull_image::fuzz::digest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_image::fuzz::digest(data));
