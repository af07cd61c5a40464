//! Inform (CPE to ACS, opens every session) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::{decode_parameter_values, encode_parameter_values, DeviceId, Event, ParameterValue};
use crate::value::DateTime;
use crate::xml::{El, Writer};

/// Opens a session: who the CPE is, why it calls, and its Inform parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inform {
    /// DeviceId
    pub device_id: DeviceId,
    /// Events (at most 64).
    pub events: Vec<Event>,
    /// Always 1 in practice.
    pub max_envelopes: u32,
    /// The CPE's clock.
    pub current_time: DateTime,
    /// Attempts since the last successful session.
    pub retry_count: u32,
    /// Inform parameters and changed values.
    pub parameter_list: Vec<ParameterValue>,
}

impl Inform {
    /// Whether the Inform carries an event with this code.
    pub fn has_event(&self, code: &str) -> bool {
        self.events.iter().any(|e| e.code == code)
    }
}

impl Rpc for Inform {
    const NAME: &'static str = "Inform";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(Inform {
            device_id: DeviceId::decode(el.req("DeviceId")?)?,
            events: el.list("Event", Event::decode)?,
            max_envelopes: el.opt("MaxEnvelopes").map(|e| e.as_u32()).transpose()?.unwrap_or(1),
            current_time: el.datetime("CurrentTime")?,
            retry_count: el.opt("RetryCount").map(|e| e.as_u32()).transpose()?.unwrap_or(0),
            parameter_list: match el.opt("ParameterList") {
                Some(_) => decode_parameter_values(el, "ParameterList")?,
                None => Vec::new(),
            },
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.open("DeviceId");
        self.device_id.encode(w);
        w.close("DeviceId");
        w.struct_array("Event", "EventStruct", &self.events, |w, e| e.encode(w));
        w.display("MaxEnvelopes", self.max_envelopes);
        w.text("CurrentTime", self.current_time.as_str());
        w.display("RetryCount", self.retry_count);
        encode_parameter_values(w, "ParameterList", &self.parameter_list);
    }
}

/// Accepts the Inform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InformResponse {
    /// Always 1.
    pub max_envelopes: u32,
}

impl Rpc for InformResponse {
    const NAME: &'static str = "InformResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(InformResponse { max_envelopes: el.opt("MaxEnvelopes").map(|e| e.as_u32()).transpose()?.unwrap_or(1) })
    }
    fn encode(&self, w: &mut Writer) {
        w.display("MaxEnvelopes", self.max_envelopes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::{Body, Value};

    #[test]
    fn round_trips() {
        round_trip(Body::Inform(Inform {
            device_id: DeviceId {
                manufacturer: "vRGW".into(),
                oui: "00A0B1".into(),
                product_class: "Host".into(),
                serial_number: "SN-1".into(),
            },
            events: vec![Event::new("1 BOOT"), Event { code: "M Reboot".into(), command_key: "r1".into() }],
            max_envelopes: 1,
            current_time: DateTime::from_unix(1_795_302_534),
            retry_count: 2,
            parameter_list: vec![ParameterValue::new(
                "Device.DeviceInfo.SoftwareVersion",
                Value::String("0.1.0".into()),
            )],
        }));
        round_trip(Body::InformResponse(InformResponse { max_envelopes: 1 }));
    }
}
