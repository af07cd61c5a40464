//! Upload and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::{decode_transfer_status, encode_transfer_status};
use crate::value::DateTime;
use crate::xml::{El, Writer};

/// Asks the CPE to send a file (configuration, log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upload {
    /// CommandKey
    pub command_key: String,
    /// "1 Vendor Configuration File", "2 Vendor Log File", ...
    pub file_type: String,
    /// Destination URL.
    pub url: String,
    /// Username
    pub username: String,
    /// Password
    pub password: String,
    /// Wait before starting.
    pub delay_seconds: u32,
}

impl Rpc for Upload {
    const NAME: &'static str = "Upload";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let s = |n: &str| el.opt_string(n).unwrap_or_default();
        Ok(Upload {
            command_key: s("CommandKey"),
            file_type: el.req("FileType")?.text().to_string(),
            url: el.req("URL")?.text().to_string(),
            username: s("Username"),
            password: s("Password"),
            delay_seconds: el.opt("DelaySeconds").map(|e| e.as_u32()).transpose()?.unwrap_or(0),
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("CommandKey", &self.command_key);
        w.text("FileType", &self.file_type);
        w.text("URL", &self.url);
        w.text("Username", &self.username);
        w.text("Password", &self.password);
        w.display("DelaySeconds", self.delay_seconds);
    }
}

/// Status 0: done; 1: later (TransferComplete follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadResponse {
    /// 0 or 1
    pub status: u8,
    /// StartTime
    pub start_time: DateTime,
    /// CompleteTime
    pub complete_time: DateTime,
}

impl Rpc for UploadResponse {
    const NAME: &'static str = "UploadResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let (status, start_time, complete_time) = decode_transfer_status(el)?;
        Ok(UploadResponse { status, start_time, complete_time })
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

    #[test]
    fn round_trips() {
        round_trip(Body::Upload(Upload {
            command_key: "up".into(),
            file_type: "2 Vendor Log File".into(),
            url: "http://127.0.0.1/up".into(),
            username: "".into(),
            password: "".into(),
            delay_seconds: 0,
        }));
        round_trip(Body::UploadResponse(UploadResponse {
            status: 0,
            start_time: DateTime::from_unix(10),
            complete_time: DateTime::from_unix(20),
        }));
    }
}
