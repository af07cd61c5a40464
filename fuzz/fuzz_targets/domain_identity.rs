//! Fuzz target: reading a vRGW's identity (UUID, MACs, addresses, travelling configuration) from
//! a domain XML another host's libvirt returned (`cargo +nightly fuzz run domain_identity
//! corpus/domain_identity`). The property is in `props/domain_identity.rs`, shared with
//! `hypervisor-agent/tests/fuzz_replay.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../props/domain_identity.rs"]
mod prop;

fuzz_target!(|data: &[u8]| {
    prop::check_domain_identity(data);
});
