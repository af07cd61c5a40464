//! The one trait behind which a subtree is served: an in-memory [`crate::Tree`], live values, or
//! (in the host agent) a vRGW's proxy reached over XML-RPC.

use cwmp::{Fault, ParameterFault, ParameterInfo, ParameterValue};

/// A data model, or a subtree mounted into one. Paths are the handler's own (a vRGW's handler
/// sees `Device.DHCPv4...`, whatever prefix the host mounts it under).
pub trait Handler: Send {
    /// Values of a full path, or of everything below a partial path.
    fn get(&self, path: &str) -> Result<Vec<ParameterValue>, Fault>;
    /// GetParameterNames semantics.
    fn names(&self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault>;
    /// Checks values without applying them: the values as they are to be applied (in their
    /// parameters' types), or every refused parameter.
    fn validate_set(&self, values: &[ParameterValue]) -> Result<Vec<ParameterValue>, Vec<ParameterFault>>;
    /// Applies values [`Handler::validate_set`] returned, all or nothing, without validating them
    /// again (a handler that forwards them may still be refused by what it forwards to).
    fn apply_set(&mut self, values: &[ParameterValue]) -> Result<(), Fault>;
    /// AddObject on a table path; the new instance number.
    fn add_object(&mut self, table: &str) -> Result<u32, Fault>;
    /// DeleteObject on an instance path.
    fn delete_object(&mut self, object: &str) -> Result<(), Fault>;
    /// Whether active notification on this parameter is refused (fault 9009).
    fn can_deny_active(&self, _path: &str) -> bool {
        false
    }
}
