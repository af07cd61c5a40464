//! AutonomousTransferComplete (CPE to ACS) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::TransferFault;
use crate::value::DateTime;
use crate::xml::{El, Writer};

/// Reports a transfer the ACS did not ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutonomousTransferComplete {
    /// AnnounceURL
    pub announce_url: String,
    /// TransferURL
    pub transfer_url: String,
    /// Download (true) or upload.
    pub is_download: bool,
    /// FileType
    pub file_type: String,
    /// FileSize
    pub file_size: u32,
    /// TargetFileName
    pub target_file_name: String,
    /// Code 0 on success.
    pub fault: TransferFault,
    /// StartTime
    pub start_time: DateTime,
    /// CompleteTime
    pub complete_time: DateTime,
}

impl Rpc for AutonomousTransferComplete {
    const NAME: &'static str = "AutonomousTransferComplete";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let s = |n: &str| el.opt_string(n).unwrap_or_default();
        Ok(AutonomousTransferComplete {
            announce_url: s("AnnounceURL"),
            transfer_url: s("TransferURL"),
            is_download: el.bool("IsDownload")?,
            file_type: el.req("FileType")?.text().to_string(),
            file_size: el.u32("FileSize")?,
            target_file_name: s("TargetFileName"),
            fault: TransferFault::decode(el.req("FaultStruct")?)?,
            start_time: el.datetime("StartTime")?,
            complete_time: el.datetime("CompleteTime")?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("AnnounceURL", &self.announce_url);
        w.text("TransferURL", &self.transfer_url);
        w.bool("IsDownload", self.is_download);
        w.text("FileType", &self.file_type);
        w.display("FileSize", self.file_size);
        w.text("TargetFileName", &self.target_file_name);
        self.fault.encode(w, "FaultStruct");
        w.text("StartTime", self.start_time.as_str());
        w.text("CompleteTime", self.complete_time.as_str());
    }
}

super::empty_message!(
    /// Recorded.
    AutonomousTransferCompleteResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::AutonomousTransferComplete(AutonomousTransferComplete {
            announce_url: "".into(),
            transfer_url: "http://127.0.0.1/f".into(),
            is_download: true,
            file_type: "1 Firmware Upgrade Image".into(),
            file_size: 3,
            target_file_name: "".into(),
            fault: TransferFault::none(),
            start_time: DateTime::from_unix(5),
            complete_time: DateTime::from_unix(6),
        }));
        round_trip(Body::AutonomousTransferCompleteResponse(AutonomousTransferCompleteResponse {}));
    }
}
