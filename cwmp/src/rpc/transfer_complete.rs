//! TransferComplete (CPE to ACS) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::TransferFault;
use crate::value::DateTime;
use crate::xml::{El, Writer};

/// Reports the end of a Download or Upload the ACS asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferComplete {
    /// The request's CommandKey.
    pub command_key: String,
    /// Code 0 on success.
    pub fault: TransferFault,
    /// StartTime
    pub start_time: DateTime,
    /// CompleteTime
    pub complete_time: DateTime,
}

impl Rpc for TransferComplete {
    const NAME: &'static str = "TransferComplete";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(TransferComplete {
            command_key: el.opt_string("CommandKey").unwrap_or_default(),
            fault: TransferFault::decode(el.req("FaultStruct")?)?,
            start_time: el.datetime("StartTime")?,
            complete_time: el.datetime("CompleteTime")?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("CommandKey", &self.command_key);
        self.fault.encode(w, "FaultStruct");
        w.text("StartTime", self.start_time.as_str());
        w.text("CompleteTime", self.complete_time.as_str());
    }
}

super::empty_message!(
    /// Recorded.
    TransferCompleteResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::TransferComplete(TransferComplete {
            command_key: "dl-1".into(),
            fault: TransferFault { code: 9010, string: "no route".into() },
            start_time: DateTime::from_unix(5),
            complete_time: DateTime::from_unix(6),
        }));
        round_trip(Body::TransferCompleteResponse(TransferCompleteResponse {}));
    }
}
