#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| timecoin_fuzz_checks::block(data));
