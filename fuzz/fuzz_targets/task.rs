//! Fuzz target: the NBI's task bodies (`cargo +nightly fuzz run task corpus/task`). The property
//! is in `props/task.rs`, shared with `acs/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/task.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_task(data);
});
