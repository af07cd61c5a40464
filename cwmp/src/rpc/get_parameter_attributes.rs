//! GetParameterAttributes and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::{Notification, ParameterAttribute};
use crate::xml::{El, Writer};

/// Reads notification and access-list attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetParameterAttributes {
    /// Full or partial paths.
    pub parameter_names: Vec<String>,
}

impl Rpc for GetParameterAttributes {
    const NAME: &'static str = "GetParameterAttributes";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterAttributes { parameter_names: el.path_list("ParameterNames")? })
    }
    fn encode(&self, w: &mut Writer) {
        w.string_array("ParameterNames", &self.parameter_names);
    }
}

/// The attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetParameterAttributesResponse {
    /// One entry per parameter.
    pub parameter_list: Vec<ParameterAttribute>,
}

impl Rpc for GetParameterAttributesResponse {
    const NAME: &'static str = "GetParameterAttributesResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterAttributesResponse {
            parameter_list: el.list("ParameterList", |e| {
                Ok(ParameterAttribute {
                    name: e.path("Name")?,
                    notification: Notification::decode(e.req("Notification")?)?,
                    access_list: e.string_list("AccessList")?,
                })
            })?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.struct_array("ParameterList", "ParameterAttributeStruct", &self.parameter_list, |w, p| {
            w.text("Name", &p.name);
            w.display("Notification", p.notification.code());
            w.string_array("AccessList", &p.access_list);
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
        round_trip(Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec!["Device.WiFi.".into()],
        }));
        round_trip(Body::GetParameterAttributesResponse(GetParameterAttributesResponse {
            parameter_list: vec![ParameterAttribute {
                name: "Device.WiFi.SSID.1.SSID".into(),
                notification: Notification::Passive,
                access_list: vec![],
            }],
        }));
    }
}
