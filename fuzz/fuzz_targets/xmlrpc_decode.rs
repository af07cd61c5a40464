//! Fuzz target: XML-RPC call and response decoding, with re-encode round trip
//! (`cargo +nightly fuzz run xmlrpc_decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xmlrpc::fuzzing::check_decode(data);
});
