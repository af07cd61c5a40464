//! The property of the fuzz target `migration_context`: opening the sealed context a ColdContext
//! migration brings to the destination (`hypervisor_agent::seal`), which the ACS carries and any
//! client of the host's CWMP side could set. Input: the text set as `Migration.Context`.
//! Included with `#[path]` by the target and by `hypervisor-agent/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use hypervisor_agent::seal::{seal, shaped, Opener, SealError};

/// Checks the property on one input; panics when it does not hold. Returns whether the input
/// has the shape of a sealed context (base64 of a sender's key, a ciphertext and a tag).
/// Nothing opens with a key it was not sealed to (a fresh key here), without a panic; and the
/// input itself, sealed to a key, opens with that key to the same bytes.
pub fn check_migration_context(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let opener = Opener::new().expect("a key pair");
    assert_eq!(opener.open(&text), Err(SealError::Unopenable), "opened with a key it was not sealed to");
    let key = Opener::new().expect("a key pair");
    let sealed = seal(&key.public_key(), data).expect("sealing");
    assert_eq!(key.open(&sealed).as_deref(), Ok(data), "sealed and opened, not the same");
    shaped(&text)
}
