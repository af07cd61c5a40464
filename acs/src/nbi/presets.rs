//! `GET /presets` (GenieACS's `query`, `projection`, `sort`, `skip`, `limit`), `GET`, `PUT` and
//! `DELETE /presets/{name}`, in GenieACS's preset shape (see `crate::presets`).

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{done, json_response, parse_json, Nbi, NbiError, Reply};

/// The largest preset body taken.
pub const MAX_PRESET_BYTES: usize = 1 << 20;

/// A name of a preset or an object: 1 to 128 bytes, no `/`, no control characters.
pub(crate) fn name(name: &str, what: &'static str) -> Result<String, NbiError> {
    if name.is_empty() || name.len() > 128 || name.contains('/') || name.chars().any(char::is_control) {
        return Err(NbiError::Bad(format!("invalid {what} name: 1 to 128 bytes, no '/', no control characters")));
    }
    Ok(name.to_string())
}

/// A document as GenieACS lists it: its fields and `_id`, the name.
pub(crate) fn with_id(name: String, mut doc: Json) -> Json {
    if let Json::Object(m) = &mut doc {
        m.insert("_id".into(), json!(name));
    }
    doc
}

/// Every preset with its `_id`, or those the parameters select.
pub(crate) fn list(nbi: &Nbi, params: &HashMap<String, String>) -> Result<Reply, NbiError> {
    let docs = nbi.acs.store.presets()?.into_iter().map(|(n, p)| with_id(n, p)).collect();
    super::tasks::collection::answer(params, docs)
}

/// One preset (beyond GenieACS, which lists them only).
pub(crate) fn get(nbi: &Nbi, name: &str) -> Result<Reply, NbiError> {
    match nbi.acs.store.presets()?.into_iter().find(|(n, _)| n == name) {
        Some((n, p)) => Ok(json_response(StatusCode::OK, &with_id(n, p))),
        None => Err(NbiError::NotFound(format!("no preset {name}"))),
    }
}

/// `PUT /presets/{name}`: the name and the preset, checked.
pub(crate) struct Put {
    name: String,
    preset: Json,
}

impl Put {
    /// From the path's name and the body (a JSON object; its `_id` is the name's).
    pub fn parse(name: &str, body: &[u8]) -> Result<Put, NbiError> {
        let name = self::name(name, "preset")?;
        if body.len() > MAX_PRESET_BYTES {
            return Err(NbiError::Bad(format!("a preset is at most {MAX_PRESET_BYTES} bytes")));
        }
        let mut preset: Json = parse_json("the preset", body)?;
        crate::presets::validate(&preset)?;
        if let Json::Object(m) = &mut preset {
            m.remove("_id");
        }
        Ok(Put { name, preset })
    }
}

/// Stores a preset. A provision it names need not exist (GenieACS stores it anyway): it is
/// named in the log, and does nothing until stored and run.
pub(crate) fn put(nbi: &Nbi, p: Put) -> Result<Reply, NbiError> {
    if let Ok(typed) = crate::presets::Preset::from_json(&p.preset) {
        let stored = nbi.acs.store.scripts(crate::store::ScriptKind::Provision)?;
        for prov in typed.provisions() {
            if !stored.iter().any(|(n, _)| n == prov) && !crate::presets::BUILT_IN_PROVISIONS.contains(&prov) {
                tracing::warn!(preset = %p.name, provision = %prov, "the preset names a provision not stored (yet)");
            }
        }
    }
    nbi.acs.store.put_preset(&p.name, &p.preset)?;
    nbi.acs.presets_changed();
    Ok(done())
}

/// Deletes a preset: 200 whether or not it existed, as GenieACS answers.
pub(crate) fn delete(nbi: &Nbi, name: &str) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_preset(name)? {
        nbi.acs.presets_changed();
    }
    Ok(done())
}
