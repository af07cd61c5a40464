//! DUStateChangeComplete (CPE to ACS) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::OpResult;
use crate::xml::{El, Writer};

/// Reports the results of a ChangeDUState.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DUStateChangeComplete {
    /// One per operation.
    pub results: Vec<OpResult>,
    /// The request's CommandKey.
    pub command_key: String,
}

impl Rpc for DUStateChangeComplete {
    const NAME: &'static str = "DUStateChangeComplete";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let results =
            el.children().filter(|c| c.name() == "Results").map(OpResult::decode).collect::<Result<Vec<_>, _>>()?;
        if results.is_empty() {
            el.req("Results")?;
        }
        Ok(DUStateChangeComplete { results, command_key: el.opt_string("CommandKey").unwrap_or_default() })
    }
    fn encode(&self, w: &mut Writer) {
        for r in &self.results {
            w.open("Results");
            r.encode(w);
            w.close("Results");
        }
        w.text("CommandKey", &self.command_key);
    }
}

super::empty_message!(
    /// Recorded.
    DUStateChangeCompleteResponse
);

#[cfg(test)]
pub(crate) fn sample_result() -> OpResult {
    use crate::types::TransferFault;
    use crate::DateTime;
    OpResult {
        uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
        deployment_unit_ref: "Device.SoftwareModules.DeploymentUnit.1".into(),
        version: "1.0".into(),
        current_state: "Installed".into(),
        resolved: true,
        execution_unit_ref_list: "".into(),
        start_time: DateTime::from_unix(1),
        complete_time: DateTime::from_unix(2),
        fault: TransferFault::none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::DUStateChangeComplete(DUStateChangeComplete {
            results: vec![sample_result()],
            command_key: "du".into(),
        }));
        round_trip(Body::DUStateChangeCompleteResponse(DUStateChangeCompleteResponse {}));
    }
}
