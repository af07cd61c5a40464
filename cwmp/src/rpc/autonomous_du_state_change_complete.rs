//! AutonomousDUStateChangeComplete (CPE to ACS) and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::OpResult;
use crate::xml::{El, Writer};

/// One result of an operation the CPE performed on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutonOpResult {
    /// The result.
    pub result: OpResult,
    /// "Install", "Update" or "Uninstall".
    pub operation_performed: String,
}

/// Reports deployment-unit changes the ACS did not ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutonomousDUStateChangeComplete {
    /// At least one.
    pub results: Vec<AutonOpResult>,
}

impl Rpc for AutonomousDUStateChangeComplete {
    const NAME: &'static str = "AutonomousDUStateChangeComplete";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let results = el
            .children()
            .filter(|c| c.name() == "Results")
            .map(|r| {
                Ok(AutonOpResult {
                    result: OpResult::decode(r)?,
                    operation_performed: r.req("OperationPerformed")?.text().to_string(),
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        if results.is_empty() {
            el.req("Results")?;
        }
        Ok(AutonomousDUStateChangeComplete { results })
    }
    fn encode(&self, w: &mut Writer) {
        for r in &self.results {
            w.open("Results");
            r.result.encode(w);
            w.text("OperationPerformed", &r.operation_performed);
            w.close("Results");
        }
    }
}

super::empty_message!(
    /// Recorded.
    AutonomousDUStateChangeCompleteResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::AutonomousDUStateChangeComplete(AutonomousDUStateChangeComplete {
            results: vec![AutonOpResult {
                result: super::super::du_state_change_complete::sample_result(),
                operation_performed: "Install".into(),
            }],
        }));
        round_trip(Body::AutonomousDUStateChangeCompleteResponse(AutonomousDUStateChangeCompleteResponse {}));
    }
}
