//! SetParameterAttributes and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::{Notification, SetParameterAttribute};
use crate::xml::{El, Writer};

/// Changes notification and access-list attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetParameterAttributes {
    /// The changes.
    pub parameter_list: Vec<SetParameterAttribute>,
}

impl Rpc for SetParameterAttributes {
    const NAME: &'static str = "SetParameterAttributes";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(SetParameterAttributes {
            parameter_list: el.list("ParameterList", |e| {
                Ok(SetParameterAttribute {
                    name: e.opt_path("Name")?.unwrap_or_default(),
                    notification_change: e.bool("NotificationChange")?,
                    notification: Notification::decode(e.req("Notification")?)?,
                    access_list_change: e.bool("AccessListChange")?,
                    access_list: e.string_list("AccessList")?,
                })
            })?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.struct_array("ParameterList", "SetParameterAttributesStruct", &self.parameter_list, |w, p| {
            w.text("Name", &p.name);
            w.bool("NotificationChange", p.notification_change);
            w.display("Notification", p.notification.code());
            w.bool("AccessListChange", p.access_list_change);
            w.string_array("AccessList", &p.access_list);
        });
    }
}

super::empty_message!(
    /// Attributes applied.
    SetParameterAttributesResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![SetParameterAttribute {
                name: "Device.WiFi.SSID.1.SSID".into(),
                notification_change: true,
                notification: Notification::Active,
                access_list_change: true,
                access_list: vec!["Subscriber".into()],
            }],
        }));
        round_trip(Body::SetParameterAttributesResponse(SetParameterAttributesResponse {}));
    }
}
