//! GetRPCMethods (either direction) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::xml::{El, Writer};

super::empty_message!(
    /// Asks the peer which methods it supports.
    GetRPCMethods
);

/// The methods the peer supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetRPCMethodsResponse {
    /// Method names.
    pub method_list: Vec<String>,
}

impl Rpc for GetRPCMethodsResponse {
    const NAME: &'static str = "GetRPCMethodsResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetRPCMethodsResponse { method_list: el.string_list("MethodList")? })
    }
    fn encode(&self, w: &mut Writer) {
        w.string_array("MethodList", &self.method_list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::GetRPCMethods(GetRPCMethods {}));
        round_trip(Body::GetRPCMethodsResponse(GetRPCMethodsResponse {
            method_list: vec!["Inform".into(), "GetRPCMethods".into()],
        }));
    }
}
