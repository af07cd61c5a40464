//! The vRGW proxy's pure parts, shared by its binary, its tests and the fuzz target `render`:
//! the data model's values and state file, the check step and the renderers. No sockets, no
//! daemons; the binary (`main.rs`, `proxy.rs`, `daemons.rs`, `rpc.rs`) owns those.
//!
//! # Layout
//! - [`model`]: factory defaults, live values, hosts from leases, the state file.
//! - [`values`]: the types every rendered value is parsed into (host name, SSID, WPA key, ...).
//! - [`check`]: the check step: shared vRGW rules, then the types of everything rendered.
//! - [`render`]: dnsmasq, nftables and hostapd configurations from a checked tree.
//! - [`fuzzing`]: the property the fuzz target and the corpus replay check.
//! - [`files`]: atomic file replacement.
//!
//! # Call order
//! [`check::check`] a candidate tree; when it has no problem, [`render::render`] it, then let the
//! daemons' own checkers and the binary apply the result.

pub mod check;
pub mod files;
pub mod fuzzing;
pub mod model;
pub mod render;
pub mod values;
