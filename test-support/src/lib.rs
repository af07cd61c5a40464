//! What the workspace's integration tests and benches share to start daemons and talk to them.
//!
//! Layout:
//! - [`process`]: a daemon started from its binary ([`process::Spawn`]), its `listening ...`
//!   line read and its addresses parsed, its stderr logged to a file, killed when dropped (a
//!   failing test included); [`process::workspace_binary`] finds (or builds) another crate's binary.
//! - [`temp`]: a temp dir per process and test, removed when dropped unless the test panicked.
//! - [`http`]: one request, the whole answer (status, headers, body).
//! - [`nbi`]: a client of the ACS's northbound API (bearer token, JSON in and out), `enc`,
//!   waiting for a device, a task with a connection request.
//! - [`acs`]: the `acs` binary with the tests' credentials, and an ACS inside the test's process.
//! - [`agent`]: the `hypervisor-agent` binary on a configuration written for the test, and
//!   `vrgw-proxy` in a network namespace.
//!
//! The path of a crate's own binary comes from the caller (`env!("CARGO_BIN_EXE_acs")` compiles
//! only in that crate's tests and benches); other crates' binaries come from `workspace_binary`.
//!
//! Call order: make a [`temp::TempDir`], start the daemons into it (each a [`process::Daemon`]),
//! talk to them ([`nbi::NbiClient`], [`http::Http`]); drop in reverse: daemons killed, then the dir
//! removed (kept and named when the test failed).

pub mod acs;
pub mod agent;
pub mod haproxy;
pub mod http;
pub mod nbi;
pub mod pg;
pub mod process;
pub mod temp;

pub use nbi::{enc, NbiClient, Reply};
pub use process::{workspace_binary, Daemon, Spawn};
pub use temp::TempDir;
