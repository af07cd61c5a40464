//! GetParameterValues and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::{decode_parameter_values, encode_parameter_values, ParameterValue};
use crate::xml::{El, Writer};

/// Reads parameters by full or partial path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetParameterValues {
    /// Full paths, or partial paths ending in a dot.
    pub parameter_names: Vec<String>,
}

impl Rpc for GetParameterValues {
    const NAME: &'static str = "GetParameterValues";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterValues { parameter_names: el.path_list("ParameterNames")? })
    }
    fn encode(&self, w: &mut Writer) {
        w.string_array("ParameterNames", &self.parameter_names);
    }
}

/// The values read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetParameterValuesResponse {
    /// Names and values.
    pub parameter_list: Vec<ParameterValue>,
}

impl Rpc for GetParameterValuesResponse {
    const NAME: &'static str = "GetParameterValuesResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterValuesResponse { parameter_list: decode_parameter_values(el, "ParameterList")? })
    }
    fn encode(&self, w: &mut Writer) {
        encode_parameter_values(w, "ParameterList", &self.parameter_list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::{Body, DateTime, Value};

    #[test]
    fn round_trips() {
        round_trip(Body::GetParameterValues(GetParameterValues {
            parameter_names: vec!["Device.DeviceInfo.".into(), "Device.WiFi.SSID.1.SSID".into()],
        }));
        round_trip(Body::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: vec![
                ParameterValue::new("A.b", Value::UnsignedInt(7)),
                ParameterValue::new("A.c", Value::Long(-9_000_000_000)),
                ParameterValue::new("A.d", Value::UnsignedLong(u64::MAX)),
                ParameterValue::new("A.e", Value::Boolean(true)),
                ParameterValue::new("A.f", Value::DateTime(DateTime::from_unix(0))),
                ParameterValue::new("A.g", Value::Base64("aGk=".into())),
                ParameterValue::new("A.h", Value::HexBinary("00ff".into())),
                ParameterValue::new("A.i", Value::Decimal("1.5".into())),
                ParameterValue::new("A.j", Value::String(String::new())),
            ],
        }));
    }
}
