//! AddObject and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::xml::{El, Writer};

/// Creates an instance of a multi-instance object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddObject {
    /// The table path, ending in a dot (`Device.NAT.PortMapping.`).
    pub object_name: String,
    /// The new ParameterKey once applied.
    pub parameter_key: String,
}

impl Rpc for AddObject {
    const NAME: &'static str = "AddObject";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(AddObject {
            object_name: el.path("ObjectName")?,
            parameter_key: el.opt_string("ParameterKey").unwrap_or_default(),
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("ObjectName", &self.object_name);
        w.text("ParameterKey", &self.parameter_key);
    }
}

/// The new instance number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddObjectResponse {
    /// Instance number, from 1.
    pub instance_number: u32,
    /// 0: created; 1: created, effective after a reboot.
    pub status: u8,
}

impl Rpc for AddObjectResponse {
    const NAME: &'static str = "AddObjectResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let n = el.req("InstanceNumber")?;
        let instance_number = n.as_u32()?;
        if instance_number == 0 {
            return Err(n.invalid("instance number from 1"));
        }
        Ok(AddObjectResponse { instance_number, status: super::status(el)? })
    }
    fn encode(&self, w: &mut Writer) {
        w.display("InstanceNumber", self.instance_number);
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
        round_trip(Body::AddObject(AddObject {
            object_name: "Device.NAT.PortMapping.".into(),
            parameter_key: "".into(),
        }));
        round_trip(Body::AddObjectResponse(AddObjectResponse { instance_number: 3, status: 0 }));
    }
}
