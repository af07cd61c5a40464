//! CancelTransfer and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::xml::{El, Writer};

/// Cancels a queued transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelTransfer {
    /// The transfer's CommandKey.
    pub command_key: String,
}

impl Rpc for CancelTransfer {
    const NAME: &'static str = "CancelTransfer";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(CancelTransfer { command_key: el.opt_string("CommandKey").unwrap_or_default() })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("CommandKey", &self.command_key);
    }
}

super::empty_message!(
    /// Cancelled.
    CancelTransferResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::CancelTransfer(CancelTransfer { command_key: "dl-1".into() }));
        round_trip(Body::CancelTransferResponse(CancelTransferResponse {}));
    }
}
