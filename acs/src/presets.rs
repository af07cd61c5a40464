//! Provisioning profiles (GenieACS "presets"): on the Inform events they name (by default
//! "0 BOOTSTRAP"), devices matching the precondition get parameter values (as a task) and tags.
//!
//! ```json
//! {"precondition": {"_deviceId._ProductClass": "SimCPE"}, "events": {"0 BOOTSTRAP": true},
//!  "configurations": [{"type": "value", "name": "Device.DeviceInfo.ProvisioningCode", "value": "lab"},
//!                     {"type": "add_tag", "tag": "provisioned"},
//!                     {"type": "refresh", "names": ["Device.DeviceInfo.UpTime"]}]}
//! ```

use std::collections::BTreeMap;

use cwmp::ParameterValue;
use serde_json::{json, Value as Json};

use crate::query;
use crate::store::{Store, StoreError};
use crate::tasks::TaskSpec;

/// A preset that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPreset(pub String);

/// A preset, typed from its JSON (which the store keeps as the NBI received it).
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Which devices it applies to (a query; `{}`: all).
    pub precondition: Json,
    /// The Inform events it applies on (absent: `0 BOOTSTRAP`).
    pub events: Option<BTreeMap<String, bool>>,
    /// What it does.
    pub configurations: Vec<Configuration>,
}

/// One thing a preset does.
#[derive(Debug, Clone, PartialEq)]
pub enum Configuration {
    /// Set a value (`{"type": "value", "name", "value", "valueType"?}`).
    Value(ParameterValue),
    /// Read values (`{"type": "refresh", "names": [...]}`).
    Refresh(Vec<String>),
    /// Add a tag (`{"type": "add_tag", "tag"}`).
    AddTag(String),
    /// Remove a tag (`{"type": "delete_tag", "tag"}`).
    DeleteTag(String),
}

fn precondition(p: &Json) -> Result<Json, BadPreset> {
    match p.get("precondition") {
        None => Ok(json!({})),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(json!({})),
        Some(Json::String(s)) => {
            serde_json::from_str(s).map_err(|e| BadPreset(format!("precondition is not JSON: {e}")))
        }
        Some(o @ Json::Object(_)) => Ok(o.clone()),
        Some(_) => Err(BadPreset("precondition is a query object".into())),
    }
}

fn configuration(c: &Json) -> Result<Configuration, BadPreset> {
    match c.get("type").and_then(Json::as_str) {
        Some("value") => {
            let (Some(name), Some(value)) = (c.get("name").and_then(Json::as_str), c.get("value")) else {
                return Err(BadPreset("a value configuration needs name and value".into()));
            };
            let mut triple = vec![json!(name), value.clone()];
            if let Some(t) = c.get("valueType") {
                triple.push(t.clone());
            }
            let v = crate::tasks::triple(&Json::Array(triple)).map_err(|e| BadPreset(e.0))?;
            Ok(Configuration::Value(v))
        }
        Some("refresh") => match c.get("names").and_then(Json::as_array) {
            Some(a) if !a.is_empty() && a.iter().all(Json::is_string) => {
                Ok(Configuration::Refresh(a.iter().filter_map(Json::as_str).map(str::to_string).collect()))
            }
            _ => Err(BadPreset("a refresh configuration needs names (parameter paths)".into())),
        },
        Some(t @ ("add_tag" | "delete_tag")) => {
            let Some(tag) = c.get("tag").and_then(Json::as_str).map(str::to_string) else {
                return Err(BadPreset("a tag configuration needs tag".into()));
            };
            Ok(if t == "add_tag" { Configuration::AddTag(tag) } else { Configuration::DeleteTag(tag) })
        }
        other => Err(BadPreset(format!("unknown configuration type {other:?}"))),
    }
}

impl Preset {
    /// A preset as the NBI receives it (and the store keeps it); the error says what is wrong.
    pub fn from_json(p: &Json) -> Result<Preset, BadPreset> {
        let pre = precondition(p)?;
        let probe = crate::store::Device::default();
        query::matches(&probe, &[], &pre).map_err(|e| BadPreset(format!("precondition: {e}")))?;
        let events = match p.get("events") {
            None => None,
            Some(ev) => Some(
                ev.as_object()
                    .and_then(|m| m.iter().map(|(k, v)| Some((k.clone(), v.as_bool()?))).collect::<Option<_>>())
                    .ok_or_else(|| BadPreset("events maps event codes to true or false".into()))?,
            ),
        };
        let confs = p
            .get("configurations")
            .and_then(Json::as_array)
            .ok_or_else(|| BadPreset("configurations must be an array".into()))?;
        let configurations = confs.iter().map(configuration).collect::<Result<_, _>>()?;
        Ok(Preset { precondition: pre, events, configurations })
    }

    /// Whether it applies on an Inform with these events.
    fn wanted(&self, events: &[cwmp::Event]) -> bool {
        match &self.events {
            None => events.iter().any(|e| e.code == "0 BOOTSTRAP"),
            Some(m) => events.iter().any(|e| m.get(&e.code) == Some(&true)),
        }
    }

    /// Whether applying it needs the device's record: a precondition, or a tag change.
    fn needs_device(&self) -> bool {
        self.precondition.as_object().is_none_or(|m| !m.is_empty())
            || self.configurations.iter().any(|c| matches!(c, Configuration::AddTag(_) | Configuration::DeleteTag(_)))
    }
}

/// Checks a preset as the NBI receives it.
pub fn validate(p: &Json) -> Result<(), BadPreset> {
    Preset::from_json(p).map(|_| ())
}

/// Whether a query names a parameter path (rather than only `_id`, `_tags`, ...).
fn mentions_parameters(q: &Json) -> bool {
    match q {
        Json::Object(m) => {
            m.iter().any(|(k, v)| if k.starts_with('$') { mentions_parameters(v) } else { !k.starts_with('_') })
        }
        Json::Array(a) => a.iter().any(mentions_parameters),
        _ => false,
    }
}

/// Applies the presets that match this Inform: tags now, and the requests to run in this session
/// (returned with the preset's name). Presets are derived again at every matching Inform, so
/// their requests are not queued durably; a session cut short simply leaves them to the next.
pub fn apply(
    store: &dyn Store,
    presets: &[(String, Preset)],
    device: &str,
    events: &[cwmp::Event],
) -> Result<Vec<(String, TaskSpec)>, StoreError> {
    let mut queued = Vec::new();
    if !presets.iter().any(|(_, p)| p.wanted(events)) {
        return Ok(queued);
    }
    // The device's record is read only when a precondition or a tag change needs it.
    let mut dev = if presets.iter().any(|(_, p)| p.wanted(events) && p.needs_device()) {
        let Some(dev) = store.device(device)? else { return Ok(queued) };
        dev
    } else {
        crate::store::Device { id: device.to_string(), ..Default::default() }
    };
    // Parameters are read only when a precondition looks at them.
    let params = if presets.iter().any(|(_, p)| mentions_parameters(&p.precondition)) {
        store.params(device)?
    } else {
        Vec::new()
    };
    for (name, p) in presets {
        if !p.wanted(events) {
            continue;
        }
        match query::matches(&dev, &params, &p.precondition) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                // Checked when the preset was stored; only a query the device's values make
                // unanswerable gets here.
                tracing::warn!(device, preset = %name, "precondition not evaluated: {e}");
                continue;
            }
        }
        let mut values = Vec::new();
        let mut refresh = Vec::new();
        let mut tags = dev.tags.clone();
        for c in &p.configurations {
            match c {
                Configuration::Value(v) => values.push(v.clone()),
                Configuration::Refresh(names) => refresh.extend(names.iter().cloned()),
                Configuration::AddTag(t) => {
                    if !tags.iter().any(|x| x == t) {
                        tags.push(t.clone());
                    }
                }
                Configuration::DeleteTag(t) => tags.retain(|x| x != t),
            }
        }
        if tags != dev.tags {
            store.set_tags(device, &tags)?;
            dev.tags = tags;
        }
        if !values.is_empty() {
            tracing::info!(device, preset = %name, "preset applies values");
            queued.push((name.clone(), TaskSpec::set(values)));
        }
        if !refresh.is_empty() {
            queued.push((name.clone(), TaskSpec::get(refresh)));
        }
    }
    Ok(queued)
}
