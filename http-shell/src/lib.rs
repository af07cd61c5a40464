//! The HTTP shell every daemon shares: one way to serve, one way to make clients, one CPE-side
//! session driver. The protocol crates (`cwmp`, `datamodel`, `xmlrpc`'s codec) do no I/O; this
//! crate owns the sockets they are spoken over.
//!
//! # Layout
//! - [`serve`](mod@serve): [`serve()`](serve::serve), the one accept loop (TLS or plain, a
//!   connection cap, header and idle clocks, body limits, accept errors survived, drain on
//!   shutdown), [`Limits`], and [`read_body`] for the services' bodies. Used by the ACS's CWMP,
//!   NBI and web-form listeners, the agent's and `cwmp-sim`'s connection-request listeners and
//!   `xmlrpc`'s server.
//! - [`random`]: the operating system's randomness for secrets, nonces and cookies (`cwmp` takes
//!   them as arguments).
//!
//! # Call order of the serving contract
//! The caller binds a `TcpListener` (tests bind port 0), builds its [`Limits`], and awaits
//! [`serve()`](serve::serve) with a service `Fn(Request<Incoming>, SocketAddr) -> Response` and a
//! shutdown future. When the shutdown future completes, `serve` stops accepting, lets in-flight
//! requests finish within [`Limits::drain`], and returns.

pub mod random;
pub mod serve;

pub use random::{fill_random, random_hex};
pub use serve::{read_body, serve, Limits, Refusal};

/// The TLS side of a listener: rustls's acceptor.
#[cfg(feature = "tls")]
pub type TlsAcceptor = tokio_rustls::TlsAcceptor;

/// Without the `tls` feature, listeners are plain only: this type has no values, so the only
/// `Option<TlsAcceptor>` is `None`.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub enum TlsAcceptor {}
