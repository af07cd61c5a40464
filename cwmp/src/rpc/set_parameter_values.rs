//! SetParameterValues and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::{decode_parameter_values, encode_parameter_values, ParameterValue};
use crate::xml::{El, Writer};

/// Sets parameters, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetParameterValues {
    /// Names and values.
    pub parameter_list: Vec<ParameterValue>,
    /// The new ParameterKey once applied.
    pub parameter_key: String,
}

impl Rpc for SetParameterValues {
    const NAME: &'static str = "SetParameterValues";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(SetParameterValues {
            parameter_list: decode_parameter_values(el, "ParameterList")?,
            parameter_key: el.opt_string("ParameterKey").unwrap_or_default(),
        })
    }
    fn encode(&self, w: &mut Writer) {
        encode_parameter_values(w, "ParameterList", &self.parameter_list);
        w.text("ParameterKey", &self.parameter_key);
    }
}

/// Status 0: applied; 1: applied, takes effect after a reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetParameterValuesResponse {
    /// 0 or 1
    pub status: u8,
}

impl Rpc for SetParameterValuesResponse {
    const NAME: &'static str = "SetParameterValuesResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(SetParameterValuesResponse { status: super::status(el)? })
    }
    fn encode(&self, w: &mut Writer) {
        w.display("Status", self.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::{Body, Value};

    #[test]
    fn round_trips() {
        round_trip(Body::SetParameterValues(SetParameterValues {
            parameter_list: vec![
                ParameterValue::new("Device.WiFi.SSID.1.SSID", Value::String("café <&>".into())),
                ParameterValue::new("Device.DHCPv4.Server.Pool.1.LeaseTime", Value::Int(-1)),
            ],
            parameter_key: "k1".into(),
        }));
        round_trip(Body::SetParameterValuesResponse(SetParameterValuesResponse { status: 1 }));
    }
}
