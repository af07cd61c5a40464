//! Fuzz target: CWMP envelope decoding, with re-encode round trip (`cargo +nightly fuzz run decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cwmp::fuzzing::check_decode(data);
});
