//! TR-181 (Device:2) objects a gateway and a virtualization host need, plus our vendor
//! extension (`X_VRGW-ORG_Virtualization`), with TR-069 data-model semantics.
//!
//! # Layout
//! - [`schema`]: definitions compiled from `data/device2.dm`, which `dm-gen` ([`gen`]) extracts
//!   from the Broadband Forum XML; the host and vRGW profiles.
//! - [`path`]: path syntax and templates; [`types`]: named-type checks (IPv4Address, ...).
//! - [`tree`]: an in-memory data model; [`handler`]: the trait every subtree is served through.
//! - [`model`]: [`DataModel`], the CWMP-facing whole: mounts, attributes, value changes,
//!   ParameterKey, all-or-nothing sets.
//! - [`rules`]: a vRGW's checks that span parameters; [`factory`]: its factory configuration.
//! - [`docs`]: the generated reference table (docs/datamodel.md).
//!
//! # Call order
//! Build a [`Tree`] from [`Schema::host`] or [`Schema::vrgw`], wrap it in a [`DataModel`], mount
//! handlers for embedded devices, then feed it the RPCs of a CWMP session. No I/O happens here;
//! handlers that do I/O (a vRGW proxy) live in the daemons.

pub mod docs;
pub mod factory;
#[cfg(feature = "gen")]
pub mod gen;
pub mod handler;
pub mod model;
pub mod path;
pub mod rpc;
pub mod rules;
pub mod schema;
pub mod tree;
pub mod types;

pub use handler::Handler;
pub use model::{DataModel, ValueChanges};
pub use schema::{Schema, INSTANCE_MOUNT, VIRTUALIZATION};
pub use tree::Tree;
