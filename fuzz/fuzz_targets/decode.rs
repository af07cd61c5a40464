//! Fuzz target: CWMP envelope decoding, strict and lenient (the ACS reading CPE quirks), with
//! re-encode round trips and lenient-reads-strict-alike (`cargo +nightly fuzz run decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cwmp::fuzzing::check_decode(data);
});
