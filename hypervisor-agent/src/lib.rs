//! The hypervisor agent: one per virtualization host. Toward the ACS a CWMP agent whose data
//! model embeds the data models of its vRGWs; toward each vRGW an XML-RPC client of its
//! vrgw-proxy; underneath, libvirt ([`compute`]) and the host's VLAN trunk ([`vlan`]).

pub mod agent;
pub mod compute;
pub mod domain;
pub mod host;
pub mod proxy;
pub mod state;
pub mod vlan;
pub mod worker;
