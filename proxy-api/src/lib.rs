//! The contract between the host agent and each vRGW's `vrgw-proxy`, over XML-RPC: one
//! definition both sides compile, so a method's name, its parameters, its result and its faults
//! cannot drift apart.
//!
//! # Layout
//! - [`Method`] and the method constants ([`GET`], [`SET`], [`TRY_SET`], ...): name, help text,
//!   `system.methodSignature`, and the Rust types of the parameters and the result.
//! - [`value`]: [`WireValue`], a CWMP parameter value as it travels (`{name, type, value}`), and
//!   the one place that knows the wire's type names.
//! - [`fault`]: [`ProxyFault`] (what travels as an XML-RPC fault, with its mapping to and from
//!   CWMP fault codes) and [`WireFault`] (one refused parameter in a result).
//!
//! # Call order
//! The proxy registers each method with `xmlrpc::Server::register_typed(M.name, M.help,
//! M.signature, ...)` taking `M`'s parameter type and returning its result type; the agent calls
//! `xmlrpc::Client::call_typed(M.name, params)` with the same types. No I/O happens here.
//!
//! The wire format is what docs/vrgw-proxy.md documents (Python's `xmlrpc.client` speaks it):
//! parameters are positional, values are `{name, type, value}` structs with the lexical value,
//! faults carry CWMP fault codes.

use std::marker::PhantomData;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod fault;
pub mod value;

pub use fault::{ProxyFault, WireFault};
pub use value::{wire_type, xsd_type, Lexical, WireValue};

/// One method of the contract: its name, help text and signatures (return type, then parameter
/// types, as `system.methodSignature` lists them), and in its type the Rust types of its
/// parameters `P` and its result `R`.
pub struct Method<P, R> {
    /// The XML-RPC method name.
    pub name: &'static str,
    /// What `system.methodHelp` says.
    pub help: &'static str,
    /// What `system.methodSignature` says.
    pub signature: &'static [&'static [&'static str]],
    types: PhantomData<fn(P) -> R>,
}

impl<P, R> Method<P, R> {
    const fn new(name: &'static str, help: &'static str, signature: &'static [&'static [&'static str]]) -> Self {
        Method { name, help, signature, types: PhantomData }
    }
}

impl<P, R> std::fmt::Debug for Method<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method").field("name", &self.name).finish()
    }
}

/// Parameters of a method that takes none: sent as no parameters; anything sent is ignored, as
/// it always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoParams;

impl Serialize for NoParams {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for NoParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NoParams, D::Error> {
        IgnoredAny::deserialize(d).map(|_| NoParams)
    }
}

/// `get`: values of full or partial paths.
pub const GET: Method<Paths, Vec<WireValue>> =
    Method::new("get", "Values of full or partial parameter paths: [{name, type, value}].", &[&["array", "array"]]);

/// `set`: values applied all or nothing; a refusal is a fault.
pub const SET: Method<SetParams, i32> = Method::new(
    "set",
    "Sets values all-or-nothing: ([{name, value, type?}], parameter_key). Returns 0.",
    &[&["int", "array", "string"]],
);

/// `try_set`: what `set` does, with the refused parameters as the result rather than a fault:
/// one call checks (the daemons' own checkers once) and applies.
pub const TRY_SET: Method<SetParams, Vec<WireFault>> = Method::new(
    "try_set",
    "Checks values as validate does and, when every one is accepted, applies them as set does: \
     ([{name, value, type?}], parameter_key) -> [{name, code, reason}], empty when applied.",
    &[&["array", "array", "string"]],
);

/// `validate`: what `set` checks, nothing applied.
pub const VALIDATE: Method<ValidateParams, Vec<WireFault>> = Method::new(
    "validate",
    "Checks values as set would, applying nothing: ([{name, value, type?}]) -> [{name, code, reason}], \
     empty when every value would be accepted.",
    &[&["array", "array"]],
);

/// `names`: GetParameterNames.
pub const NAMES: Method<NamesParams, Vec<NameInfo>> = Method::new(
    "names",
    "GetParameterNames: (path, next_level) -> [{name, writable}].",
    &[&["array", "string", "boolean"]],
);

/// `add_object`: AddObject.
pub const ADD_OBJECT: Method<ObjectParams, u32> = Method::new(
    "add_object",
    "AddObject: (table path, parameter_key) -> instance number.",
    &[&["int", "string", "string"]],
);

/// `delete_object`: DeleteObject.
pub const DELETE_OBJECT: Method<ObjectParams, i32> =
    Method::new("delete_object", "DeleteObject: (instance path, parameter_key) -> 0.", &[&["int", "string", "string"]]);

/// `factory_reset`: the factory configuration, applied.
pub const FACTORY_RESET: Method<NoParams, bool> =
    Method::new("factory_reset", "Restores the factory configuration and applies it.", &[&["boolean"]]);

/// `reboot`: runs the configured reboot command.
pub const REBOOT: Method<NoParams, bool> =
    Method::new("reboot", "Reboots the vRGW (runs the configured reboot command).", &[&["boolean"]]);

/// `announce`: unsolicited ARP for the LAN address; what was announced.
pub const ANNOUNCE: Method<NoParams, String> = Method::new(
    "announce",
    "Announces the LAN address from this vRGW (unsolicited ARP), after it took over a subscriber's LAN.",
    &[&["string"]],
);

/// `health`: state of the proxy and its daemons.
pub const HEALTH: Method<NoParams, Health> =
    Method::new("health", "State of the proxy and its daemons.", &[&["struct"]]);

/// The parameter paths of `get`: one array of paths (what the agent sends), or the paths as
/// separate parameters (also accepted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paths(pub Vec<String>);

impl Serialize for Paths {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.0,).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Paths, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Paths;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of paths")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Paths, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<OneOrMany>()? {
                    match p {
                        OneOrMany::One(s) => out.push(s),
                        OneOrMany::Many(v) => out.extend(v),
                    }
                }
                Ok(Paths(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Positional parameters: serialized as a sequence (XML-RPC `params`), deserialized from one,
/// trailing ones with `#[serde(default)]` optional.
macro_rules! positional {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                ($(&self.$field,)*).serialize(s)
            }
        }
    };
}

positional! {
    /// `set` and `try_set`: the values, and the ParameterKey to record (empty when not sent).
    SetParams {
        /// The values.
        values: Vec<WireValue>,
        /// The ParameterKey.
        #[serde(default)]
        parameter_key: String,
    }
}

positional! {
    /// `validate`: the values.
    ValidateParams {
        /// The values.
        values: Vec<WireValue>,
    }
}

positional! {
    /// `names`: the path (empty for everything) and whether only the next level is listed.
    NamesParams {
        /// The path.
        #[serde(default)]
        path: String,
        /// Only the next level.
        #[serde(default)]
        next_level: bool,
    }
}

positional! {
    /// `add_object` and `delete_object`: the table or instance path, and the ParameterKey.
    ObjectParams {
        /// The table (AddObject) or instance (DeleteObject) path.
        path: String,
        /// The ParameterKey.
        #[serde(default)]
        parameter_key: String,
    }
}

/// One entry of `names`' result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameInfo {
    /// The path.
    pub name: String,
    /// Whether it can be set.
    pub writable: bool,
}

impl From<cwmp::ParameterInfo> for NameInfo {
    fn from(p: cwmp::ParameterInfo) -> NameInfo {
        NameInfo { name: p.name, writable: p.writable }
    }
}

impl From<NameInfo> for cwmp::ParameterInfo {
    fn from(n: NameInfo) -> cwmp::ParameterInfo {
        cwmp::ParameterInfo { name: n.name, writable: n.writable }
    }
}

/// `health`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `degraded` when the last apply failed or dnsmasq is not running.
    pub status: String,
    /// The proxy's version.
    pub version: String,
    /// Seconds since the proxy started.
    pub uptime: u64,
    /// The ParameterKey of the configuration in force.
    pub parameter_key: String,
    /// Whether dnsmasq runs.
    pub dnsmasq_running: bool,
    /// The last start-up or apply problem, empty when none.
    pub last_error: String,
    /// The proxy's resident memory, KiB.
    pub rss_kib: u64,
}
