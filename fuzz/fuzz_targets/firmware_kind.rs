//! Fuzz target: what a downloaded firmware file is (`cargo +nightly fuzz run firmware_kind
//! corpus/firmware_kind`). The property is in `props/firmware_kind.rs`, shared with
//! `hypervisor-agent/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/firmware_kind.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_firmware_kind(data);
});
