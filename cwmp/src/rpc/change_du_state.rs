//! ChangeDUState and its response.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::types::DuOperation;
use crate::xml::{El, Writer};

/// Installs, updates or uninstalls deployment units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeDUState {
    /// At least one operation.
    pub operations: Vec<DuOperation>,
    /// CommandKey, returned in DUStateChangeComplete.
    pub command_key: String,
}

impl Rpc for ChangeDUState {
    const NAME: &'static str = "ChangeDUState";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let operations = el
            .children()
            .filter(|c| c.name() == "Operations")
            .map(DuOperation::decode)
            .collect::<Result<Vec<_>, _>>()?;
        if operations.is_empty() {
            el.req("Operations")?;
        }
        Ok(ChangeDUState { operations, command_key: el.opt_string("CommandKey").unwrap_or_default() })
    }
    fn encode(&self, w: &mut Writer) {
        for op in &self.operations {
            op.encode(w);
        }
        w.text("CommandKey", &self.command_key);
    }
}

super::empty_message!(
    /// Accepted; DUStateChangeComplete follows.
    ChangeDUStateResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::ChangeDUState(ChangeDUState {
            operations: vec![
                DuOperation::Install {
                    url: "http://127.0.0.1/du".into(),
                    uuid: "".into(),
                    username: "".into(),
                    password: "".into(),
                    execution_env_ref: "".into(),
                },
                DuOperation::Update {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: "2".into(),
                    url: "".into(),
                    username: "".into(),
                    password: "".into(),
                },
                DuOperation::Uninstall {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: "".into(),
                    execution_env_ref: "".into(),
                },
            ],
            command_key: "du".into(),
        }));
        round_trip(Body::ChangeDUStateResponse(ChangeDUStateResponse {}));
    }
}
