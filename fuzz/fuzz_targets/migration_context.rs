//! Fuzz target: opening a ColdContext migration's sealed context (`cargo +nightly fuzz run
//! migration_context corpus/migration_context`). The property is in
//! `props/migration_context.rs`, shared with `hypervisor-agent/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/migration_context.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_migration_context(data);
});
