//! GetQueuedTransfers and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::QueuedTransfer;
use crate::xml::{El, Writer};

super::empty_message!(
    /// Lists transfers the ACS queued.
    GetQueuedTransfers
);

/// The queued transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetQueuedTransfersResponse {
    /// Up to 16 entries.
    pub transfer_list: Vec<QueuedTransfer>,
}

impl Rpc for GetQueuedTransfersResponse {
    const NAME: &'static str = "GetQueuedTransfersResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetQueuedTransfersResponse {
            transfer_list: el.list("TransferList", |t| {
                Ok(QueuedTransfer {
                    command_key: t.opt_string("CommandKey").unwrap_or_default(),
                    state: t.u32("State")?,
                })
            })?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.struct_array("TransferList", "QueuedTransferStruct", &self.transfer_list, |w, t| {
            w.text("CommandKey", &t.command_key);
            w.display("State", t.state);
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
        round_trip(Body::GetQueuedTransfers(GetQueuedTransfers {}));
        round_trip(Body::GetQueuedTransfersResponse(GetQueuedTransfersResponse {
            transfer_list: vec![QueuedTransfer { command_key: "a".into(), state: 2 }],
        }));
    }
}
