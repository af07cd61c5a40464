//! XML-RPC, ours: the whole specification plus the `i8` and `nil` extensions, a serde mapping,
//! and a client and server over hyper.
//!
//! # Layout
//! - [`value`]: [`Value`] and [`DateTime`].
//! - [`codec`]: `methodCall`/`methodResponse` encode and decode, with [`Limits`].
//! - [`ser`], [`de`]: Rust types to and from [`Value`].
//! - `server` (feature `server`): method registry, `system.*`, multicall, HTTP front end.
//! - `client` (feature `client`): calls over pooled HTTP/1.1 connections.
//! - [`fault`]: [`Fault`] and the interoperability fault codes.
//! - `gz`: gzip both ways for the HTTP front ends.
//!
//! The codec and the serde mapping do no I/O and build without tokio or hyper
//! (`default-features = false`). The cargo features `client` and `server` (both default) add
//! the HTTP front ends: the client over hyper, the server over `http_shell::serve`.

#[cfg(feature = "client")]
pub mod client;
pub mod codec;
pub mod de;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(any(feature = "client", feature = "server"))]
mod gz;
pub mod ser;
#[cfg(feature = "server")]
pub mod server;
pub mod value;

#[cfg(feature = "client")]
pub use client::{Client, Error};
pub use codec::{decode_call, decode_response, encode_call, encode_response, Limits, MethodCall, MethodResponse};
pub use de::from_value;
pub use fault::Fault;
pub use ser::to_value;
#[cfg(feature = "server")]
pub use server::Server;
pub use value::{DateTime, Value};
