//! XML-RPC, ours: the whole specification plus the `i8` and `nil` extensions, a serde mapping,
//! and a client and server over hyper.
//!
//! # Layout
//! - [`value`]: [`Value`] and [`DateTime`].
//! - [`codec`]: `methodCall`/`methodResponse` encode and decode, with [`Limits`].
//! - [`ser`], [`de`]: Rust types to and from [`Value`].
//! - [`server`]: method registry, `system.*`, multicall, HTTP front end.
//! - [`client`]: calls over pooled HTTP/1.1 connections.
//! - [`fault`]: [`Fault`] and the interoperability fault codes.
//!
//! The codec does no I/O; client and server run on tokio.

pub mod client;
pub mod codec;
pub mod de;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
pub mod ser;
pub mod server;
pub mod value;

pub use client::{Client, Error};
pub use codec::{decode_call, decode_response, encode_call, encode_response, Limits, MethodCall, MethodResponse};
pub use de::from_value;
pub use fault::Fault;
pub use ser::to_value;
pub use server::Server;
pub use value::{DateTime, Value};
