//! ScheduleDownload and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::TimeWindow;
use crate::xml::{El, Writer};

/// A download to run within one or two time windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleDownload {
    /// CommandKey
    pub command_key: String,
    /// FileType
    pub file_type: String,
    /// URL
    pub url: String,
    /// Username
    pub username: String,
    /// Password
    pub password: String,
    /// FileSize
    pub file_size: u32,
    /// TargetFileName
    pub target_file_name: String,
    /// One or two windows.
    pub time_window_list: Vec<TimeWindow>,
}

impl Rpc for ScheduleDownload {
    const NAME: &'static str = "ScheduleDownload";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let s = |n: &str| el.opt_string(n).unwrap_or_default();
        Ok(ScheduleDownload {
            command_key: s("CommandKey"),
            file_type: el.req("FileType")?.text().to_string(),
            url: el.req("URL")?.text().to_string(),
            username: s("Username"),
            password: s("Password"),
            file_size: el.opt("FileSize").map(|e| e.as_u32()).transpose()?.unwrap_or(0),
            target_file_name: s("TargetFileName"),
            time_window_list: el.list("TimeWindowList", |t| {
                Ok(TimeWindow {
                    window_start: t.u32("WindowStart")?,
                    window_end: t.u32("WindowEnd")?,
                    window_mode: t.req("WindowMode")?.text().to_string(),
                    user_message: t.opt_string("UserMessage").unwrap_or_default(),
                    max_retries: t.i32("MaxRetries")?,
                })
            })?,
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
        w.struct_array("TimeWindowList", "TimeWindowStruct", &self.time_window_list, |w, t| {
            w.display("WindowStart", t.window_start);
            w.display("WindowEnd", t.window_end);
            w.text("WindowMode", &t.window_mode);
            w.text("UserMessage", &t.user_message);
            w.display("MaxRetries", t.max_retries);
        });
    }
}

super::empty_message!(
    /// Scheduled.
    ScheduleDownloadResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::ScheduleDownload(ScheduleDownload {
            command_key: "sd".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://127.0.0.1/fw".into(),
            username: "".into(),
            password: "".into(),
            file_size: 0,
            target_file_name: "".into(),
            time_window_list: vec![TimeWindow {
                window_start: 0,
                window_end: 3600,
                window_mode: "1 At Any Time".into(),
                user_message: "".into(),
                max_retries: -1,
            }],
        }));
        round_trip(Body::ScheduleDownloadResponse(ScheduleDownloadResponse {}));
    }
}
