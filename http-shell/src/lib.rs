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
//! - `client` (feature `client`): the one client builder (`client::Builder`: timeout, pool,
//!   Basic, Bearer or no authentication as the caller chooses) for the ACS's connection requests,
//!   webhooks and NBI calls, `cwmp-sim`'s downloads and `xmlrpc`'s client; and
//!   `client::Connection`, one connection (TLS for `https://`) for a whole exchange.
//! - `cpe` (feature `cpe`): the CPE side of a CWMP session over HTTP (`cpe::Link`: cookies,
//!   Digest retry, Basic only where the caller allows it), used by the hypervisor agent and
//!   `cwmp-sim`. It lives here rather than in `cwmp` because it owns a socket; it is a feature so
//!   that servers without a CPE side (`xmlrpc`'s server, the vRGW proxy) do not build it.
//! - [`flood`]: the attacker's side of every listener's flood test and of the flood benchmark
//!   (idle connections, a byte-a-second client, one timed exchange). It is always built, so the
//!   daemons' own tests use the same attack; it only opens connections to the address it is given.
//! - [`forwarded`]: the client's address behind a trusted reverse proxy (`X-Forwarded-For`),
//!   for the ACS's web form and CWMP listener.
//! - [`nofile`]: [`raise_nofile`], for a daemon whose listeners' caps add up to more descriptors
//!   than the usual soft limit of 1,024, and for the flood tests.
//! - [`random`]: the operating system's randomness for secrets, nonces and cookies (`cwmp` takes
//!   them as arguments).
//!
//! # Call order of the serving contract
//! The caller binds a `TcpListener` (tests bind port 0), builds its [`Limits`], and awaits
//! [`serve()`](serve::serve) with a service `Fn(Request<Incoming>, SocketAddr) -> Response` and a
//! shutdown future. When the shutdown future completes, `serve` stops accepting, lets in-flight
//! requests finish within [`Limits::drain`], and returns.
//!
//! # Features
//! `tls` (rustls for [`serve()`](serve::serve) and `client::Connection`), `client`, `cpe`
//! (with `client`); none by default, so the vRGW proxy's XML-RPC server builds without TLS.

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "cpe")]
pub mod cpe;
pub mod flood;
pub mod forwarded;
pub mod nofile;
pub mod random;
pub mod serve;

pub use nofile::raise_nofile;
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
