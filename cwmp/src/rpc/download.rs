//! Download and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::{decode_transfer_status, encode_transfer_status};
use crate::value::DateTime;
use crate::xml::{El, Writer};

/// Asks the CPE to fetch a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Download {
    /// CommandKey, returned in TransferComplete.
    pub command_key: String,
    /// "1 Firmware Upgrade Image", "3 Vendor Configuration File", ...
    pub file_type: String,
    /// Where to fetch it.
    pub url: String,
    /// Username
    pub username: String,
    /// Password
    pub password: String,
    /// Size in bytes, 0 if unknown.
    pub file_size: u32,
    /// TargetFileName
    pub target_file_name: String,
    /// Wait before starting.
    pub delay_seconds: u32,
    /// SuccessURL
    pub success_url: String,
    /// FailureURL
    pub failure_url: String,
}

impl Rpc for Download {
    const NAME: &'static str = "Download";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let s = |n: &str| el.opt_string(n).unwrap_or_default();
        Ok(Download {
            command_key: s("CommandKey"),
            file_type: el.req("FileType")?.text().to_string(),
            url: el.req("URL")?.text().to_string(),
            username: s("Username"),
            password: s("Password"),
            file_size: el.opt("FileSize").map(|e| e.as_u32()).transpose()?.unwrap_or(0),
            target_file_name: s("TargetFileName"),
            delay_seconds: el.opt("DelaySeconds").map(|e| e.as_u32()).transpose()?.unwrap_or(0),
            success_url: s("SuccessURL"),
            failure_url: s("FailureURL"),
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("CommandKey", &self.command_key);
        w.text("FileType", &self.file_type);
        w.text("URL", &self.url);
        w.text("Username", &self.username);
        w.text("Password", &self.password);
        w.display("FileSize", self.file_size);
        w.text("TargetFileName", &self.target_file_name);
        w.display("DelaySeconds", self.delay_seconds);
        w.text("SuccessURL", &self.success_url);
        w.text("FailureURL", &self.failure_url);
    }
}

/// Status 0: done (times valid); 1: will be done later (TransferComplete follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadResponse {
    /// 0 or 1
    pub status: u8,
    /// StartTime
    pub start_time: DateTime,
    /// CompleteTime
    pub complete_time: DateTime,
}

impl Rpc for DownloadResponse {
    const NAME: &'static str = "DownloadResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let (status, start_time, complete_time) = decode_transfer_status(el)?;
        Ok(DownloadResponse { status, start_time, complete_time })
    }
    fn encode(&self, w: &mut Writer) {
        encode_transfer_status(w, self.status, &self.start_time, &self.complete_time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    pub(crate) fn sample() -> Download {
        Download {
            command_key: "dl-1".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://127.0.0.1:8000/fw.bin".into(),
            username: "u".into(),
            password: "p".into(),
            file_size: 1024,
            target_file_name: "fw.bin".into(),
            delay_seconds: 5,
            success_url: "".into(),
            failure_url: "".into(),
        }
    }

    #[test]
    fn round_trips() {
        round_trip(Body::Download(sample()));
        round_trip(Body::DownloadResponse(DownloadResponse {
            status: 1,
            start_time: DateTime::unknown(),
            complete_time: DateTime::unknown(),
        }));
    }
}
