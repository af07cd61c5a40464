//! `GET /faults` and `DELETE /faults/{id}`.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{done, json_response, Nbi, NbiError, Reply};
use crate::query;
use crate::store::FaultRecord;

/// A fault as GenieACS shows it.
pub(crate) fn fault_json(f: &FaultRecord) -> Json {
    json!({"_id": f.id.to_string(), "device": f.device, "task": f.task.map(|t| t.to_string()),
           "code": f.code, "message": f.message, "detail": f.detail, "timestamp": query::iso(f.timestamp)})
}

/// Every fault.
pub(crate) fn list(nbi: &Nbi) -> Result<Reply, NbiError> {
    let fs = nbi.acs.store.faults()?;
    Ok(json_response(StatusCode::OK, &Json::Array(fs.iter().map(fault_json).collect())))
}

/// Deletes a fault.
pub(crate) fn delete(nbi: &Arc<Nbi>, id: i64) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_fault(id)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no fault {id}")))
    }
}
