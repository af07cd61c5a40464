//! Reboot and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::xml::{El, Writer};

/// Reboots the CPE; the next Inform carries "M Reboot" with this command key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reboot {
    /// CommandKey
    pub command_key: String,
}

impl Rpc for Reboot {
    const NAME: &'static str = "Reboot";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(Reboot { command_key: el.opt_string("CommandKey").unwrap_or_default() })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("CommandKey", &self.command_key);
    }
}

super::empty_message!(
    /// Reboot accepted.
    RebootResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::Reboot(Reboot { command_key: "r1".into() }));
        round_trip(Body::RebootResponse(RebootResponse {}));
    }
}
