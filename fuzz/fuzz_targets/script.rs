//! Fuzz target: provision and virtual-parameter scripts, and the paths they declare
//! (`cargo +nightly fuzz run script corpus/script`). The property is in `props/script.rs`,
//! shared with `acs/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/script.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_script(data);
});
