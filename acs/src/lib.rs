//! The ACS: CWMP endpoint, durable per-device task queue, SQLite store, GenieACS-compatible
//! northbound API, and a CPE simulator.
//!
//! # Layout
//! - [`store`]: one storage trait per aggregate (devices and their parameter cache, tasks,
//!   faults, presets, files, subscribers, migrations) with the SQLite engine's impl beside each;
//!   failures are a typed `StoreError`.
//! - [`auth`]: Digest and Basic, both sides.
//! - [`endpoint`]: CWMP sessions over HTTP, running tasks.
//! - [`tasks`]: `TaskSpec`, the task JSON typed once at the edge; CWMP requests, results,
//!   retries, reconciliation after restarts.
//! - [`nbi`]: the northbound API, one file per route family (`nbi/devices.rs`, `tasks.rs`,
//!   `faults.rs`, `presets.rs`, `files.rs`, `subscribers.rs`, `migrations.rs`), errors mapped to
//!   HTTP statuses by `nbi::NbiError::status`; [`query`]: its query language subset and device JSON.
//! - [`presets`]: provisioning profiles applied on Inform events; [`script`]: GenieACS's
//!   provision scripts in the embedded JavaScript engine, their declarations resolved into requests.
//! - [`profiles`]: subscribers' own settings, applied to their vRGW wherever it runs;
//!   [`portal`]: the customer web form they make them in.
//! - [`migration`]: moving a vRGW between hosts, orchestrated as tasks on both.
//! - [`webhooks`]: device and task events delivered to HTTP endpoints, with retries;
//!   [`metrics`]: Prometheus metrics, at `GET /metrics` on the NBI.
//! - [`tls`]: TLS for the CWMP endpoint.
//! - [`conn_req`]: connection requests; [`sim`]: the simulated CPE.
//!
//! Errors name what went wrong and map to the wire in one exhaustive `match` each:
//! `nbi::NbiError::status` (NBI), `portal::Refusal::status` (web form), `endpoint::Refusal::status`
//! (CWMP listener), `tasks::Failure::code` (a failed task's recorded fault); the store's failures
//! are `store::StoreError`.
//!

pub use cwmp::auth;
pub mod conn_req;
pub mod daemon;
pub mod endpoint;
pub mod file_urls;
pub mod metrics;
pub mod migration;
pub mod nbi;
pub mod portal;
pub mod presets;
pub mod profiles;
pub mod provisions;
pub mod query;
pub mod script;
pub mod sim;
pub mod store;
pub mod tasks;
pub mod tls;
pub mod webhooks;
