//! Fuzz target: the web form's `application/x-www-form-urlencoded` decoding and the check of a
//! submitted page (`cargo +nightly fuzz run portal_form corpus/portal_form`). The property is in
//! `props/form.rs`, shared with `acs/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/form.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_form(data);
});
