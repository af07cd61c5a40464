//! Fuzz target: reading a vRGW's identity (UUID, MACs, addresses, travelling configuration) from
//! a domain XML another host's libvirt returned (`cargo +nightly fuzz run domain_identity`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let xml = String::from_utf8_lossy(data);
    if let Some(id) = hypervisor_agent::domain::identity_of(&xml) {
        assert_eq!(id.macs.len(), 3);
    }
    let _ = hypervisor_agent::domain::name_of(&xml);
});
