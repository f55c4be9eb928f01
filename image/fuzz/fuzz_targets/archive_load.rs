//! libFuzzer entry for `hull_image::fuzz::archive_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hull_image::fuzz::archive_load(data));
