//! ScheduleInform and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::xml::{El, Writer};

/// Asks for an Inform ("3 SCHEDULED", "M ScheduleInform") after a delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleInform {
    /// Seconds from now.
    pub delay_seconds: u32,
    /// CommandKey
    pub command_key: String,
}

impl Rpc for ScheduleInform {
    const NAME: &'static str = "ScheduleInform";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(ScheduleInform {
            delay_seconds: el.u32("DelaySeconds")?,
            command_key: el.opt_string("CommandKey").unwrap_or_default(),
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.display("DelaySeconds", self.delay_seconds);
        w.text("CommandKey", &self.command_key);
    }
}

super::empty_message!(
    /// Scheduled.
    ScheduleInformResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::ScheduleInform(ScheduleInform { delay_seconds: 30, command_key: "s".into() }));
        round_trip(Body::ScheduleInformResponse(ScheduleInformResponse {}));
    }
}
