//! `GET /faults` and `DELETE /faults/{device}:{channel}`, as GenieACS answers them.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::{done, Nbi, NbiError, Reply};
use crate::query;
use crate::store::FaultRecord;

/// A fault as GenieACS shows it: `_id` (`<device>:<channel>`), `device`, `channel`,
/// `timestamp`, `code`, `message`, `detail` (for a CPE's fault its FaultStruct: `faultCode`,
/// `faultString`, `setParameterValuesFault`), `retries`; and what the ACS adds: `task`, the
/// task's id, and `context`, where the ACS noted one (`preset lab`, `TransferComplete`).
pub(crate) fn fault_json(f: &FaultRecord) -> Json {
    let mut m = Map::new();
    m.insert("_id".into(), json!(f.genieacs_id()));
    m.insert("device".into(), json!(f.device));
    m.insert("channel".into(), json!(f.channel));
    m.insert("timestamp".into(), json!(query::iso(f.timestamp)));
    m.insert("code".into(), json!(f.code));
    m.insert("message".into(), json!(f.message));
    let spv = parameter_faults(&f.detail);
    if let Some(code) = f.code.strip_prefix("cwmp.") {
        let mut d = json!({"faultCode": code, "faultString": f.message});
        if let (Some(list), Json::Object(o)) = (&spv, &mut d) {
            o.insert("setParameterValuesFault".into(), Json::Array(list.clone()));
        }
        m.insert("detail".into(), d);
    } else if !f.detail.is_empty() {
        m.insert("detail".into(), json!({"name": f.code, "message": f.detail}));
    }
    if spv.is_none() && !f.detail.is_empty() {
        m.insert("context".into(), json!(f.detail));
    }
    m.insert("retries".into(), json!(f.retries));
    if let Some(t) = f.task {
        m.insert("task".into(), json!(t.to_string()));
    }
    Json::Object(m)
}

/// The per-parameter faults of a SetParameterValues fault, from the detail the ACS records
/// (`path: code string; ...`, `crate::tasks::Failure::parameters`); `None` for other detail.
fn parameter_faults(detail: &str) -> Option<Vec<Json>> {
    if detail.is_empty() {
        return None;
    }
    detail
        .split("; ")
        .map(|entry| {
            let (name, rest) = entry.split_once(": ")?;
            let (code, string) = rest.split_once(' ').unwrap_or((rest, ""));
            code.parse::<u32>().ok()?;
            if name.is_empty() || name.contains(' ') {
                return None;
            }
            Some(json!({"parameterName": name, "faultCode": code, "faultString": string}))
        })
        .collect()
}

/// Every fault, or those `?query=` matches (with `sort`, `skip`, `limit`, `projection` and the
/// `total` header).
pub(crate) fn query(nbi: &Nbi, params: &HashMap<String, String>) -> Result<Reply, NbiError> {
    let docs = nbi.acs.store.faults()?.iter().map(fault_json).collect();
    super::tasks::collection::answer(params, docs)
}

/// A fault's id in the path, `<device>:<channel>` (split at the first `:`, as GenieACS does; an
/// id without one names no fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultId {
    device: String,
    channel: String,
}

impl std::str::FromStr for FaultId {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<FaultId, Self::Err> {
        let (device, channel) = s.split_once(':').unwrap_or((s, ""));
        Ok(FaultId { device: device.into(), channel: channel.into() })
    }
}

/// Deletes a fault, and with a task's fault (`task_<id>`) the task, as GenieACS does; 200
/// whether or not there was one (GenieACS's answer too).
pub(crate) fn delete(nbi: &Arc<Nbi>, id: FaultId) -> Result<Reply, NbiError> {
    if id.channel.is_empty() {
        return Ok(done());
    }
    let existed = nbi.acs.store.delete_fault(&id.device, &id.channel)?;
    tracing::info!(device = %id.device, channel = %id.channel, existed, "fault deleted");
    Ok(done())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_show_as_genieacs_shows_them() {
        let f = FaultRecord {
            id: 3,
            device: "00A0B1-X-1".into(),
            channel: "task_7".into(),
            task: Some(7),
            code: "cwmp.9003".into(),
            message: "Invalid arguments".into(),
            detail: "Device.A: 9008 not writable; Device.B: 9007 bad value".into(),
            retries: 1,
            timestamp: 0,
        };
        assert_eq!(
            fault_json(&f),
            json!({"_id": "00A0B1-X-1:task_7", "device": "00A0B1-X-1", "channel": "task_7",
                   "timestamp": "1970-01-01T00:00:00.000Z", "code": "cwmp.9003", "message": "Invalid arguments",
                   "detail": {"faultCode": "9003", "faultString": "Invalid arguments", "setParameterValuesFault": [
                       {"parameterName": "Device.A", "faultCode": "9008", "faultString": "not writable"},
                       {"parameterName": "Device.B", "faultCode": "9007", "faultString": "bad value"}]},
                   "retries": 1, "task": "7"})
        );
        let preset = FaultRecord {
            channel: "default".into(),
            task: None,
            detail: "preset lab".into(),
            code: "cwmp.9002".into(),
            ..f.clone()
        };
        let j = fault_json(&preset);
        assert_eq!(j["detail"], json!({"faultCode": "9002", "faultString": "Invalid arguments"}));
        assert_eq!((&j["context"], j.get("task")), (&json!("preset lab"), None));
        let invalid = FaultRecord { code: "task.invalid".into(), detail: String::new(), ..f };
        assert!(fault_json(&invalid).get("detail").is_none());
        let id: FaultId = "00A0B1-X-1:task_7".parse().unwrap_or_else(|e| match e {});
        assert_eq!((id.device.as_str(), id.channel.as_str()), ("00A0B1-X-1", "task_7"));
        let bare: FaultId = "nocolon".parse().unwrap_or_else(|e| match e {});
        assert_eq!(bare.channel, "");
    }
}
