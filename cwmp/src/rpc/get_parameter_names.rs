//! GetParameterNames and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::ParameterInfo;
use crate::xml::{El, Writer};

/// Lists names below a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetParameterNames {
    /// A full parameter path, a partial path ending in a dot, or empty for the root.
    pub parameter_path: String,
    /// Only the level directly below the path.
    pub next_level: bool,
}

impl Rpc for GetParameterNames {
    const NAME: &'static str = "GetParameterNames";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterNames {
            parameter_path: el.opt_path("ParameterPath")?.unwrap_or_default(),
            next_level: el.bool("NextLevel")?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("ParameterPath", &self.parameter_path);
        w.bool("NextLevel", self.next_level);
    }
}

/// The names found, with writability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetParameterNamesResponse {
    /// Names.
    pub parameter_list: Vec<ParameterInfo>,
}

impl Rpc for GetParameterNamesResponse {
    const NAME: &'static str = "GetParameterNamesResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterNamesResponse {
            parameter_list: el.list("ParameterList", |e| {
                Ok(ParameterInfo { name: e.path("Name")?, writable: e.bool("Writable")? })
            })?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.struct_array("ParameterList", "ParameterInfoStruct", &self.parameter_list, |w, p| {
            w.text("Name", &p.name);
            w.bool("Writable", p.writable);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::GetParameterNames(GetParameterNames { parameter_path: "Device.".into(), next_level: true }));
        round_trip(Body::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: vec![
                ParameterInfo { name: "Device.DeviceInfo.".into(), writable: false },
                ParameterInfo { name: "Device.WiFi.SSID.1.SSID".into(), writable: true },
            ],
        }));
    }
}
