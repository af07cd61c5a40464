//! GetAllQueuedTransfers and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::AllQueuedTransfer;
use crate::xml::{El, Writer};

super::empty_message!(
    /// Lists every queued transfer, whoever asked for it.
    GetAllQueuedTransfers
);

/// All queued transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetAllQueuedTransfersResponse {
    /// Up to 16 entries.
    pub transfer_list: Vec<AllQueuedTransfer>,
}

impl Rpc for GetAllQueuedTransfersResponse {
    const NAME: &'static str = "GetAllQueuedTransfersResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetAllQueuedTransfersResponse {
            transfer_list: el.list("TransferList", |t| {
                Ok(AllQueuedTransfer {
                    command_key: t.opt_string("CommandKey").unwrap_or_default(),
                    state: t.u32("State")?,
                    is_download: t.bool("IsDownload")?,
                    file_type: t.req("FileType")?.text().to_string(),
                    file_size: t.u32("FileSize")?,
                    target_file_name: t.opt_string("TargetFileName").unwrap_or_default(),
                })
            })?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.struct_array("TransferList", "AllQueuedTransferStruct", &self.transfer_list, |w, t| {
            w.text("CommandKey", &t.command_key);
            w.display("State", t.state);
            w.bool("IsDownload", t.is_download);
            w.text("FileType", &t.file_type);
            w.display("FileSize", t.file_size);
            w.text("TargetFileName", &t.target_file_name);
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
        round_trip(Body::GetAllQueuedTransfers(GetAllQueuedTransfers {}));
        round_trip(Body::GetAllQueuedTransfersResponse(GetAllQueuedTransfersResponse {
            transfer_list: vec![AllQueuedTransfer {
                command_key: "a".into(),
                state: 1,
                is_download: true,
                file_type: "1 Firmware Upgrade Image".into(),
                file_size: 10,
                target_file_name: "x".into(),
            }],
        }));
    }
}
