//! Provisioning profiles (GenieACS "presets"): on the Inform events they name (by default
//! "0 BOOTSTRAP"), devices matching the precondition get parameter values (as a task) and tags.
//!
//! ```json
//! {"precondition": {"_deviceId._ProductClass": "SimCPE"}, "events": {"0 BOOTSTRAP": true},
//!  "configurations": [{"type": "value", "name": "Device.DeviceInfo.ProvisioningCode", "value": "lab"},
//!                     {"type": "add_tag", "tag": "provisioned"},
//!                     {"type": "refresh", "names": ["Device.DeviceInfo.UpTime"]}]}
//! ```

use serde_json::{json, Value as Json};

use crate::query;
use crate::store::{Store, StoreError};

/// A preset that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPreset(pub String);

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

/// Checks a preset as the NBI receives it.
pub fn validate(p: &Json) -> Result<(), BadPreset> {
    let pre = precondition(p)?;
    let probe = crate::store::Device {
        id: String::new(),
        manufacturer: String::new(),
        oui: String::new(),
        product_class: String::new(),
        serial_number: String::new(),
        cr_url: String::new(),
        cr_username: String::new(),
        cr_password: String::new(),
        last_inform: 0,
        tags: vec![],
    };
    query::matches(&probe, &[], &pre).map_err(|e| BadPreset(format!("precondition: {e}")))?;
    if let Some(ev) = p.get("events") {
        if !ev.as_object().is_some_and(|m| m.values().all(Json::is_boolean)) {
            return Err(BadPreset("events maps event codes to true or false".into()));
        }
    }
    let confs = p
        .get("configurations")
        .and_then(Json::as_array)
        .ok_or_else(|| BadPreset("configurations must be an array".into()))?;
    for c in confs {
        match c.get("type").and_then(Json::as_str) {
            Some("value") => {
                if c.get("name").and_then(Json::as_str).is_none() || c.get("value").is_none() {
                    return Err(BadPreset("a value configuration needs name and value".into()));
                }
            }
            Some("refresh") => {
                if !c
                    .get("names")
                    .and_then(Json::as_array)
                    .is_some_and(|a| !a.is_empty() && a.iter().all(Json::is_string))
                {
                    return Err(BadPreset("a refresh configuration needs names (parameter paths)".into()));
                }
            }
            Some("add_tag" | "delete_tag") => {
                if c.get("tag").and_then(Json::as_str).is_none() {
                    return Err(BadPreset("a tag configuration needs tag".into()));
                }
            }
            other => return Err(BadPreset(format!("unknown configuration type {other:?}"))),
        }
    }
    Ok(())
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
/// (returned as task specifications). Presets are derived again at every matching Inform, so
/// their requests are not queued durably; a session cut short simply leaves them to the next.
pub fn apply(
    store: &dyn Store,
    presets: &[(String, Json)],
    device: &str,
    events: &[cwmp::Event],
) -> Result<Vec<Json>, StoreError> {
    let mut queued = Vec::new();
    let wanted_here = |p: &Json| {
        let default = p.get("events").is_none() && events.iter().any(|e| e.code == "0 BOOTSTRAP");
        default
            || p.get("events")
                .and_then(Json::as_object)
                .is_some_and(|m| events.iter().any(|e| m.get(&e.code).and_then(Json::as_bool) == Some(true)))
    };
    if !presets.iter().any(|(_, p)| wanted_here(p)) {
        return Ok(queued);
    }
    // The device's record is read only when a precondition or a tag change needs it.
    let needs_device = |p: &Json| {
        wanted_here(p)
            && (precondition(p).map_or(true, |q| q.as_object().is_none_or(|m| !m.is_empty()))
                || p.get("configurations").and_then(Json::as_array).is_some_and(|cs| {
                    cs.iter().any(|c| matches!(c.get("type").and_then(Json::as_str), Some("add_tag" | "delete_tag")))
                }))
    };
    let mut dev = if presets.iter().any(|(_, p)| needs_device(p)) {
        let Some(dev) = store.device(device)? else { return Ok(queued) };
        dev
    } else {
        crate::store::Device { id: device.to_string(), ..Default::default() }
    };
    // Parameters are read only when a precondition looks at them.
    let params = if presets.iter().any(|(_, p)| precondition(p).is_ok_and(|q| mentions_parameters(&q))) {
        store.params(device)?
    } else {
        Vec::new()
    };
    for (name, p) in presets {
        let wanted = p.get("events").and_then(Json::as_object).cloned().unwrap_or_else(|| {
            let mut m = serde_json::Map::new();
            m.insert("0 BOOTSTRAP".into(), Json::Bool(true));
            m
        });
        if !events.iter().any(|e| wanted.get(&e.code).and_then(Json::as_bool) == Some(true)) {
            continue;
        }
        let Ok(pre) = precondition(p) else { continue };
        if !query::matches(&dev, &params, &pre).unwrap_or(false) {
            continue;
        }
        let confs = p.get("configurations").and_then(Json::as_array).cloned().unwrap_or_default();
        let mut values = Vec::new();
        let mut refresh: Vec<Json> = Vec::new();
        let mut tags = dev.tags.clone();
        for c in confs {
            match c.get("type").and_then(Json::as_str) {
                Some("value") => {
                    let mut v = vec![c["name"].clone(), c["value"].clone()];
                    if let Some(t) = c.get("valueType") {
                        v.push(t.clone());
                    }
                    values.push(Json::Array(v));
                }
                Some("refresh") => refresh.extend(c["names"].as_array().cloned().unwrap_or_default()),
                Some("add_tag") => {
                    if let Some(t) = c["tag"].as_str() {
                        if !tags.iter().any(|x| x == t) {
                            tags.push(t.to_string());
                        }
                    }
                }
                Some("delete_tag") => tags.retain(|x| Some(x.as_str()) != c["tag"].as_str()),
                _ => {}
            }
        }
        if tags != dev.tags {
            store.set_tags(device, &tags)?;
            dev.tags = tags;
        }
        if !values.is_empty() {
            tracing::info!(device, preset = %name, "preset applies values");
            queued.push(json!({"name": "setParameterValues", "parameterValues": values, "preset": name}));
        }
        if !refresh.is_empty() {
            queued.push(json!({"name": "getParameterValues", "parameterNames": refresh, "preset": name}));
        }
    }
    Ok(queued)
}
