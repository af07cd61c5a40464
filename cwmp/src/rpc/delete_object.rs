//! DeleteObject and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::xml::{El, Writer};

/// Deletes one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteObject {
    /// The instance path, ending in a dot (`Device.NAT.PortMapping.2.`).
    pub object_name: String,
    /// The new ParameterKey once applied.
    pub parameter_key: String,
}

impl Rpc for DeleteObject {
    const NAME: &'static str = "DeleteObject";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(DeleteObject {
            object_name: el.path("ObjectName")?,
            parameter_key: el.opt_string("ParameterKey").unwrap_or_default(),
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("ObjectName", &self.object_name);
        w.text("ParameterKey", &self.parameter_key);
    }
}

/// Deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteObjectResponse {
    /// 0: deleted; 1: effective after a reboot.
    pub status: u8,
}

impl Rpc for DeleteObjectResponse {
    const NAME: &'static str = "DeleteObjectResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(DeleteObjectResponse { status: super::status(el)? })
    }
    fn encode(&self, w: &mut Writer) {
        w.display("Status", self.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::DeleteObject(DeleteObject {
            object_name: "Device.NAT.PortMapping.2.".into(),
            parameter_key: "k".into(),
        }));
        round_trip(Body::DeleteObjectResponse(DeleteObjectResponse { status: 0 }));
    }
}
