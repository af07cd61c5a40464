//! The hypervisor agent: one per virtualization host. Toward the ACS a CWMP agent whose data
//! model embeds the data models of its vRGWs; toward each vRGW an XML-RPC client of its
//! vrgw-proxy; underneath, libvirt ([`compute`]) and the host's VLAN trunk ([`vlan`]).
//!
//! Layout: [`agent`] is the CWMP side (sessions with the ACS, connection requests); [`worker`]
//! runs the [`host`] on a thread of its own; [`host`] is the host data model and what it does
//! (`host/` holds one file per concern: request handling, provisioning, pools, the TR-181
//! topology mirror, reconciliation, migration, and [`host::HostError`] with its mapping to CWMP
//! faults); [`proxy`] mounts each vRGW's data model through its vrgw-proxy; [`state`] is the
//! agent's SQLite store; [`domain`] writes and reads libvirt domain XML; [`secrets`] makes the
//! files that hold secrets owner-only; [`vdevice`] is a vRGW's data model as a CWMP device of its
//! own (TR-069 Annex J.2) and [`vagent`] runs each as a CWMP device toward the ACS; [`session`]
//! is the session loop both the host and its virtual devices use; [`rootfs`] composes a container
//! vRGW's root file system, and [`compute::Routed`] sends each domain to the libvirt driver of
//! its flavor (QEMU for VMs, LXC for containers).

pub mod agent;
pub mod compute;
pub mod daemon;
pub mod domain;
pub mod firmware;
pub mod host;
pub mod metrics;
pub mod proxy;
pub mod rootfs;
pub mod seal;
pub mod secrets;
pub mod session;
pub mod state;
pub mod vagent;
pub mod vdevice;
pub mod vlan;
pub mod worker;
