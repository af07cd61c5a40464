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

/// What a task does: GenieACS's task JSON (`{"name": "setParameterValues", ...}`), typed once
/// where it enters (the NBI, presets, profiles, migrations) and stored in the same JSON form.
/// Parameter values are `[name, value, "xsd:type"]` triples; a triple without its type takes
/// one from the JSON value (boolean, unsignedInt, int, string), as GenieACS does.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "name", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum TaskSpec {
    /// Read values (and refresh the cache).
    GetParameterValues {
        /// Paths; a partial path (ending in `.`) reads a subtree.
        parameter_names: Vec<String>,
    },
    /// Write values, then read them back.
    SetParameterValues {
        /// The values (at least one).
        #[serde(serialize_with = "triples")]
        parameter_values: Vec<ParameterValue>,
    },
    /// Read an object's subtree.
    RefreshObject {
        /// The object's path.
        object_name: String,
    },
    /// Add a row to a table, set its values, read it back.
    AddObject {
        /// The table's path.
        object_name: String,
        /// Values of the new row, paths relative to it.
        #[serde(serialize_with = "triples", skip_serializing_if = "Vec::is_empty")]
        parameter_values: Vec<ParameterValue>,
    },
    /// Delete a row.
    DeleteObject {
        /// The row's path.
        object_name: String,
    },
    /// Reboot.
    Reboot,
    /// Factory reset.
    FactoryReset,
    /// Download a file from the ACS's file server.
    Download {
        /// The uploaded file the task names alone, as GenieACS's UI and API reference do
        /// (`{"name": "download", "file": "fw.bin"}`); `file_name` and `file_type` then come
        /// from it (the NBI takes the type from the file's metadata when it queues the task).
        #[serde(skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        /// TR-069 file type (`1 Firmware Upgrade Image`, ...); empty until taken from `file`.
        file_type: String,
        /// The file's name on the file server.
        file_name: String,
        /// The name the CPE should give it.
        #[serde(skip_serializing_if = "Option::is_none")]
        target_file_name: Option<String>,
    },
}

/// A queued task's specification: what it does and, for the web form's tasks, that it applies
/// a subscriber's profile (`"profile": true`, so the form shows only its own tasks); for a
/// migration's, which migration (`"migration": id`, so a restarted ACS finds what it left).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Order {
    /// What the task does.
    #[serde(flatten)]
    pub spec: TaskSpec,
    /// Queued for a subscriber's profile.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub profile: bool,
    /// Queued by this migration's orchestration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<i64>,
}

impl From<TaskSpec> for Order {
    fn from(spec: TaskSpec) -> Order {
        Order { spec, profile: false, migration: None }
    }
}

impl Order {
    /// A task as stored (the NBI's are read with [`Order::from_nbi`]); the error says what is
    /// wrong.
    pub fn from_json(j: &Json) -> Result<Order, BadTask> {
        Ok(Order {
            spec: TaskSpec::from_json(j)?,
            profile: j.get("profile").and_then(Json::as_bool) == Some(true),
            migration: j.get("migration").and_then(Json::as_i64),
        })
    }

    /// A task as the NBI receives it: the marks only the ACS gives (a migration's) are not
    /// taken from a client.
    pub fn from_nbi(j: &Json) -> Result<Order, BadTask> {
        Ok(Order { migration: None, ..Order::from_json(j)? })
    }

    /// The JSON form (as stored and as the NBI shows it).
    pub fn to_json(&self) -> Json {
        // Serializing strings, vectors and triples cannot fail.
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

impl<'de> serde::Deserialize<'de> for Order {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Order, D::Error> {
        Order::from_json(&Json::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl<'de> serde::Deserialize<'de> for TaskSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TaskSpec, D::Error> {
        TaskSpec::from_json(&Json::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn triples<S: serde::Serializer>(values: &[ParameterValue], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(values.len()))?;
    for p in values {
        seq.serialize_element(&(&p.name, p.value.to_lexical(), p.value.xsd_type().qname()))?;
    }
    seq.end()
}

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

/// One `[name, value, type?]` triple of GenieACS as a typed value.
pub fn triple(t: &Json) -> Result<ParameterValue, BadTask> {
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
}

/// A `download`: by `fileName` and `fileType`, or by the uploaded `file` alone.
fn download(spec: &Json) -> Result<TaskSpec, BadTask> {
    let optional = |field: &str| match spec.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(BadTask(format!("{field} must be a non-empty string"))),
    };
    let file = optional("file")?;
    let file_name = match (optional("fileName")?, &file) {
        (Some(n), _) => n,
        (None, Some(f)) => f.clone(),
        (None, None) => return Err(BadTask("a download needs fileName and fileType, or file".into())),
    };
    let file_type = match (optional("fileType")?, &file) {
        (Some(t), _) => t,
        (None, Some(_)) => String::new(),
        (None, None) => return Err(BadTask("fileType is required (or file, naming an uploaded file)".into())),
    };
    let target_file_name = match spec.get("targetFileName") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err(BadTask("targetFileName must be a string".into())),
    };
    Ok(TaskSpec::Download { file, file_type, file_name, target_file_name })
}

/// `parameterValues` (absent: none).
fn values(spec: &Json) -> Result<Vec<ParameterValue>, BadTask> {
    let Some(arr) = spec.get("parameterValues") else { return Ok(Vec::new()) };
    let arr =
        arr.as_array().ok_or_else(|| BadTask("parameterValues must be an array of [name, value, type]".into()))?;
    arr.iter().map(triple).collect()
}

impl TaskSpec {
    /// A task from GenieACS's JSON; the error says what is wrong.
    pub fn from_json(spec: &Json) -> Result<TaskSpec, BadTask> {
        let name = spec.get("name").and_then(Json::as_str).ok_or_else(|| BadTask("the task needs a name".into()))?;
        Ok(match name {
            "getParameterValues" => {
                let parameter_names = strings(spec, "parameterNames")?;
                if parameter_names.is_empty() || parameter_names.iter().any(String::is_empty) {
                    return Err(BadTask("parameterNames must name at least one parameter, none empty".into()));
                }
                TaskSpec::GetParameterValues { parameter_names }
            }
            "setParameterValues" => {
                let parameter_values = values(spec)?;
                if parameter_values.is_empty() {
                    return Err(BadTask("parameterValues must name at least one parameter".into()));
                }
                TaskSpec::SetParameterValues { parameter_values }
            }
            "refreshObject" => TaskSpec::RefreshObject { object_name: string(spec, "objectName")? },
            "deleteObject" => {
                let object_name = string(spec, "objectName")?;
                if object_name.is_empty() {
                    return Err(BadTask("objectName must name an object".into()));
                }
                TaskSpec::DeleteObject { object_name }
            }
            "addObject" => {
                TaskSpec::AddObject { object_name: string(spec, "objectName")?, parameter_values: values(spec)? }
            }
            "reboot" => TaskSpec::Reboot,
            "factoryReset" => TaskSpec::FactoryReset,
            "download" => download(spec)?,
            other => return Err(BadTask(format!("unknown task {other:?}"))),
        })
    }

    /// GenieACS's name of the task (`"setParameterValues"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            TaskSpec::GetParameterValues { .. } => "getParameterValues",
            TaskSpec::SetParameterValues { .. } => "setParameterValues",
            TaskSpec::RefreshObject { .. } => "refreshObject",
            TaskSpec::AddObject { .. } => "addObject",
            TaskSpec::DeleteObject { .. } => "deleteObject",
            TaskSpec::Reboot => "reboot",
            TaskSpec::FactoryReset => "factoryReset",
            TaskSpec::Download { .. } => "download",
        }
    }

    /// Whether a path or object the task names contains `s`.
    pub fn mentions(&self, s: &str) -> bool {
        match self {
            TaskSpec::GetParameterValues { parameter_names } => parameter_names.iter().any(|n| n.contains(s)),
            TaskSpec::SetParameterValues { parameter_values } => parameter_values.iter().any(|p| p.name.contains(s)),
            TaskSpec::RefreshObject { object_name } | TaskSpec::DeleteObject { object_name } => object_name.contains(s),
            TaskSpec::AddObject { object_name, parameter_values } => {
                object_name.contains(s) || parameter_values.iter().any(|p| p.name.contains(s))
            }
            TaskSpec::Reboot | TaskSpec::FactoryReset | TaskSpec::Download { .. } => false,
        }
    }

    /// `setParameterValues` of `values`.
    pub fn set(values: Vec<ParameterValue>) -> TaskSpec {
        TaskSpec::SetParameterValues { parameter_values: values }
    }

    /// `getParameterValues` of `names`.
    pub fn get(names: Vec<String>) -> TaskSpec {
        TaskSpec::GetParameterValues { parameter_names: names }
    }
}

/// Checks a task as the NBI receives it; the error says what is wrong.
pub fn validate(spec: &Json) -> Result<(), BadTask> {
    TaskSpec::from_json(spec).map(|_| ())
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
    /// The preset that asked for it (presets' requests are not stored: their `task.id` is 0).
    pub preset: Option<String>,
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

/// What a task's first request needs besides the task.
pub struct Context<'a> {
    /// The signed URLs a Download names its file with.
    pub files: &'a crate::file_urls::FileUrls,
    /// Unix seconds now.
    pub now: i64,
}

impl Running {
    /// The first request of `task`, sent under `task.key`.
    pub fn start(task: Task, ctx: &Context<'_>) -> (Running, Body) {
        let key = task.key.clone();
        let body = match &task.order.spec {
            TaskSpec::GetParameterValues { parameter_names } => {
                Body::GetParameterValues(GetParameterValues { parameter_names: parameter_names.clone() })
            }
            TaskSpec::RefreshObject { object_name } => {
                Body::GetParameterValues(GetParameterValues { parameter_names: vec![dotted(object_name)] })
            }
            TaskSpec::SetParameterValues { parameter_values } => Body::SetParameterValues(SetParameterValues {
                parameter_list: parameter_values.clone(),
                parameter_key: key,
            }),
            TaskSpec::AddObject { object_name, .. } => {
                Body::AddObject(AddObject { object_name: dotted(object_name), parameter_key: key })
            }
            TaskSpec::DeleteObject { object_name } => {
                Body::DeleteObject(DeleteObject { object_name: dotted(object_name), parameter_key: key })
            }
            TaskSpec::Reboot => Body::Reboot(Reboot { command_key: key }),
            TaskSpec::FactoryReset => Body::FactoryReset(FactoryReset {}),
            TaskSpec::Download { file_type, file_name, target_file_name, .. } => Body::Download(Download {
                command_key: key,
                file_type: file_type.clone(),
                url: ctx.files.url(&task.device, file_name, ctx.now),
                username: String::new(),
                password: String::new(),
                file_size: 0,
                target_file_name: target_file_name.clone().unwrap_or_default(),
                delay_seconds: 0,
                success_url: String::new(),
                failure_url: String::new(),
            }),
        };
        (Running { task, preset: None, stage: 0, instance: None }, body)
    }

    /// Handles the CPE's answer to the last request; records cache updates in `store`.
    pub fn on_response(&mut self, resp: Body, store: &dyn Store, now: i64) -> Step {
        let device = self.task.device.clone();
        self.stage += 1;
        let spec = &self.task.order.spec;
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
                match spec {
                    TaskSpec::AddObject { .. } => drop(result.insert("instance".into(), json!(self.instance))),
                    TaskSpec::SetParameterValues { .. } => drop(result.insert("status".into(), json!(0))),
                    _ => {}
                }
                result.insert("parameters".into(), Json::Array(params));
                Step::Done(Json::Object(result))
            }
            Body::SetParameterValuesResponse(_) => match spec {
                TaskSpec::AddObject { object_name, .. } => {
                    let path = format!("{}{}.", dotted(object_name), self.instance.unwrap_or(0));
                    Step::Next(Body::GetParameterValues(GetParameterValues { parameter_names: vec![path] }))
                }
                // Refresh what was set, passwords aside: a CPE reads them back empty (TR-069
                // A.3.2.1 and the data models), and one that does not would put them in the
                // cache the NBI shows.
                TaskSpec::SetParameterValues { parameter_values } => {
                    let names: Vec<String> =
                        parameter_values.iter().filter(|p| !secret_name(&p.name)).map(|p| p.name.clone()).collect();
                    if names.is_empty() {
                        return Step::Done(json!({"status": 0, "parameters": []}));
                    }
                    Step::Next(Body::GetParameterValues(GetParameterValues { parameter_names: names }))
                }
                other => unexpected("SetParameterValuesResponse", other),
            },
            Body::AddObjectResponse(r) => {
                let TaskSpec::AddObject { object_name, parameter_values } = spec else {
                    return unexpected("AddObjectResponse", spec);
                };
                self.instance = Some(r.instance_number);
                let path = format!("{}{}.", dotted(object_name), r.instance_number);
                if parameter_values.is_empty() {
                    return Step::Next(Body::GetParameterValues(GetParameterValues { parameter_names: vec![path] }));
                }
                let list = parameter_values
                    .iter()
                    .map(|p| ParameterValue::new(format!("{path}{}", p.name.trim_start_matches('.')), p.value.clone()))
                    .collect();
                Step::Next(Body::SetParameterValues(SetParameterValues {
                    parameter_list: list,
                    parameter_key: self.task.key.clone(),
                }))
            }
            Body::DeleteObjectResponse(_) => {
                let TaskSpec::DeleteObject { object_name } = spec else {
                    return unexpected("DeleteObjectResponse", spec);
                };
                if let Err(e) = store.forget_params(&device, &dotted(object_name)) {
                    tracing::error!(%device, "forgetting parameters: {e}");
                }
                Step::Done(json!({"status": 0}))
            }
            Body::RebootResponse(_) | Body::FactoryResetResponse(_) => Step::Done(json!({"status": 0})),
            Body::DownloadResponse(r) if r.status == 0 => Step::Done(json!({"status": 0})),
            Body::DownloadResponse(_) => Step::AwaitTransfer,
            other => unexpected(other.method_name(), spec),
        }
    }
}

/// Whether a parameter is a password, never read back or cached after a set.
pub fn secret_name(name: &str) -> bool {
    name.rsplit('.').next().unwrap_or(name).ends_with("Password")
}

/// A CPE answer that does not belong to the task's request.
fn unexpected(answer: &str, spec: &TaskSpec) -> Step {
    Step::Fault(cwmp::Fault::with_string(
        FaultCode::AcsInvalidArguments,
        format!("{answer} does not answer {}", spec.name()),
    ))
}

/// Why a task (or a preset's request) failed, as the faults record it and the NBI shows it:
/// [`Failure::code`] is its one mapping to the recorded code.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The CPE answered with a CWMP fault (or with an answer that does not fit the request:
    /// 8003, invalid arguments, from the ACS).
    Cpe(cwmp::Fault),
    /// The CPE reported a failed transfer in its TransferComplete.
    Transfer(cwmp::TransferFault),
    /// A stored task that cannot run (the reason).
    Invalid(String),
}

impl Failure {
    /// The recorded code: `cwmp.<fault code>` for what the CPE reported, `task.invalid` for a
    /// task the ACS cannot run.
    pub fn code(&self) -> String {
        match self {
            Failure::Cpe(f) => format!("cwmp.{}", f.code.code()),
            Failure::Transfer(t) => format!("cwmp.{}", t.code),
            Failure::Invalid(_) => "task.invalid".into(),
        }
    }

    /// The recorded message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Cpe(f) => &f.string,
            Failure::Transfer(t) => &t.string,
            Failure::Invalid(why) => why,
        }
    }

    /// The per-parameter detail of a SetParameterValues fault (`path: code string; ...`).
    pub fn parameters(&self) -> String {
        match self {
            Failure::Cpe(f) => f
                .set_parameter_values_faults
                .iter()
                .map(|p| format!("{}: {} {}", p.parameter_name, p.code.code(), p.string))
                .collect::<Vec<_>>()
                .join("; "),
            Failure::Transfer(_) | Failure::Invalid(_) => String::new(),
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
    let applied = match &task.order.spec {
        TaskSpec::Download { .. } => {
            // The TransferComplete that comes with "M Download" decides (and carries the outcome).
            let reported = events.iter().any(|e| e.code == "M Download" && e.command_key == task.key);
            return if reported { TaskStatus::Sent } else { TaskStatus::Pending };
        }
        TaskSpec::SetParameterValues { .. } | TaskSpec::AddObject { .. } | TaskSpec::DeleteObject { .. } => {
            parameter_key == Some(task.key.as_str())
        }
        TaskSpec::Reboot => events.iter().any(|e| e.code == "M Reboot" && e.command_key == task.key),
        TaskSpec::FactoryReset => events.iter().any(|e| e.code == "0 BOOTSTRAP"),
        TaskSpec::GetParameterValues { .. } | TaskSpec::RefreshObject { .. } => false,
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

    #[test]
    fn the_stored_form_is_genieacs_json() {
        // As the NBI and older versions of the ACS stored them.
        for stored in [
            json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]}),
            json!({"name": "setParameterValues", "parameterValues": [["Device.A", "5", "xsd:unsignedInt"], ["Device.B", "x", "xsd:string"]]}),
            json!({"name": "refreshObject", "objectName": "Device.WiFi."}),
            json!({"name": "addObject", "objectName": "Device.X.", "parameterValues": [["Enable", "true", "xsd:boolean"]], "profile": true}),
            json!({"name": "addObject", "objectName": "Device.X."}),
            json!({"name": "deleteObject", "objectName": "Device.X.2."}),
            json!({"name": "reboot"}),
            json!({"name": "factoryReset"}),
            json!({"name": "download", "fileType": "1 Firmware Upgrade Image", "fileName": "fw.bin", "targetFileName": "fw"}),
        ] {
            let order: Order = serde_json::from_value(stored.clone()).expect("decodes");
            assert_eq!(order.to_json(), stored, "round trip");
        }
        // Triples without a type get one from the JSON value, and keep it from then on.
        let order = Order::from_json(&json!({"name": "setParameterValues", "parameterValues": [["Device.A", 5], ["Device.B", true], ["Device.C", -1], ["Device.D", "x"]]})).expect("valid");
        assert_eq!(
            order.to_json(),
            json!({"name": "setParameterValues", "parameterValues": [["Device.A", "5", "xsd:unsignedInt"], ["Device.B", "true", "xsd:boolean"], ["Device.C", "-1", "xsd:int"], ["Device.D", "x", "xsd:string"]]})
        );
        assert!(!order.profile);
        let e = serde_json::from_value::<Order>(json!({"name": "fly"})).expect_err("unknown");
        assert_eq!(e.to_string(), "unknown task \"fly\"");
    }

    #[test]
    fn failures_name_their_recorded_code() {
        let mut f = cwmp::Fault::new(FaultCode::InvalidParameterValue);
        f.set_parameter_values_faults.push(cwmp::ParameterFault {
            parameter_name: "Device.A".into(),
            code: FaultCode::InvalidParameterValue,
            string: "bad".into(),
        });
        let cpe = Failure::Cpe(f);
        assert_eq!((cpe.code().as_str(), cpe.parameters().as_str()), ("cwmp.9007", "Device.A: 9007 bad"));
        let t = Failure::Transfer(cwmp::TransferFault { code: 9010, string: "no file".into() });
        assert_eq!((t.code().as_str(), t.message()), ("cwmp.9010", "no file"));
        let i = Failure::Invalid("unknown task \"fly\"".into());
        assert_eq!((i.code().as_str(), i.parameters().as_str()), ("task.invalid", ""));
    }

    #[test]
    fn variants_decide_the_requests() {
        let files = crate::file_urls::FileUrls::new(&[1; 32], "http://acs/files/");
        let ctx = Context { files: &files, now: 100 };
        let task = |spec: TaskSpec| Task {
            id: 1,
            device: "d".into(),
            order: spec.into(),
            status: TaskStatus::Sent,
            attempts: 1,
            not_before: 0,
            key: "task-1-1".into(),
            created: 0,
            result: None,
        };
        let (_, body) = Running::start(task(TaskSpec::RefreshObject { object_name: "Device.WiFi".into() }), &ctx);
        assert_eq!(body, Body::GetParameterValues(GetParameterValues { parameter_names: vec!["Device.WiFi.".into()] }));
        let dl = TaskSpec::Download {
            file: None,
            file_type: "1 Firmware Upgrade Image".into(),
            file_name: "fw.bin".into(),
            target_file_name: None,
        };
        let Body::Download(d) = Running::start(task(dl.clone()), &ctx).1 else { panic!("a Download") };
        assert_eq!(d.command_key, "task-1-1");
        let (path, query) = d.url.split_once('?').expect("a signed URL");
        assert_eq!(path, "http://acs/files/fw.bin");
        assert_eq!(files.check("fw.bin", Some(query), 100), Ok("d".to_string()), "signed for the task's device");
        let reboot = task(TaskSpec::Reboot);
        let ev = |code: &str, key: &str| cwmp::Event { code: code.into(), command_key: key.into() };
        assert_eq!(reconcile(&reboot, None, &[ev("M Reboot", "task-1-1")]), TaskStatus::Done);
        assert_eq!(reconcile(&reboot, None, &[ev("1 BOOT", "")]), TaskStatus::Pending);
        assert_eq!(reconcile(&task(dl), None, &[ev("M Download", "task-1-1")]), TaskStatus::Sent);
        let set = task(TaskSpec::set(vec![ParameterValue::new("Device.A", Value::String("x".into()))]));
        assert_eq!(reconcile(&set, Some("task-1-1"), &[]), TaskStatus::Done);
        assert_eq!(reconcile(&set, Some("task-0-1"), &[]), TaskStatus::Pending);
    }
}
