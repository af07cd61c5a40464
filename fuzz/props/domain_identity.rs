//! The property of the fuzz target `domain_identity`: reading a vRGW's identity (UUID, MACs,
//! management address, travelling configuration) from a domain XML another host's libvirt
//! returned (`hypervisor_agent::domain::identity_of`, `name_of`). Input: the XML. Included with
//! `#[path]` by the fuzz target and by `hypervisor-agent/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use hypervisor_agent::domain::{identity_of, name_of};

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Checks the property on one input; panics when it does not hold. Returns whether the XML
/// described one of our vRGWs. Whatever is read is read from the document, not made up: each
/// field is text of the XML (the configuration as its hex), and a vRGW has three NICs.
pub fn check_domain_identity(data: &[u8]) -> bool {
    let xml = String::from_utf8_lossy(data);
    if let Some(name) = name_of(&xml) {
        assert!(xml.contains(name.as_str()), "name {name:?} is not in the document");
    }
    let Some(id) = identity_of(&xml) else { return false };
    assert_eq!(identity_of(&xml).as_ref(), Some(&id), "read twice, read differently");
    assert_eq!(id.macs.len(), 3, "{id:?}");
    for mac in &id.macs {
        assert!(xml.contains(mac.as_str()), "MAC {mac:?} is not in the document");
    }
    assert!(xml.contains(id.uuid.as_str()), "UUID {:?} is not in the document", id.uuid);
    assert!(xml.contains(&format!("vrgw.mgmt={}", id.mgmt_address)), "{:?}", id.mgmt_address);
    if let Some(p) = &id.profile {
        assert!(xml.to_ascii_lowercase().contains(&hex(p)), "configuration {p:?} is not in the document");
    }
    true
}
