//! Fuzz target: the vRGW proxy's renderers fed values that passed only the schema (records
//! `path=value` separated by 0x1E): every line written must be a known directive with a value
//! of its type, and the check step must refuse whatever the renderers leave out
//! (`cargo +nightly fuzz run render corpus/render`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vrgw_proxy::fuzzing::check_render(data);
});
