//! The hypervisor agent: one per virtualization host. Toward the ACS a CWMP agent whose data
//! model embeds the data models of its vRGWs; toward each vRGW an XML-RPC client of its
//! vrgw-proxy; underneath, libvirt ([`compute`]) and the host's VLAN trunk ([`vlan`]).

pub mod compute;
pub mod domain;
pub mod host;
pub mod state;
pub mod vlan;

/// `bytes` random bytes from the operating system, hex-encoded (secrets, nonces).
pub fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom as _;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = vec![0u8; bytes];
    // A secret must never be predictable: stop rather than go on with zeros.
    ring::rand::SystemRandom::new().fill(&mut buf).expect("the system's random number generator failed");
    let mut out = String::with_capacity(bytes * 2);
    for b in buf {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}
