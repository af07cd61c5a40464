//! One file per CWMP method: the request and its response, each with decode and encode.
//!
//! Field order in `encode` follows the Broadband Forum schema's `xs:sequence`; decoding finds
//! children by local name in any order and namespace, as real CPEs need.

use crate::error::DecodeError;
use crate::xml::{El, Writer};

/// A message that sits in the SOAP Body as `cwmp:NAME`.
pub(crate) trait Rpc: Sized {
    /// The element name.
    const NAME: &'static str;
    /// Decodes from the Body child.
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError>;
    /// Writes the children of the Body child.
    fn encode(&self, w: &mut Writer);
}

/// Declares a message without arguments.
macro_rules! empty_message {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
        pub struct $name {}

        impl crate::rpc::Rpc for $name {
            const NAME: &'static str = stringify!($name);
            fn decode(_el: crate::xml::El<'_, '_>) -> Result<Self, crate::error::DecodeError> {
                Ok($name {})
            }
            fn encode(&self, _w: &mut crate::xml::Writer) {}
        }
    };
}
pub(crate) use empty_message;

pub mod add_object;
pub mod autonomous_du_state_change_complete;
pub mod autonomous_transfer_complete;
pub mod cancel_transfer;
pub mod change_du_state;
pub mod delete_object;
pub mod download;
pub mod du_state_change_complete;
pub mod factory_reset;
pub mod get_all_queued_transfers;
pub mod get_options;
pub mod get_parameter_attributes;
pub mod get_parameter_names;
pub mod get_parameter_values;
pub mod get_queued_transfers;
pub mod get_rpc_methods;
pub mod inform;
pub mod kicked;
pub mod reboot;
pub mod request_download;
pub mod schedule_download;
pub mod schedule_inform;
pub mod set_parameter_attributes;
pub mod set_parameter_values;
pub mod set_vouchers;
pub mod transfer_complete;
pub mod upload;

/// Parses a 0/1 status of a response.
pub(crate) fn status(el: El<'_, '_>) -> Result<u8, DecodeError> {
    let s = el.req("Status")?;
    match s.text() {
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(s.invalid("status 0 or 1")),
    }
}

/// Used by the unit tests of each message file: encode in an envelope, decode, compare.
#[cfg(test)]
pub(crate) fn round_trip(body: crate::Body) {
    let env = crate::Envelope::new(crate::CwmpNs::V1_2, Some("id-1".into()), body);
    let bytes = env.encode();
    let back =
        crate::Envelope::decode(bytes.as_bytes(), &crate::Limits::default()).unwrap_or_else(|e| panic!("{e}\n{bytes}"));
    assert_eq!(back, env, "{bytes}");
}
