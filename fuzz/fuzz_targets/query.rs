//! Fuzz target: the NBI's query language and projections, and the device JSON built from
//! parameters CPEs report (`cargo +nightly fuzz run query corpus/query`). The property is in
//! `props/query.rs`, shared with `acs/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/query.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_query(data);
});
