//! Fuzz target: HTTP authentication headers, `Authorization` checked by `cwmp::auth::Verifier`
//! and `WWW-Authenticate` answered by `cwmp::auth::answer` (`cargo +nightly fuzz run auth
//! corpus/auth`). The property is in `props/auth.rs`, shared with `acs/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/auth.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_auth(data);
});
