//! Kicked (CPE to ACS, web-identity kick) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::xml::{El, Writer};

/// A browser "kicked" the CPE toward the ACS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kicked {
    /// Command
    pub command: String,
    /// Referer
    pub referer: String,
    /// Arg
    pub arg: String,
    /// Next
    pub next: String,
}

impl Rpc for Kicked {
    const NAME: &'static str = "Kicked";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let s = |n: &str| el.opt_string(n).unwrap_or_default();
        Ok(Kicked { command: el.string("Command")?, referer: s("Referer"), arg: s("Arg"), next: s("Next") })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("Command", &self.command);
        w.text("Referer", &self.referer);
        w.text("Arg", &self.arg);
        w.text("Next", &self.next);
    }
}

/// Where the browser goes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KickedResponse {
    /// NextURL
    pub next_url: String,
}

impl Rpc for KickedResponse {
    const NAME: &'static str = "KickedResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(KickedResponse { next_url: el.opt_string("NextURL").unwrap_or_default() })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("NextURL", &self.next_url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::Kicked(Kicked {
            command: "c".into(),
            referer: "r".into(),
            arg: "a".into(),
            next: "n".into(),
        }));
        round_trip(Body::KickedResponse(KickedResponse { next_url: "http://127.0.0.1/".into() }));
    }
}
