//! Tasks: the GenieACS task JSON checked and turned into CWMP requests, run step by step inside
//! a session, with results, parameter-cache refreshes and faults recorded in the store.

use std::collections::VecDeque;

use cwmp::{
    AddObject, Body, CancelTransfer, ChangeDUState, DeleteObject, Download, FactoryReset, FaultCode,
    GetAllQueuedTransfers, GetOptions, GetParameterAttributes, GetParameterNames, GetParameterValues,
    GetQueuedTransfers, Notification, ParameterValue, Reboot, ScheduleDownload, ScheduleInform, SetParameterAttribute,
    SetParameterAttributes, SetParameterValues, SetVouchers, Upload, Value, XsdType,
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
        /// TR-069 file type (`1 Firmware Upgrade Image`, ...); empty until taken from `file`
        /// (and then left out of the JSON, which reads back as a task by file).
        #[serde(skip_serializing_if = "String::is_empty")]
        file_type: String,
        /// The file's name on the file server.
        file_name: String,
        /// The name the CPE should give it.
        #[serde(skip_serializing_if = "Option::is_none")]
        target_file_name: Option<String>,
    },
    /// List names (and writability) below a path.
    GetParameterNames {
        /// A partial path (ending in `.`), a parameter, or empty for the whole tree.
        parameter_path: String,
        /// Only the level right below the path.
        next_level: bool,
    },
    /// Read notification and access-list attributes.
    GetParameterAttributes {
        /// Paths; a partial path reads a subtree.
        parameter_names: Vec<String>,
    },
    /// Change notification and access-list attributes, then read them back.
    SetParameterAttributes {
        /// `[name, notification | null, accessList | null]` triples, as GenieACS types its
        /// SetParameterAttributes (null: leave it as it is).
        #[serde(serialize_with = "attribute_triples")]
        parameter_list: Vec<SetParameterAttribute>,
    },
    /// Have the CPE upload a file (a configuration or a log) to the ACS's file server; done at
    /// its TransferComplete, the file then stored under `file_name`.
    Upload {
        /// TR-069 file type (`1 Vendor Configuration File`, `2 Vendor Log File`, ...).
        file_type: String,
        /// The name the upload is stored under (default `<device>-<type>-<task id>`).
        #[serde(skip_serializing_if = "Option::is_none")]
        file_name: Option<String>,
        /// Seconds the CPE may wait before it starts.
        #[serde(skip_serializing_if = "is_zero")]
        delay_seconds: u32,
    },
    /// Ask for an Inform ("3 SCHEDULED", "M ScheduleInform") after a delay.
    ScheduleInform {
        /// Seconds from now (at least 1).
        delay_seconds: u32,
    },
    /// A download in time windows; done at its TransferComplete.
    ScheduleDownload {
        /// The uploaded file the task names alone, as `download`'s `file`; `file_name` and
        /// `file_type` then come from it (the NBI takes the type from the file's metadata).
        #[serde(skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        /// TR-069 file type; empty until taken from `file` (and then left out of the JSON).
        #[serde(skip_serializing_if = "String::is_empty")]
        file_type: String,
        /// The file's name on the file server.
        file_name: String,
        /// The name the CPE should give it.
        #[serde(skip_serializing_if = "Option::is_none")]
        target_file_name: Option<String>,
        /// One or two windows.
        time_windows: Vec<Window>,
    },
    /// Cancel a download or upload the CPE has not finished.
    CancelTransfer {
        /// The transfer task (its `_id`), whose CommandKey the ACS knows.
        #[serde(skip_serializing_if = "Option::is_none")]
        task: Option<String>,
        /// Or the CommandKey itself.
        #[serde(skip_serializing_if = "Option::is_none")]
        command_key: Option<String>,
    },
    /// Install, update or uninstall deployment units; done at the DUStateChangeComplete.
    #[serde(rename = "changeDUState")]
    ChangeDuState {
        /// The operations, in order.
        operations: Vec<DuOp>,
    },
    /// The transfers the ACS asked for that the CPE still holds.
    GetQueuedTransfers,
    /// Every transfer the CPE holds, whoever asked for it.
    GetAllQueuedTransfers,
    /// The options (software features bought with vouchers) the CPE holds.
    GetOptions {
        /// One option, or empty for all.
        option_name: String,
    },
    /// Give the CPE option vouchers.
    SetVouchers {
        /// Each voucher, base64 as CWMP carries it.
        voucher_list: Vec<String>,
    },
    /// GenieACS's `provisions` task: built-in provisions, turned into requests from what the
    /// ACS holds of the device when the task starts ([`crate::provisions`]).
    Provisions {
        /// The provisions, in order (`[["value", path, value], ["tag", tag, true], ...]`).
        provisions: Vec<crate::provisions::ProvisionCall>,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A ScheduleDownload time window (`TimeWindowStruct`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Window {
    /// Seconds from the request.
    pub window_start: u32,
    /// Seconds from the request (after the start).
    pub window_end: u32,
    /// `1 At Any Time`, `2 Immediately`, `3 When Idle` or `4 Confirmation Needed`.
    pub window_mode: String,
    /// Shown to the user (for `4 Confirmation Needed`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_message: String,
    /// Attempts; -1 for the CPE's own choice.
    #[serde(default = "minus_one")]
    pub max_retries: i32,
}

fn minus_one() -> i32 {
    -1
}

/// A ChangeDUState operation, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum DuOp {
    /// Install the unit at `url`.
    Install {
        /// Where the unit is.
        url: String,
        /// Its UUID, if known.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        uuid: String,
        /// The execution environment (a path), or empty for the CPE's choice.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        execution_env_ref: String,
    },
    /// Update a unit (by UUID; empty: all).
    Update {
        /// The unit.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        uuid: String,
        /// Its version to update (empty: the only one).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        version: String,
        /// Where the new version is (empty: where it came from).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        url: String,
    },
    /// Uninstall a unit.
    Uninstall {
        /// The unit.
        uuid: String,
        /// Its version (empty: all).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        version: String,
        /// The execution environment (empty: every one).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        execution_env_ref: String,
    },
}

impl DuOp {
    fn to_cwmp(&self) -> cwmp::DuOperation {
        match self.clone() {
            DuOp::Install { url, uuid, execution_env_ref } => cwmp::DuOperation::Install {
                url,
                uuid,
                username: String::new(),
                password: String::new(),
                execution_env_ref,
            },
            DuOp::Update { uuid, version, url } => {
                cwmp::DuOperation::Update { uuid, version, url, username: String::new(), password: String::new() }
            }
            DuOp::Uninstall { uuid, version, execution_env_ref } => {
                cwmp::DuOperation::Uninstall { uuid, version, execution_env_ref }
            }
        }
    }
}

fn attribute_triples<S: serde::Serializer>(list: &[SetParameterAttribute], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(list.len()))?;
    for a in list {
        let n = a.notification_change.then(|| a.notification.code());
        let acl = a.access_list_change.then_some(&a.access_list);
        seq.serialize_element(&(&a.name, n, acl))?;
    }
    seq.end()
}

/// One `[name, notification | null, accessList | null]` of a setParameterAttributes.
fn attribute_triple(t: &Json) -> Result<SetParameterAttribute, BadTask> {
    let shape = || BadTask("each parameterList entry is [name, notification 0-6 or null, accessList or null]".into());
    let t = t.as_array().filter(|t| (1..=3).contains(&t.len())).ok_or_else(shape)?;
    let name = t.first().and_then(Json::as_str).ok_or_else(shape)?.to_string();
    let notification = match t.get(1) {
        None | Some(Json::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .and_then(Notification::from_code)
                .ok_or_else(|| BadTask(format!("{name}: notification is 0 to 6")))?,
        ),
    };
    let access_list = match t.get(2) {
        None | Some(Json::Null) => None,
        Some(Json::Array(a)) => Some(
            a.iter()
                .map(|e| e.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| BadTask(format!("{name}: accessList is an array of strings")))?,
        ),
        Some(_) => return Err(BadTask(format!("{name}: accessList is an array of strings"))),
    };
    if notification.is_none() && access_list.is_none() {
        return Err(BadTask(format!("{name}: neither a notification nor an accessList to set")));
    }
    Ok(SetParameterAttribute {
        name,
        notification_change: notification.is_some(),
        notification: notification.unwrap_or_default(),
        access_list_change: access_list.is_some(),
        access_list: access_list.unwrap_or_default(),
    })
}

/// A number field that fits a u32 (absent: `default`).
fn seconds(spec: &Json, field: &str, default: Option<u32>) -> Result<u32, BadTask> {
    match (spec.get(field), default) {
        (None | Some(Json::Null), Some(d)) => Ok(d),
        (None | Some(Json::Null), None) => Err(BadTask(format!("{field} is required"))),
        (Some(v), _) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| BadTask(format!("{field} is a number of seconds (0 to 4294967295)"))),
    }
}

/// An optional non-empty string field.
fn optional(spec: &Json, field: &str) -> Result<Option<String>, BadTask> {
    match spec.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(BadTask(format!("{field} must be a non-empty string"))),
    }
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

/// What GenieACS keeps with a task besides what it does: when it expires (`expiry`) and the key
/// that makes a new task replace the device's earlier one (`uniqueKey`). Stored in the task's
/// JSON beside its [`Order`] (`expiry` as an ISO date, as GenieACS shows it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Terms {
    /// Milliseconds since 1970 from which the task is not sent: it is removed at the device's
    /// next session (GenieACS's "Task expired").
    pub expiry: Option<i64>,
    /// A task posted with the same key replaces the device's task that is not done yet.
    pub unique_key: Option<String>,
}

/// The latest date a task may expire at (the end of year 9999, as JavaScript prints dates).
const LAST_DATE_MS: i64 = 253_402_300_799_999;

impl Terms {
    /// As the NBI receives them, read as GenieACS's `sanitizeTask` reads `expiry`: a number (or
    /// numeric text) is seconds after `timestamp_ms`, the task's timestamp; other text is a
    /// date; `false`, `0`, `""` or `null` is none. Anything else is an error saying why.
    pub fn from_nbi(j: &Json, timestamp_ms: i64) -> Result<Terms, BadTask> {
        let relative = |secs: f64| -> Result<i64, BadTask> {
            let ms = (timestamp_ms as f64 + (secs * 1000.0).trunc()).trunc();
            if secs.is_finite() && (0.0..=LAST_DATE_MS as f64).contains(&ms) {
                Ok(ms as i64)
            } else {
                Err(BadTask(format!("expiry {secs} s after the task's timestamp is not a date")))
            }
        };
        let expiry = match j.get("expiry") {
            None | Some(Json::Null) | Some(Json::Bool(false)) => None,
            Some(Json::Number(n)) if n.as_f64() == Some(0.0) => None,
            Some(Json::String(s)) if s.is_empty() => None,
            Some(Json::Number(n)) => Some(relative(n.as_f64().unwrap_or(f64::NAN))?),
            Some(Json::String(s)) => match s.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() => Some(relative(secs)?),
                _ => match crate::query::parse_date(s) {
                    Some(ms) if (0..=LAST_DATE_MS).contains(&ms) => Some(ms),
                    _ => {
                        return Err(BadTask(format!(
                            "expiry {s:?} is neither a number of seconds nor a date (ISO 8601, RFC 2822)"
                        )))
                    }
                },
            },
            Some(_) => {
                return Err(BadTask("expiry is a number of seconds after the task's timestamp, or a date".into()))
            }
        };
        let unique_key = match j.get("uniqueKey") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s.is_empty() => None,
            Some(Json::String(s)) if s.len() <= 1024 => Some(s.clone()),
            Some(_) => return Err(BadTask("uniqueKey is a string of at most 1024 bytes".into())),
        };
        Ok(Terms { expiry, unique_key })
    }

    /// As stored with the task (what does not read is left out: the task still runs).
    pub fn from_stored(j: &Json) -> Terms {
        let expiry = match j.get("expiry") {
            Some(Json::String(s)) => crate::query::parse_date(s),
            Some(Json::Number(n)) => n.as_i64(),
            _ => None,
        };
        let unique_key = j.get("uniqueKey").and_then(Json::as_str).map(str::to_string);
        Terms { expiry, unique_key }
    }

    /// Adds them to a task's JSON (the stored form, and what the NBI shows).
    pub fn add_to(&self, j: &mut Json) {
        if let Json::Object(m) = j {
            if let Some(e) = self.expiry {
                m.insert("expiry".into(), json!(crate::query::iso_millis(e)));
            }
            if let Some(k) = &self.unique_key {
                m.insert("uniqueKey".into(), json!(k));
            }
        }
    }

    /// Whether the task has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expiry.is_some_and(|e| e <= now_ms)
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
            "getParameterNames" => TaskSpec::GetParameterNames {
                parameter_path: match spec.get("parameterPath") {
                    None | Some(Json::Null) => String::new(),
                    Some(Json::String(s)) => s.clone(),
                    Some(_) => return Err(BadTask("parameterPath must be a string (empty: the whole tree)".into())),
                },
                next_level: match spec.get("nextLevel") {
                    None | Some(Json::Null) => false,
                    Some(Json::Bool(b)) => *b,
                    Some(_) => return Err(BadTask("nextLevel must be true or false".into())),
                },
            },
            "getParameterAttributes" => {
                let parameter_names = strings(spec, "parameterNames")?;
                if parameter_names.is_empty() {
                    return Err(BadTask("parameterNames must name at least one parameter".into()));
                }
                TaskSpec::GetParameterAttributes { parameter_names }
            }
            "setParameterAttributes" => {
                let list =
                    spec.get("parameterList").and_then(Json::as_array).filter(|l| !l.is_empty()).ok_or_else(|| {
                        BadTask("parameterList must be a non-empty array of [name, notification, accessList]".into())
                    })?;
                TaskSpec::SetParameterAttributes {
                    parameter_list: list.iter().map(attribute_triple).collect::<Result<_, _>>()?,
                }
            }
            "upload" => TaskSpec::Upload {
                file_type: optional(spec, "fileType")?.ok_or_else(|| BadTask("fileType is required".into()))?,
                file_name: match optional(spec, "fileName")? {
                    Some(n) if n.contains('/') || n == ".." || n == "." => {
                        return Err(BadTask(format!("fileName {n:?} must be a plain file name")))
                    }
                    n => n,
                },
                delay_seconds: seconds(spec, "delaySeconds", Some(0))?,
            },
            "scheduleInform" => {
                let delay_seconds = seconds(spec, "delaySeconds", None)?;
                if delay_seconds == 0 {
                    return Err(BadTask("delaySeconds must be at least 1 (TR-069 A.4.1.3)".into()));
                }
                TaskSpec::ScheduleInform { delay_seconds }
            }
            "scheduleDownload" => {
                let windows = spec
                    .get("timeWindows")
                    .cloned()
                    .ok_or_else(|| BadTask("timeWindows (one or two) are required".into()))?;
                let time_windows: Vec<Window> =
                    serde_json::from_value(windows).map_err(|e| BadTask(format!("timeWindows: {e}")))?;
                if time_windows.is_empty() || time_windows.len() > 2 {
                    return Err(BadTask("timeWindows holds one or two windows".into()));
                }
                if let Some(w) = time_windows.iter().find(|w| w.window_end <= w.window_start) {
                    return Err(BadTask(format!(
                        "a window ends after it starts ({} to {})",
                        w.window_start, w.window_end
                    )));
                }
                // By fileName and fileType, or by the uploaded file alone (as a download).
                let file = optional(spec, "file")?;
                let file_name = match (optional(spec, "fileName")?, &file) {
                    (Some(n), _) => n,
                    (None, Some(f)) => f.clone(),
                    (None, None) => {
                        return Err(BadTask("fileName is required (or file, naming an uploaded file)".into()))
                    }
                };
                let file_type = match (optional(spec, "fileType")?, &file) {
                    (Some(t), _) => t,
                    (None, Some(_)) => String::new(),
                    (None, None) => {
                        return Err(BadTask("fileType is required (or file, naming an uploaded file)".into()))
                    }
                };
                TaskSpec::ScheduleDownload {
                    file,
                    file_type,
                    file_name,
                    target_file_name: optional(spec, "targetFileName")?,
                    time_windows,
                }
            }
            "cancelTransfer" => {
                let task = match spec.get("task") {
                    None | Some(Json::Null) => None,
                    Some(Json::String(s)) if s.parse::<i64>().is_ok() => Some(s.clone()),
                    Some(Json::Number(n)) if n.is_i64() => Some(n.to_string()),
                    Some(_) => return Err(BadTask("task must be a task's _id".into())),
                };
                let command_key = optional(spec, "commandKey")?;
                if task.is_some() == command_key.is_some() {
                    return Err(BadTask("cancelTransfer names the transfer by task (its _id) or by commandKey".into()));
                }
                TaskSpec::CancelTransfer { task, command_key }
            }
            "changeDUState" => {
                let ops = spec.get("operations").cloned().ok_or_else(|| BadTask("operations are required".into()))?;
                let operations: Vec<DuOp> =
                    serde_json::from_value(ops).map_err(|e| BadTask(format!("operations: {e}")))?;
                if operations.is_empty() {
                    return Err(BadTask("operations must hold at least one operation".into()));
                }
                TaskSpec::ChangeDuState { operations }
            }
            "getQueuedTransfers" => TaskSpec::GetQueuedTransfers,
            "getAllQueuedTransfers" => TaskSpec::GetAllQueuedTransfers,
            "getOptions" => TaskSpec::GetOptions {
                option_name: match spec.get("optionName") {
                    None | Some(Json::Null) => String::new(),
                    Some(Json::String(s)) => s.clone(),
                    Some(_) => return Err(BadTask("optionName must be a string (empty: all)".into())),
                },
            },
            "setVouchers" => {
                let voucher_list = strings(spec, "voucherList")?;
                if voucher_list.is_empty() || voucher_list.iter().any(String::is_empty) {
                    return Err(BadTask("voucherList must hold at least one voucher, none empty".into()));
                }
                TaskSpec::SetVouchers { voucher_list }
            }
            "provisions" => TaskSpec::Provisions { provisions: crate::provisions::from_json(spec)? },
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
            TaskSpec::GetParameterNames { .. } => "getParameterNames",
            TaskSpec::GetParameterAttributes { .. } => "getParameterAttributes",
            TaskSpec::SetParameterAttributes { .. } => "setParameterAttributes",
            TaskSpec::Upload { .. } => "upload",
            TaskSpec::ScheduleInform { .. } => "scheduleInform",
            TaskSpec::ScheduleDownload { .. } => "scheduleDownload",
            TaskSpec::CancelTransfer { .. } => "cancelTransfer",
            TaskSpec::ChangeDuState { .. } => "changeDUState",
            TaskSpec::GetQueuedTransfers => "getQueuedTransfers",
            TaskSpec::GetAllQueuedTransfers => "getAllQueuedTransfers",
            TaskSpec::GetOptions { .. } => "getOptions",
            TaskSpec::SetVouchers { .. } => "setVouchers",
            TaskSpec::Provisions { .. } => "provisions",
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
            TaskSpec::GetParameterNames { parameter_path, .. } => parameter_path.contains(s),
            TaskSpec::GetParameterAttributes { parameter_names } => parameter_names.iter().any(|n| n.contains(s)),
            TaskSpec::SetParameterAttributes { parameter_list } => parameter_list.iter().any(|p| p.name.contains(s)),
            TaskSpec::Provisions { provisions } => provisions.iter().any(|p| p.mentions(s)),
            TaskSpec::Reboot
            | TaskSpec::FactoryReset
            | TaskSpec::Download { .. }
            | TaskSpec::Upload { .. }
            | TaskSpec::ScheduleInform { .. }
            | TaskSpec::ScheduleDownload { .. }
            | TaskSpec::CancelTransfer { .. }
            | TaskSpec::ChangeDuState { .. }
            | TaskSpec::GetQueuedTransfers
            | TaskSpec::GetAllQueuedTransfers
            | TaskSpec::GetOptions { .. }
            | TaskSpec::SetVouchers { .. } => false,
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

/// How many leaves one GetParameterValues of a `refreshObject` walk asks for.
pub const GPV_BATCH: usize = 64;

/// A `refreshObject` walk, as GenieACS refreshes: the objects still to list with
/// GetParameterNames (next level), then the leaves found, read with GetParameterValues in
/// batches of [`GPV_BATCH`]. A GetParameterValues of a partial path is never sent: real CPEs
/// and simulators handle it badly.
#[derive(Debug, Default)]
struct Walk {
    /// The object refreshed (dotted; empty: the whole tree).
    root: String,
    /// The path of the GetParameterNames outstanding.
    listing: String,
    /// Objects listed, not yet walked.
    objects: VecDeque<String>,
    /// Leaves found, in the order listed.
    leaves: Vec<String>,
    /// Every name listed (a CPE that lists a level twice, or more than one level, is walked once).
    seen: std::collections::HashSet<String>,
    /// Leaves asked for so far.
    asked: usize,
    /// Values read.
    values: Vec<CachedParam>,
    /// The top-level objects (`Device.`): a whole-tree walk's scope.
    tops: Vec<String>,
}

impl Walk {
    fn new(root: String) -> Walk {
        Walk { listing: root.clone(), root, ..Walk::default() }
    }

    /// The next request, or none when the walk is over.
    fn next(&mut self) -> Option<Body> {
        if let Some(o) = self.objects.pop_front() {
            self.listing = o.clone();
            return Some(Body::GetParameterNames(GetParameterNames { parameter_path: o, next_level: true }));
        }
        if self.asked < self.leaves.len() {
            let end = (self.asked + GPV_BATCH).min(self.leaves.len());
            let names = self.leaves[self.asked..end].to_vec();
            self.asked = end;
            return Some(Body::GetParameterValues(GetParameterValues { parameter_names: names }));
        }
        None
    }

    /// Takes in a level the CPE listed at `now`; what it tells to cache: each name's writability,
    /// and that the object listed had its children listed then.
    fn listed(&mut self, device: &str, list: Vec<cwmp::ParameterInfo>, now: i64) -> Vec<crate::store::PathInfo> {
        let mut info = Vec::with_capacity(list.len() + 1);
        if !self.listing.is_empty() {
            info.push(crate::store::PathInfo { name: self.listing.clone(), listed: Some(now), ..Default::default() });
        }
        for p in list {
            if p.name == self.listing || !p.name.starts_with(&self.listing) {
                tracing::debug!(%device, name = %p.name, below = %self.listing, "a name not below the path listed: passed over");
                continue;
            }
            if !self.seen.insert(p.name.clone()) {
                continue;
            }
            info.push(crate::store::PathInfo {
                name: p.name.clone(),
                writable: Some(p.writable),
                ..Default::default()
            });
            if p.name.ends_with('.') {
                if self.root.is_empty() && self.listing.is_empty() {
                    self.tops.push(p.name.clone());
                }
                self.objects.push_back(p.name);
            } else {
                self.leaves.push(p.name);
            }
        }
        info
    }

    /// Forgets what the cache holds in the walked subtree (values, objects, what GetParameterNames
    /// and GetParameterAttributes told) that the CPE no longer has; the result.
    fn finish(self, device: &str, store: &dyn Store) -> Json {
        let scope: Vec<&str> =
            if self.root.is_empty() { self.tops.iter().map(String::as_str).collect() } else { vec![&self.root] };
        match store.cached_names(device) {
            Ok(cached) => {
                let stale: Vec<String> = cached
                    .into_iter()
                    .filter(|c| {
                        c != &self.root && scope.iter().any(|s| c.starts_with(s)) && !self.seen.contains(c.as_str())
                    })
                    .collect();
                if !stale.is_empty() {
                    tracing::info!(%device, count = stale.len(), "cached parameters the device no longer has forgotten");
                    if let Err(e) = store.forget_param_names(device, &stale) {
                        tracing::error!(%device, "forgetting parameters: {e}");
                    }
                }
            }
            Err(e) => tracing::error!(%device, "reading the cache after a refresh: {e}"),
        }
        json!({"parameters": value_triples(self.values)})
    }
}

/// Cached values as GenieACS's `[name, value, type]` triples.
fn value_triples(cached: Vec<CachedParam>) -> Json {
    Json::Array(
        cached
            .into_iter()
            .map(|c| {
                Json::Array(vec![Json::String(c.name), Json::String(c.value), Json::String(format!("xsd:{}", c.ty))])
            })
            .collect(),
    )
}

/// The name the CPE signs an upload's URL for: never the name of a stored file (they hold no
/// NUL), so a URL to download a file cannot be used to upload over it.
pub fn upload_signed_name(file: &str) -> String {
    format!("\0upload\0{file}")
}

/// The URL `device` PUTs an upload of `file` to: the file server's path for `file`, signed for
/// [`upload_signed_name`].
pub fn upload_url(files: &crate::file_urls::FileUrls, device: &str, file: &str, now: i64) -> String {
    let path = files.url(device, file, now);
    let path = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
    let signed = files.url(device, &upload_signed_name(file), now);
    let query = signed.split_once('?').map_or("", |(_, q)| q);
    format!("{path}?{query}")
}

/// The name an upload is stored under: the task's `fileName`, else `<device>-<type>-<task id>`
/// (`00A0B1-Box-1-vendor-log-file-12`).
pub fn upload_name(task: &Task) -> Option<String> {
    let TaskSpec::Upload { file_type, file_name, .. } = &task.order.spec else { return None };
    if let Some(n) = file_name {
        return Some(n.clone());
    }
    let words: Vec<String> = file_type
        .split_whitespace()
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| w.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    Some(format!("{}-{}-{}", task.device, words.join("-"), task.id))
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
    walk: Option<Walk>,
    /// The CommandKey a cancelTransfer sent.
    cancel_key: Option<String>,
    /// A `provisions` task's requests.
    plan: Option<Box<Plan>>,
    /// A SetParameterValues the cache takes as set when the CPE accepts it, without reading
    /// it back (the provision scripts' sets, as GenieACS takes them).
    pub trust_sets: bool,
}

/// What starting a task comes to.
#[derive(Debug)]
pub enum Begin {
    /// Send this request first.
    Send(Running, Body),
    /// Nothing to send: this step applies now (a `provisions` task the device already meets, or
    /// one the ACS could not plan).
    Now(Running, Step),
}

/// A `provisions` task's requests, each run as a task of its own would run (same key), one
/// after another; the task's result lists theirs.
#[derive(Debug)]
struct Plan {
    current: Running,
    rest: VecDeque<(Running, Body)>,
    results: Vec<Json>,
    /// A transfer among them was accepted: the task completes with its TransferComplete.
    awaiting: bool,
    /// The provisioning that makes the requests, round after round (a `provisions` task naming
    /// scripts, or one reading or writing virtual parameters).
    scripts: Option<Box<crate::script::Provisioning>>,
    /// How the provisioning's Downloads sign their URLs.
    files: Option<crate::file_urls::FileUrls>,
}

/// The requests of a provisioning's round, each started as the task would start it.
fn parts(
    task: &Task,
    specs: Vec<TaskSpec>,
    now: i64,
    store: &dyn Store,
    files: &crate::file_urls::FileUrls,
) -> VecDeque<(Running, Body)> {
    let ctx = Context { files, now, store: Some(store), scripts: None };
    let mut out = VecDeque::new();
    for spec in specs {
        let part = Task { order: spec.into(), ..task.clone() };
        if let Begin::Send(mut r, body) = Running::start(part, &ctx) {
            r.trust_sets = true;
            out.push_back((r, body));
        }
    }
    out
}

/// Where a provisioning's round leads: its first request, the task done, or its fault.
fn round(
    task: &Task,
    scripts: &mut crate::script::Provisioning,
    store: &dyn Store,
    now: i64,
    files: &crate::file_urls::FileUrls,
) -> Result<Option<VecDeque<(Running, Body)>>, Failure> {
    let (next, faults) =
        scripts.next(store, now).map_err(|e| Failure::Invalid(format!("the ACS could not read the device: {e}")))?;
    if let Some(f) = faults.into_iter().next() {
        return Err(Failure::Script { code: f.code, message: f.message, detail: f.detail });
    }
    match next {
        crate::script::Next::Send(list) => {
            Ok(Some(parts(task, list.into_iter().map(|(_, t)| t).collect(), now, store, files)))
        }
        crate::script::Next::Done => Ok(None),
    }
}

/// A scripted task's result: the provisions' results, or the values it read or wrote.
fn scripted_result(task: &Task, results: Vec<Json>, store: &dyn Store) -> Json {
    let names: Vec<String> = match &task.order.spec {
        TaskSpec::Provisions { .. } => return json!({"provisions": results}),
        TaskSpec::GetParameterValues { parameter_names } => parameter_names.clone(),
        TaskSpec::SetParameterValues { parameter_values } => parameter_values.iter().map(|p| p.name.clone()).collect(),
        TaskSpec::RefreshObject { object_name } => vec![format!("{}.", object_name.trim_end_matches('.'))],
        _ => Vec::new(),
    };
    let cached = store.params(&task.device).unwrap_or_default();
    let picked: Vec<CachedParam> = cached
        .into_iter()
        .filter(|c| names.iter().any(|n| c.name == *n || (n.ends_with('.') && c.name.starts_with(n.as_str()))))
        .collect();
    let mut out = json!({"parameters": value_triples(picked)});
    if matches!(task.order.spec, TaskSpec::SetParameterValues { .. }) {
        out["status"] = json!(0);
    }
    out
}

impl Plan {
    /// The next step of the task `outer` (whose parts these are).
    fn advance(&mut self, step: Step, outer: &Task, store: &dyn Store, now: i64) -> Step {
        let name = self.current.task.order.spec.name();
        match step {
            Step::Next(body) => return Step::Next(body),
            Step::Fault(f) => return Step::Fault(f),
            Step::Failed(f) => return Step::Failed(f),
            Step::Done(result) => self.results.push(json!({"name": name, "result": result})),
            Step::AwaitTransfer => {
                self.awaiting = true;
                self.results.push(json!({"name": name, "result": {"status": 1}}));
            }
        }
        if self.rest.is_empty() {
            if let (Some(scripts), Some(files)) = (self.scripts.as_mut(), self.files.as_ref()) {
                match round(outer, scripts, store, now, files) {
                    Ok(Some(rest)) => self.rest = rest,
                    Ok(None) if self.awaiting => return Step::AwaitTransfer,
                    Ok(None) => {
                        let result = scripted_result(outer, std::mem::take(&mut self.results), store);
                        return Step::Done(result);
                    }
                    Err(f) => return Step::Failed(f),
                }
            }
        }
        match self.rest.pop_front() {
            Some((run, body)) => {
                self.current = run;
                Step::Next(body)
            }
            None if self.awaiting => Step::AwaitTransfer,
            None => Step::Done(json!({"provisions": std::mem::take(&mut self.results)})),
        }
    }
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
    /// The CPE will report the transfer later (TransferComplete, or DUStateChangeComplete for
    /// deployment units); the task stays sent.
    AwaitTransfer,
    /// The ACS's side failed (a script threw, ran out of time or memory, or the cache could not
    /// be read).
    Failed(Failure),
}

/// What a task's first request needs besides the task.
pub struct Context<'a> {
    /// The signed URLs a Download names its file with.
    pub files: &'a crate::file_urls::FileUrls,
    /// Unix seconds now.
    pub now: i64,
    /// The store, where a `cancelTransfer` finds the CommandKey of the task it names.
    pub store: Option<&'a dyn Store>,
    /// How scripts run (a `provisions` task naming scripts, virtual parameters); `None`: the
    /// defaults.
    pub scripts: Option<&'a crate::script::Settings>,
}

impl Running {
    /// Starts `task`: its first request, sent under `task.key`; a `provisions` task's first
    /// request, or nothing to send when the device already meets its provisions.
    pub fn start(task: Task, ctx: &Context<'_>) -> Begin {
        let key = task.key.clone();
        let mut walk = None;
        let mut cancel_key = None;
        if let Some(begin) = Running::scripted(&task, ctx) {
            return begin;
        }
        let body = match &task.order.spec {
            TaskSpec::Provisions { provisions } => {
                let provisions = provisions.clone();
                return Running::plan(task, &provisions, ctx);
            }
            TaskSpec::GetParameterValues { parameter_names } => {
                Body::GetParameterValues(GetParameterValues { parameter_names: parameter_names.clone() })
            }
            TaskSpec::RefreshObject { object_name } => {
                let root = if object_name.is_empty() { String::new() } else { dotted(object_name) };
                walk = Some(Walk::new(root.clone()));
                Body::GetParameterNames(GetParameterNames { parameter_path: root, next_level: true })
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
                file_size: file_size(ctx.store, file_name),
                target_file_name: target_file_name.clone().unwrap_or_default(),
                delay_seconds: 0,
                success_url: String::new(),
                failure_url: String::new(),
            }),
            TaskSpec::GetParameterNames { parameter_path, next_level } => Body::GetParameterNames(GetParameterNames {
                parameter_path: parameter_path.clone(),
                next_level: *next_level,
            }),
            TaskSpec::GetParameterAttributes { parameter_names } => {
                Body::GetParameterAttributes(GetParameterAttributes { parameter_names: parameter_names.clone() })
            }
            TaskSpec::SetParameterAttributes { parameter_list } => {
                Body::SetParameterAttributes(SetParameterAttributes { parameter_list: parameter_list.clone() })
            }
            TaskSpec::Upload { file_type, delay_seconds, .. } => {
                let name = upload_name(&task).unwrap_or_default();
                Body::Upload(Upload {
                    command_key: key,
                    file_type: file_type.clone(),
                    url: upload_url(ctx.files, &task.device, &name, ctx.now),
                    username: String::new(),
                    password: String::new(),
                    delay_seconds: *delay_seconds,
                })
            }
            TaskSpec::ScheduleInform { delay_seconds } => {
                Body::ScheduleInform(ScheduleInform { delay_seconds: *delay_seconds, command_key: key })
            }
            TaskSpec::ScheduleDownload { file_type, file_name, target_file_name, time_windows, .. } => {
                Body::ScheduleDownload(ScheduleDownload {
                    command_key: key,
                    file_type: file_type.clone(),
                    url: ctx.files.url(&task.device, file_name, ctx.now),
                    username: String::new(),
                    password: String::new(),
                    file_size: file_size(ctx.store, file_name),
                    target_file_name: target_file_name.clone().unwrap_or_default(),
                    time_window_list: time_windows
                        .iter()
                        .map(|w| cwmp::TimeWindow {
                            window_start: w.window_start,
                            window_end: w.window_end,
                            window_mode: w.window_mode.clone(),
                            user_message: w.user_message.clone(),
                            max_retries: w.max_retries,
                        })
                        .collect(),
                })
            }
            TaskSpec::CancelTransfer { task: named, command_key } => {
                let key = match (command_key, named) {
                    (Some(k), _) => k.clone(),
                    (None, Some(id)) => transfer_key(ctx.store, &task.device, id).unwrap_or_default(),
                    (None, None) => String::new(),
                };
                cancel_key = Some(key.clone());
                Body::CancelTransfer(CancelTransfer { command_key: key })
            }
            TaskSpec::ChangeDuState { operations } => Body::ChangeDUState(ChangeDUState {
                operations: operations.iter().map(DuOp::to_cwmp).collect(),
                command_key: key,
            }),
            TaskSpec::GetQueuedTransfers => Body::GetQueuedTransfers(GetQueuedTransfers {}),
            TaskSpec::GetAllQueuedTransfers => Body::GetAllQueuedTransfers(GetAllQueuedTransfers {}),
            TaskSpec::GetOptions { option_name } => Body::GetOptions(GetOptions { option_name: option_name.clone() }),
            TaskSpec::SetVouchers { voucher_list } => {
                Body::SetVouchers(SetVouchers { voucher_list: voucher_list.clone() })
            }
        };
        Begin::Send(
            Running { task, preset: None, stage: 0, instance: None, walk, cancel_key, plan: None, trust_sets: false },
            body,
        )
    }

    /// `task` at its start, with the requests `plan` makes for it (if any).
    fn of(task: Task, plan: Option<Box<Plan>>) -> Running {
        Running { task, preset: None, stage: 0, instance: None, walk: None, cancel_key: None, plan, trust_sets: false }
    }

    /// A task that runs in a provisioning of its own: a `provisions` task naming a script, and
    /// reads, writes and refreshes of virtual parameters (`None`: any other task).
    fn scripted(task: &Task, ctx: &Context<'_>) -> Option<Begin> {
        let virtual_name = |n: &str| n.starts_with("VirtualParameters.") || n == "VirtualParameters";
        let defaults = crate::script::Settings::default();
        let settings = ctx.scripts.unwrap_or(&defaults);
        let label = format!("task_{}", task.id);
        let store = ctx.store?;
        let made = match &task.order.spec {
            TaskSpec::Provisions { provisions } if crate::provisions::has_scripts(provisions) => {
                crate::script::Provisioning::for_task(store, &task.device, ctx.now, &label, provisions, settings)
            }
            TaskSpec::GetParameterValues { parameter_names } if parameter_names.iter().any(|n| virtual_name(n)) => {
                Ok((
                    crate::script::Provisioning::for_virtual_parameters(
                        &task.device,
                        ctx.now,
                        &label,
                        parameter_names,
                        &[],
                        settings,
                    ),
                    Vec::new(),
                ))
            }
            TaskSpec::SetParameterValues { parameter_values }
                if parameter_values.iter().any(|p| virtual_name(&p.name)) =>
            {
                Ok((
                    crate::script::Provisioning::for_virtual_parameters(
                        &task.device,
                        ctx.now,
                        &label,
                        &[],
                        parameter_values,
                        settings,
                    ),
                    Vec::new(),
                ))
            }
            TaskSpec::RefreshObject { object_name } if virtual_name(object_name.trim_end_matches('.')) => {
                let all = vec!["VirtualParameters.*".to_string()];
                Ok((
                    crate::script::Provisioning::for_virtual_parameters(
                        &task.device,
                        ctx.now,
                        &label,
                        &all,
                        &[],
                        settings,
                    ),
                    Vec::new(),
                ))
            }
            _ => return None,
        };
        let bare = |task: &Task, plan| Running::of(task.clone(), plan);
        let mut scripts = match made {
            Ok((p, faults)) => {
                if let Some(f) = faults.into_iter().next() {
                    let failure = Failure::Script { code: f.code, message: f.message, detail: f.detail };
                    return Some(Begin::Now(bare(task, None), Step::Failed(failure)));
                }
                p
            }
            Err(e) => {
                let failure = Failure::Invalid(format!("the ACS could not read the device: {e}"));
                return Some(Begin::Now(bare(task, None), Step::Failed(failure)));
            }
        };
        Some(match round(task, &mut scripts, store, ctx.now, ctx.files) {
            Err(f) => Begin::Now(bare(task, None), Step::Failed(f)),
            Ok(None) => Begin::Now(bare(task, None), Step::Done(scripted_result(task, Vec::new(), store))),
            Ok(Some(mut rest)) => match rest.pop_front() {
                None => Begin::Now(bare(task, None), Step::Done(scripted_result(task, Vec::new(), store))),
                Some((current, body)) => {
                    let plan = Plan {
                        current,
                        rest,
                        results: Vec::new(),
                        awaiting: false,
                        scripts: Some(Box::new(scripts)),
                        files: Some(ctx.files.clone()),
                    };
                    Begin::Send(bare(task, Some(Box::new(plan))), body)
                }
            },
        })
    }

    /// A `provisions` task: its requests from what the store holds of the device now, each
    /// started as a task of the same id and key.
    fn plan(task: Task, provisions: &[crate::provisions::ProvisionCall], ctx: &Context<'_>) -> Begin {
        let run = Running::of;
        let specs = match ctx.store.map(|s| crate::provisions::expand(s, &task.device, provisions, ctx.now)) {
            Some(Ok(specs)) => specs,
            Some(Err(e)) => {
                let fault = cwmp::Fault {
                    string: format!("the ACS could not read the device's cache: {e}"),
                    ..cwmp::Fault::new(FaultCode::InternalError)
                };
                return Begin::Now(run(task, None), Step::Fault(fault));
            }
            None => Vec::new(),
        };
        let mut steps: VecDeque<(Running, Body)> = VecDeque::new();
        for spec in specs {
            let part = Task { order: spec.into(), ..task.clone() };
            match Running::start(part, ctx) {
                Begin::Send(r, body) => steps.push_back((r, body)),
                // Parts are never `provisions` tasks themselves.
                Begin::Now(..) => {}
            }
        }
        let Some((current, body)) = steps.pop_front() else {
            return Begin::Now(run(task, None), Step::Done(json!({"provisions": []})));
        };
        let plan = Plan { current, rest: steps, results: Vec::new(), awaiting: false, scripts: None, files: None };
        Begin::Send(run(task, Some(Box::new(plan))), body)
    }

    /// Handles the CPE's answer to the last request; records cache updates in `store`.
    pub fn on_response(&mut self, resp: Body, store: &dyn Store, now: i64) -> Step {
        if let Some(plan) = self.plan.as_mut() {
            let step = plan.current.on_response(resp, store, now);
            return plan.advance(step, &self.task, store, now);
        }
        let device = self.task.device.clone();
        self.stage += 1;
        let spec = &self.task.order.spec;
        match resp {
            Body::Fault(f) => Step::Fault(f),
            Body::GetParameterNamesResponse(r) => {
                if let Some(walk) = self.walk.as_mut() {
                    let info = walk.listed(&device, r.parameter_list, now);
                    crate::store::logged(store.cache_path_info(&device, &info), "caching what GetParameterNames told");
                    return match walk.next() {
                        Some(body) => Step::Next(body),
                        None => Step::Done(self.walk.take().map_or(Json::Null, |w| w.finish(&device, store))),
                    };
                }
                let TaskSpec::GetParameterNames { parameter_path, next_level } = spec else {
                    return unexpected("GetParameterNamesResponse", spec);
                };
                // What the answer tells, as GenieACS keeps it: each name's writability; an object
                // whose children were listed (the path itself, and with `nextLevel` false every
                // object below it), when. Names not below the path are passed over, as GenieACS does.
                let mut info: Vec<crate::store::PathInfo> = Vec::with_capacity(r.parameter_list.len() + 1);
                if parameter_path.ends_with('.') {
                    info.push(crate::store::PathInfo {
                        name: parameter_path.clone(),
                        listed: Some(now),
                        ..Default::default()
                    });
                }
                for p in r.parameter_list.iter().filter(|p| p.name.starts_with(parameter_path.as_str())) {
                    let whole = !next_level && p.name.ends_with('.');
                    info.push(crate::store::PathInfo {
                        name: p.name.clone(),
                        writable: Some(p.writable),
                        listed: whole.then_some(now),
                        ..Default::default()
                    });
                }
                crate::store::logged(store.cache_path_info(&device, &info), "caching what GetParameterNames told");
                if !next_level && (parameter_path.is_empty() || parameter_path.ends_with('.')) {
                    // The whole subtree is listed: what the cache holds below it and the CPE
                    // no longer lists is gone (GenieACS clears it the same way).
                    let listed: std::collections::HashSet<&str> =
                        r.parameter_list.iter().map(|p| p.name.as_str()).collect();
                    // The whole tree: below the data model's roots only (`Events.` is the ACS's).
                    let scope: Vec<&str> = if parameter_path.is_empty() {
                        listed.iter().copied().filter(|n| n.find('.') == Some(n.len() - 1)).collect()
                    } else {
                        vec![parameter_path.as_str()]
                    };
                    // Values and what GetParameterNames / GetParameterAttributes told alike.
                    if let Ok(cached) = store.cached_names(&device) {
                        let stale: Vec<String> = cached
                            .into_iter()
                            .filter(|c| {
                                c != parameter_path
                                    && scope.iter().any(|s| c.starts_with(s))
                                    && !listed.contains(c.as_str())
                            })
                            .collect();
                        if !stale.is_empty() {
                            crate::store::logged(store.forget_param_names(&device, &stale), "forgetting parameters");
                        }
                    }
                }
                let list: Vec<Json> =
                    r.parameter_list.iter().map(|p| json!([p.name, p.name.ends_with('.'), p.writable])).collect();
                Step::Done(json!({"parameters": list}))
            }
            Body::GetParameterValuesResponse(r) => {
                let cached: Vec<CachedParam> =
                    r.parameter_list.iter().map(|p| CachedParam::from_value(p, now)).collect();
                if let Err(e) = store.cache_params(&device, &cached) {
                    tracing::error!(%device, "caching parameters: {e}");
                }
                if let Some(walk) = self.walk.as_mut() {
                    walk.values.extend(cached);
                    return match walk.next() {
                        Some(body) => Step::Next(body),
                        None => Step::Done(self.walk.take().map_or(Json::Null, |w| w.finish(&device, store))),
                    };
                }
                // Built as a map directly: `json!` would serialize (deep-copy) the list again.
                let mut result = serde_json::Map::new();
                match spec {
                    TaskSpec::AddObject { .. } => drop(result.insert("instance".into(), json!(self.instance))),
                    TaskSpec::SetParameterValues { .. } => drop(result.insert("status".into(), json!(0))),
                    _ => {}
                }
                result.insert("parameters".into(), value_triples(cached));
                Step::Done(Json::Object(result))
            }
            Body::GetParameterAttributesResponse(r) => {
                // Cached as GenieACS keeps them (`_notification`, `_accessList`, read at `now`);
                // also the read-back after a setParameterAttributes.
                let info: Vec<crate::store::PathInfo> = r
                    .parameter_list
                    .iter()
                    .map(|p| crate::store::PathInfo {
                        name: p.name.clone(),
                        notification: Some(p.notification.code()),
                        access_list: Some(p.access_list.clone()),
                        attributes_read: Some(now),
                        ..Default::default()
                    })
                    .collect();
                crate::store::logged(store.cache_path_info(&device, &info), "caching attributes");
                let list: Vec<Json> =
                    r.parameter_list.iter().map(|p| json!([p.name, p.notification.code(), p.access_list])).collect();
                let mut result = serde_json::Map::new();
                if matches!(spec, TaskSpec::SetParameterAttributes { .. }) {
                    result.insert("status".into(), json!(0));
                }
                result.insert("parameters".into(), Json::Array(list));
                Step::Done(Json::Object(result))
            }
            Body::SetParameterAttributesResponse(_) => {
                let TaskSpec::SetParameterAttributes { parameter_list } = spec else {
                    return unexpected("SetParameterAttributesResponse", spec);
                };
                // Read back what was set, as setParameterValues does.
                let mut names: Vec<String> = Vec::new();
                for p in parameter_list {
                    if !names.contains(&p.name) {
                        names.push(p.name.clone());
                    }
                }
                Step::Next(Body::GetParameterAttributes(GetParameterAttributes { parameter_names: names }))
            }
            Body::SetParameterValuesResponse(_) => match spec {
                TaskSpec::AddObject { object_name, .. } => {
                    let path = format!("{}{}.", dotted(object_name), self.instance.unwrap_or(0));
                    Step::Next(Body::GetParameterValues(GetParameterValues { parameter_names: vec![path] }))
                }
                // Refresh what was set, passwords aside: a CPE reads them back empty (TR-069
                // A.3.2.1 and the data models), and one that does not would put them in the
                // cache the NBI shows.
                TaskSpec::SetParameterValues { parameter_values } if self.trust_sets => {
                    let cached: Vec<CachedParam> = parameter_values
                        .iter()
                        .filter(|p| !secret_name(&p.name))
                        .map(|p| CachedParam::from_value(p, now))
                        .collect();
                    crate::store::logged(store.cache_params(&device, &cached), "caching the values set");
                    Step::Done(json!({"status": 0, "parameters": value_triples(cached)}))
                }
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
            Body::UploadResponse(r) if r.status == 0 => {
                Step::Done(json!({"status": 0, "file": upload_name(&self.task)}))
            }
            Body::UploadResponse(_) | Body::ScheduleDownloadResponse(_) | Body::ChangeDUStateResponse(_) => {
                Step::AwaitTransfer
            }
            Body::ScheduleInformResponse(_) | Body::SetVouchersResponse(_) => Step::Done(json!({"status": 0})),
            // The key tells the session which transfer task will not complete.
            Body::CancelTransferResponse(_) => Step::Done(json!({"status": 0, "commandKey": self.cancel_key})),
            Body::GetQueuedTransfersResponse(r) => {
                let list: Vec<Json> =
                    r.transfer_list.iter().map(|t| json!({"commandKey": t.command_key, "state": t.state})).collect();
                Step::Done(json!({"transfers": list}))
            }
            Body::GetAllQueuedTransfersResponse(r) => {
                let list: Vec<Json> = r
                    .transfer_list
                    .iter()
                    .map(|t| {
                        json!({"commandKey": t.command_key, "state": t.state, "isDownload": t.is_download,
                               "fileType": t.file_type, "fileSize": t.file_size, "targetFileName": t.target_file_name})
                    })
                    .collect();
                Step::Done(json!({"transfers": list}))
            }
            Body::GetOptionsResponse(r) => {
                let list: Vec<Json> = r
                    .option_list
                    .iter()
                    .map(|o| {
                        let mut m = json!({"optionName": o.option_name, "voucherSN": o.voucher_sn, "state": o.state,
                            "mode": o.mode, "startDate": o.start_date.as_str(), "isTransferable": o.is_transferable});
                        if let (Some(e), Json::Object(m)) = (&o.expiration_date, &mut m) {
                            m.insert("expirationDate".into(), json!(e.as_str()));
                        }
                        m
                    })
                    .collect();
                Step::Done(json!({"options": list}))
            }
            other => unexpected(other.method_name(), spec),
        }
    }
}

/// The size of a stored file, as GenieACS gives it in a Download's FileSize (0: not known).
fn file_size(store: Option<&dyn Store>, name: &str) -> u32 {
    let Some(files) = store.and_then(|s| crate::store::logged(s.files(), "the files (a download's FileSize)")) else {
        return 0;
    };
    files.iter().find(|f| f.name == name).map_or(0, |f| u32::try_from(f.length).unwrap_or(0))
}

/// The CommandKey the transfer task `id` of `device` was sent under (none: not found, not the
/// device's, or not sent).
fn transfer_key(store: Option<&dyn Store>, device: &str, id: &str) -> Option<String> {
    let id: i64 = id.parse().ok()?;
    let task = crate::store::logged(store?.task(id), "the task a cancelTransfer names")??;
    (task.device == device && !task.key.is_empty()).then_some(task.key)
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
    /// A provision or virtual-parameter script failed (GenieACS's `script.<ErrorName>`,
    /// `script.timeout`, `script.memory`, `ext`...).
    Script {
        /// The code.
        code: String,
        /// The message, naming the script and its line.
        message: String,
        /// The script's stack.
        detail: String,
    },
}

impl Failure {
    /// The recorded code: `cwmp.<fault code>` for what the CPE reported, `task.invalid` for a
    /// task the ACS cannot run.
    pub fn code(&self) -> String {
        match self {
            Failure::Cpe(f) => format!("cwmp.{}", f.code.code()),
            Failure::Transfer(t) => format!("cwmp.{}", t.code),
            Failure::Invalid(_) => "task.invalid".into(),
            Failure::Script { code, .. } => code.clone(),
        }
    }

    /// The recorded message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Cpe(f) => &f.string,
            Failure::Transfer(t) => &t.string,
            Failure::Invalid(why) => why,
            Failure::Script { message, .. } => message,
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
            Failure::Script { detail, .. } => detail.clone(),
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
/// again: Pending), or still open (Sent): a transfer whose TransferComplete comes in this
/// session, or one the device accepted (its interim `result`) and has not carried out yet, as a
/// scheduled download waiting for its window; a 0 BOOTSTRAP (the device reset, its transfer
/// queue gone) sends it again.
pub fn reconcile(task: &Task, parameter_key: Option<&str>, events: &[cwmp::Event]) -> TaskStatus {
    let reported = |code: &str| events.iter().any(|e| e.code == code && e.command_key == task.key);
    let applied = match &task.order.spec {
        // The TransferComplete (DUStateChangeComplete) that comes with "M Download" ("M
        // Upload", ...) decides, and carries the outcome.
        TaskSpec::Download { .. }
        | TaskSpec::Upload { .. }
        | TaskSpec::ScheduleDownload { .. }
        | TaskSpec::ChangeDuState { .. } => {
            let code = match &task.order.spec {
                TaskSpec::Upload { .. } => "M Upload",
                TaskSpec::ScheduleDownload { .. } => "M ScheduleDownload",
                TaskSpec::ChangeDuState { .. } => "M ChangeDUState",
                _ => "M Download",
            };
            let accepted = task.result.is_some() && !events.iter().any(|e| e.code == cwmp::event::BOOTSTRAP);
            return if reported(code) || accepted { TaskStatus::Sent } else { TaskStatus::Pending };
        }
        // A provisions task whose download the device accepted waits for its TransferComplete
        // as a download task does.
        TaskSpec::Provisions { .. } if task.result.is_some() => {
            let bootstrap = events.iter().any(|e| e.code == cwmp::event::BOOTSTRAP);
            return if reported("M Download") || !bootstrap { TaskStatus::Sent } else { TaskStatus::Pending };
        }
        TaskSpec::ScheduleInform { .. } => reported("M ScheduleInform"),
        TaskSpec::SetParameterValues { .. } | TaskSpec::AddObject { .. } | TaskSpec::DeleteObject { .. } => {
            parameter_key == Some(task.key.as_str())
        }
        TaskSpec::Reboot => events.iter().any(|e| e.code == "M Reboot" && e.command_key == task.key),
        TaskSpec::FactoryReset => events.iter().any(|e| e.code == "0 BOOTSTRAP"),
        // Reads, and writes that do the same again: sent again.
        TaskSpec::GetParameterValues { .. }
        | TaskSpec::RefreshObject { .. }
        | TaskSpec::GetParameterNames { .. }
        | TaskSpec::GetParameterAttributes { .. }
        | TaskSpec::SetParameterAttributes { .. }
        | TaskSpec::CancelTransfer { .. }
        | TaskSpec::GetQueuedTransfers
        | TaskSpec::GetAllQueuedTransfers
        | TaskSpec::GetOptions { .. }
        | TaskSpec::SetVouchers { .. }
        // Provisions are planned again from the cache: what was applied is not sent again.
        | TaskSpec::Provisions { .. } => false,
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

    /// The first request a task sends.
    fn first(b: Begin) -> Body {
        match b {
            Begin::Send(_, body) => body,
            Begin::Now(_, step) => panic!("nothing sent: {step:?}"),
        }
    }

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
            json!({"name": "getParameterNames", "parameterPath": "", "nextLevel": true}),
            json!({"name": "getParameterAttributes", "parameterNames": ["Device.A"]}),
            json!({"name": "setParameterAttributes", "parameterList": [["Device.A", 2, null], ["Device.B", null, ["Subscriber"]]]}),
            json!({"name": "upload", "fileType": "2 Vendor Log File", "fileName": "log.txt", "delaySeconds": 5}),
            json!({"name": "scheduleInform", "delaySeconds": 60}),
            json!({"name": "scheduleDownload", "fileType": "1 Firmware Upgrade Image", "fileName": "fw.bin",
                   "timeWindows": [{"windowStart": 0, "windowEnd": 60, "windowMode": "1 At Any Time", "maxRetries": -1}]}),
            json!({"name": "scheduleDownload", "file": "fw.bin", "fileType": "1 Firmware Upgrade Image", "fileName": "fw.bin",
                   "timeWindows": [{"windowStart": 0, "windowEnd": 60, "windowMode": "1 At Any Time", "maxRetries": -1}]}),
            json!({"name": "cancelTransfer", "task": "12"}),
            json!({"name": "cancelTransfer", "commandKey": "k"}),
            json!({"name": "changeDUState", "operations": [{"type": "install", "url": "http://x/du"}, {"type": "uninstall", "uuid": "u"}]}),
            json!({"name": "getQueuedTransfers"}),
            json!({"name": "getAllQueuedTransfers"}),
            json!({"name": "getOptions", "optionName": ""}),
            json!({"name": "setVouchers", "voucherList": ["dm91Y2hlcg=="]}),
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
    fn expiry_reads_as_genieacs_reads_it() {
        let at = 1_700_000_000_000; // the task's timestamp, in milliseconds
        let expiry = |v: Json| Terms::from_nbi(&json!({"name": "reboot", "expiry": v}), at).map(|t| t.expiry);
        assert_eq!(expiry(json!(60)), Ok(Some(at + 60_000)), "seconds after the timestamp");
        assert_eq!(expiry(json!(1.5)), Ok(Some(at + 1_500)));
        assert_eq!(expiry(json!(" 30 ")), Ok(Some(at + 30_000)), "numeric text is seconds too");
        assert_eq!(expiry(json!(-5)), Ok(Some(at - 5_000)), "already expired");
        assert_eq!(expiry(json!("2023-11-14T22:13:20.250Z")), Ok(Some(at + 250)), "other text is a date");
        assert_eq!(expiry(json!("Tue, 14 Nov 2023 22:13:20 GMT")), Ok(Some(at)));
        for none in [json!(null), json!(0), json!(""), json!(false)] {
            assert_eq!(expiry(none.clone()), Ok(None), "{none}: none, as GenieACS skips a falsy expiry");
        }
        for bad in [json!("soon"), json!(true), json!([1]), json!({}), json!(1e300), json!("9999999999999")] {
            let e = expiry(bad.clone()).expect_err("refused");
            assert!(e.0.starts_with("expiry"), "{bad}: {e}");
        }
        let terms = Terms::from_nbi(&json!({"expiry": 60, "uniqueKey": "k"}), at).expect("valid");
        assert!(!terms.expired(at + 59_999) && terms.expired(at + 60_000));
        // Stored beside the task's fields, read back the same.
        let mut stored = Order::from(TaskSpec::Reboot).to_json();
        terms.add_to(&mut stored);
        assert_eq!(stored, json!({"name": "reboot", "expiry": "2023-11-14T22:14:20.000Z", "uniqueKey": "k"}));
        assert_eq!(Terms::from_stored(&stored), terms);
        assert_eq!(Order::from_json(&stored).map(|o| o.spec), Ok(TaskSpec::Reboot));
        let e = Terms::from_nbi(&json!({"uniqueKey": ["k"]}), at).expect_err("a list");
        assert_eq!(e.0, "uniqueKey is a string of at most 1024 bytes");
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
        let ctx = Context { files: &files, now: 100, store: None, scripts: None };
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
            terms: Terms::default(),
        };
        let body = first(Running::start(task(TaskSpec::RefreshObject { object_name: "Device.WiFi".into() }), &ctx));
        let gpn =
            |path: &str| Body::GetParameterNames(GetParameterNames { parameter_path: path.into(), next_level: true });
        assert_eq!(body, gpn("Device.WiFi."), "a refresh walks the tree");
        assert_eq!(first(Running::start(task(TaskSpec::RefreshObject { object_name: String::new() }), &ctx)), gpn(""));
        let dl = TaskSpec::Download {
            file: None,
            file_type: "1 Firmware Upgrade Image".into(),
            file_name: "fw.bin".into(),
            target_file_name: None,
        };
        let Body::Download(d) = first(Running::start(task(dl.clone()), &ctx)) else { panic!("a Download") };
        assert_eq!(d.command_key, "task-1-1");
        let (path, query) = d.url.split_once('?').expect("a signed URL");
        assert_eq!(path, "http://acs/files/fw.bin");
        assert_eq!(files.check("fw.bin", Some(query), 100), Ok("d".to_string()), "signed for the task's device");
        let reboot = task(TaskSpec::Reboot);
        let ev = |code: &str, key: &str| cwmp::Event { code: code.into(), command_key: key.into() };
        assert_eq!(reconcile(&reboot, None, &[ev("M Reboot", "task-1-1")]), TaskStatus::Done);
        assert_eq!(reconcile(&reboot, None, &[ev("1 BOOT", "")]), TaskStatus::Pending);
        assert_eq!(reconcile(&task(dl.clone()), None, &[ev("M Download", "task-1-1")]), TaskStatus::Sent);
        // Sent but never answered: sent again. Accepted (status 1): left until its report,
        // unless the device was reset.
        assert_eq!(reconcile(&task(dl.clone()), None, &[ev("2 PERIODIC", "")]), TaskStatus::Pending);
        let accepted = Task { result: Some(json!({"status": 1})), ..task(dl) };
        assert_eq!(reconcile(&accepted, None, &[ev("2 PERIODIC", "")]), TaskStatus::Sent);
        assert_eq!(reconcile(&accepted, None, &[ev("0 BOOTSTRAP", "")]), TaskStatus::Pending);
        let set = task(TaskSpec::set(vec![ParameterValue::new("Device.A", Value::String("x".into()))]));
        assert_eq!(reconcile(&set, Some("task-1-1"), &[]), TaskStatus::Done);
        assert_eq!(reconcile(&set, Some("task-0-1"), &[]), TaskStatus::Pending);
    }
}
