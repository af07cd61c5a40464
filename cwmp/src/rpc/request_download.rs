//! RequestDownload (CPE to ACS) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::Arg;
use crate::xml::{El, Writer};

/// The CPE asks the ACS to send it a Download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestDownload {
    /// FileType
    pub file_type: String,
    /// Up to 16 arguments.
    pub file_type_arg: Vec<Arg>,
}

impl Rpc for RequestDownload {
    const NAME: &'static str = "RequestDownload";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(RequestDownload {
            file_type: el.req("FileType")?.text().to_string(),
            file_type_arg: match el.opt("FileTypeArg") {
                Some(_) => el.list("FileTypeArg", |a| {
                    Ok(Arg { name: a.string("Name")?, value: a.opt_string("Value").unwrap_or_default() })
                })?,
                None => Vec::new(),
            },
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("FileType", &self.file_type);
        w.struct_array("FileTypeArg", "ArgStruct", &self.file_type_arg, |w, a| {
            w.text("Name", &a.name);
            w.text("Value", &a.value);
        });
    }
}

super::empty_message!(
    /// Noted.
    RequestDownloadResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::RequestDownload(RequestDownload {
            file_type: "1 Firmware Upgrade Image".into(),
            file_type_arg: vec![Arg { name: "Version".into(), value: "2".into() }],
        }));
        round_trip(Body::RequestDownloadResponse(RequestDownloadResponse {}));
    }
}
