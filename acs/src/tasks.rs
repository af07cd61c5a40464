//! Tasks: the GenieACS task JSON checked and turned into CWMP requests, run step by step inside
//! a session, with results, parameter-cache refreshes and faults recorded in the store.

use cwmp::{
    AddObject, Body, DeleteObject, Download, FactoryReset, FaultCode, GetParameterValues, ParameterValue, Reboot,
    SetParameterValues, Value, XsdType,
};
use serde_json::{json, Value as Json};

use crate::store::{CachedParam, Store, Task, TaskStatus};

/// A task specification that cannot run, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTask(pub String);

fn strings(spec: &Json, field: &str) -> Result<Vec<String>, BadTask> {
    let arr = spec
        .get(field)
        .and_then(Json::as_array)
        .ok_or_else(|| BadTask(format!("{field} must be an array of strings")))?;
    arr.iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| BadTask(format!("{field} must be an array of strings"))))
        .collect()
}

fn string(spec: &Json, field: &str) -> Result<String, BadTask> {
    spec.get(field).and_then(Json::as_str).map(str::to_string).ok_or_else(|| BadTask(format!("{field} is required")))
}

/// `[name, value, type?]` triples of GenieACS into typed values.
fn values(spec: &Json) -> Result<Vec<ParameterValue>, BadTask> {
    let Some(arr) = spec.get("parameterValues") else { return Ok(Vec::new()) };
    let arr =
        arr.as_array().ok_or_else(|| BadTask("parameterValues must be an array of [name, value, type]".into()))?;
    arr.iter()
        .map(|t| {
            let t = t.as_array().ok_or_else(|| BadTask("each parameterValues entry is [name, value, type?]".into()))?;
            let name = t.first().and_then(Json::as_str).ok_or_else(|| BadTask("a parameter name is missing".into()))?;
            let raw = t.get(1).ok_or_else(|| BadTask(format!("{name}: no value")))?;
            let ty = match t.get(2).and_then(Json::as_str) {
                Some(ty) => XsdType::from_local(ty.trim_start_matches("xsd:"))
                    .ok_or_else(|| BadTask(format!("{name}: unknown type {ty}")))?,
                None => match raw {
                    Json::Bool(_) => XsdType::Boolean,
                    Json::Number(n) if n.is_u64() => XsdType::UnsignedInt,
                    Json::Number(_) => XsdType::Int,
                    _ => XsdType::String,
                },
            };
            let lexical = match raw {
                Json::String(s) => s.clone(),
                Json::Bool(b) => b.to_string(),
                Json::Number(n) => n.to_string(),
                _ => return Err(BadTask(format!("{name}: a value is a string, number or boolean"))),
            };
            let v = Value::parse(ty, &lexical).map_err(|e| BadTask(format!("{name}: {e}")))?;
            Ok(ParameterValue::new(name, v))
        })
        .collect()
}

/// Checks a task as the NBI receives it; the error says what is wrong.
pub fn validate(spec: &Json) -> Result<(), BadTask> {
    let name = spec.get("name").and_then(Json::as_str).ok_or_else(|| BadTask("the task needs a name".into()))?;
    match name {
        "getParameterValues" => strings(spec, "parameterNames").map(|_| ()),
        "setParameterValues" => {
            if values(spec)?.is_empty() {
                return Err(BadTask("parameterValues must name at least one parameter".into()));
            }
            Ok(())
        }
        "refreshObject" | "deleteObject" => string(spec, "objectName").map(|_| ()),
        "addObject" => string(spec, "objectName").and_then(|_| values(spec)).map(|_| ()),
        "reboot" | "factoryReset" => Ok(()),
        "download" => string(spec, "fileType").and_then(|_| string(spec, "fileName")).map(|_| ()),
        other => Err(BadTask(format!("unknown task {other:?}"))),
    }
}

fn dotted(s: &str) -> String {
    if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// A task being run in a session.
#[derive(Debug)]
pub struct Running {
    /// The task.
    pub task: Task,
    stage: u8,
    instance: Option<u32>,
}

/// What a response leads to.
#[derive(Debug)]
pub enum Step {
    /// Send this next.
    Next(Body),
    /// Finished with this result.
    Done(Json),
    /// The CPE answered with a fault.
    Fault(cwmp::Fault),
    /// The CPE will report the transfer later (TransferComplete); the task stays sent.
    AwaitTransfer,
}

/// Where files are served from (for Download).
pub struct Context<'a> {
    /// Base URL of the file server, for Download.
    pub file_base_url: &'a str,
}

impl Running {
    /// The first request of `task`, sent under `task.key`.
    pub fn start(task: Task, ctx: &Context<'_>) -> Result<(Running, Body), BadTask> {
        let key = task.key.clone();
        let spec = &task.spec;
        let body = match spec.get("name").and_then(Json::as_str).unwrap_or("") {
            "getParameterValues" => {
                Body::GetParameterValues(GetParameterValues { parameter_names: strings(spec, "parameterNames")? })
            }
            "refreshObject" => Body::GetParameterValues(GetParameterValues {
                parameter_names: vec![dotted(&string(spec, "objectName")?)],
            }),
            "setParameterValues" => {
                Body::SetParameterValues(SetParameterValues { parameter_list: values(spec)?, parameter_key: key })
            }
            "addObject" => {
                Body::AddObject(AddObject { object_name: dotted(&string(spec, "objectName")?), parameter_key: key })
            }
            "deleteObject" => Body::DeleteObject(DeleteObject {
                object_name: dotted(&string(spec, "objectName")?),
                parameter_key: key,
            }),
            "reboot" => Body::Reboot(Reboot { command_key: key }),
            "factoryReset" => Body::FactoryReset(FactoryReset {}),
            "download" => Body::Download(Download {
                command_key: key,
                file_type: string(spec, "fileType")?,
                url: format!("{}/{}", ctx.file_base_url.trim_end_matches('/'), string(spec, "fileName")?),
                username: String::new(),
                password: String::new(),
                file_size: 0,
                target_file_name: spec.get("targetFileName").and_then(Json::as_str).unwrap_or("").into(),
                delay_seconds: 0,
                success_url: String::new(),
                failure_url: String::new(),
            }),
            other => return Err(BadTask(format!("unknown task {other:?}"))),
        };
        Ok((Running { task, stage: 0, instance: None }, body))
    }

    /// Handles the CPE's answer to the last request; records cache updates in `store`.
    pub fn on_response(&mut self, resp: Body, store: &dyn Store, now: i64) -> Step {
        let device = self.task.device.clone();
        let name = self.task.spec.get("name").and_then(Json::as_str).unwrap_or("").to_string();
        self.stage += 1;
        match resp {
            Body::Fault(f) => Step::Fault(f),
            Body::GetParameterValuesResponse(r) => {
                let cached: Vec<CachedParam> =
                    r.parameter_list.iter().map(|p| CachedParam::from_value(p, now)).collect();
                if let Err(e) = store.cache_params(&device, &cached) {
                    tracing::error!(%device, "caching parameters: {e}");
                }
                let params: Vec<Json> = cached
                    .into_iter()
                    .map(|c| {
                        Json::Array(vec![
                            Json::String(c.name),
                            Json::String(c.value),
                            Json::String(format!("xsd:{}", c.ty)),
                        ])
                    })
                    .collect();
                // Built as a map directly: `json!` would serialize (deep-copy) the list again.
                let mut result = serde_json::Map::new();
                match name.as_str() {
                    "addObject" => drop(result.insert("instance".into(), json!(self.instance))),
                    "setParameterValues" => drop(result.insert("status".into(), json!(0))),
                    _ => {}
                }
                result.insert("parameters".into(), Json::Array(params));
                Step::Done(Json::Object(result))
            }
            Body::SetParameterValuesResponse(r) => {
                if name == "addObject" {
                    let path = format!(
                        "{}{}.",
                        dotted(self.task.spec.get("objectName").and_then(Json::as_str).unwrap_or("")),
                        self.instance.unwrap_or(0)
                    );
                    return Step::Next(Body::GetParameterValues(GetParameterValues { parameter_names: vec![path] }));
                }
                // Refresh what was set.
                let names =
                    values(&self.task.spec).map(|v| v.into_iter().map(|p| p.name).collect()).unwrap_or_default();
                let _ = r;
                Step::Next(Body::GetParameterValues(GetParameterValues { parameter_names: names }))
            }
            Body::AddObjectResponse(r) => {
                self.instance = Some(r.instance_number);
                let table = dotted(self.task.spec.get("objectName").and_then(Json::as_str).unwrap_or(""));
                let path = format!("{table}{}.", r.instance_number);
                let vals = values(&self.task.spec).unwrap_or_default();
                if vals.is_empty() {
                    return Step::Next(Body::GetParameterValues(GetParameterValues { parameter_names: vec![path] }));
                }
                let list = vals
                    .into_iter()
                    .map(|p| ParameterValue::new(format!("{path}{}", p.name.trim_start_matches('.')), p.value))
                    .collect();
                Step::Next(Body::SetParameterValues(SetParameterValues {
                    parameter_list: list,
                    parameter_key: self.task.key.clone(),
                }))
            }
            Body::DeleteObjectResponse(_) => {
                let obj = dotted(self.task.spec.get("objectName").and_then(Json::as_str).unwrap_or(""));
                if let Err(e) = store.forget_params(&device, &obj) {
                    tracing::error!(%device, "forgetting parameters: {e}");
                }
                Step::Done(json!({"status": 0}))
            }
            Body::RebootResponse(_) | Body::FactoryResetResponse(_) => Step::Done(json!({"status": 0})),
            Body::DownloadResponse(r) if r.status == 0 => Step::Done(json!({"status": 0})),
            Body::DownloadResponse(_) => Step::AwaitTransfer,
            other => Step::Fault(cwmp::Fault::with_string(
                FaultCode::AcsInvalidArguments,
                format!("{} does not answer {name}", other.method_name()),
            )),
        }
    }
}

/// Whether a CPE fault is worth retrying later (the CPE was busy or short of resources).
pub fn transient(code: FaultCode) -> bool {
    matches!(code, FaultCode::InternalError | FaultCode::ResourcesExceeded | FaultCode::RequestDenied)
}

/// Seconds to wait before attempt `attempts + 1` of a task that failed transiently.
pub fn backoff(attempts: i64) -> i64 {
    (5i64 << attempts.clamp(0, 8)).min(3600)
}

/// After a restart or a broken session, decides a sent task from the new Inform: applied (the
/// CPE's ParameterKey or an event's CommandKey carries the task's key), not applied (run it
/// again: Pending), or still open (a download whose TransferComplete follows: Sent).
pub fn reconcile(task: &Task, parameter_key: Option<&str>, events: &[cwmp::Event]) -> TaskStatus {
    let name = task.spec.get("name").and_then(Json::as_str).unwrap_or("");
    if name == "download" {
        // The TransferComplete that comes with "M Download" decides (and carries the outcome).
        let reported = events.iter().any(|e| e.code == "M Download" && e.command_key == task.key);
        return if reported { TaskStatus::Sent } else { TaskStatus::Pending };
    }
    let applied = match name {
        "setParameterValues" | "addObject" | "deleteObject" => parameter_key == Some(task.key.as_str()),
        "reboot" => events.iter().any(|e| e.code == "M Reboot" && e.command_key == task.key),
        "factoryReset" => events.iter().any(|e| e.code == "0 BOOTSTRAP"),
        _ => false,
    };
    if applied {
        TaskStatus::Done
    } else {
        TaskStatus::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked() {
        assert!(validate(&json!({"name": "getParameterValues", "parameterNames": ["Device."]})).is_ok());
        assert!(validate(
            &json!({"name": "setParameterValues", "parameterValues": [["Device.A", 5, "xsd:unsignedInt"]]})
        )
        .is_ok());
        let e =
            validate(&json!({"name": "setParameterValues", "parameterValues": [["Device.A", "x", "xsd:unsignedInt"]]}))
                .expect_err("bad");
        assert!(e.0.contains("Device.A"), "{e}");
        assert!(validate(&json!({"name": "launchRocket"})).expect_err("unknown").0.contains("unknown task"));
        assert!(validate(&json!({"name": "getParameterValues"})).is_err());
        assert!(validate(&json!({"parameterNames": []})).is_err());
        assert_eq!(backoff(0), 5);
        assert_eq!(backoff(3), 40);
        assert_eq!(backoff(20), 1280);
    }
}
