//! `GET /presets`, `PUT /presets/{name}` and `DELETE /presets/{name}`.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{done, json_response, parse_json, Nbi, NbiError, Reply};

/// Every preset with its `_id`.
pub(crate) fn list(nbi: &Nbi) -> Result<Reply, NbiError> {
    let ps = nbi.acs.store.presets()?;
    let out = ps
        .into_iter()
        .map(|(n, mut p)| {
            if let Json::Object(m) = &mut p {
                m.insert("_id".into(), json!(n));
            }
            p
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Json::Array(out)))
}

/// A preset from a request body, checked.
pub(crate) fn parse(body: &[u8]) -> Result<Json, NbiError> {
    let preset: Json = parse_json("the preset", body)?;
    crate::presets::validate(&preset)?;
    Ok(preset)
}

/// Stores a preset under `name`.
pub(crate) fn put(nbi: &Nbi, name: &str, preset: Json) -> Result<Reply, NbiError> {
    nbi.acs.store.put_preset(name, &preset)?;
    nbi.acs.presets_changed();
    Ok(done())
}

/// Deletes a preset.
pub(crate) fn delete(nbi: &Arc<Nbi>, name: &str) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_preset(name)? {
        nbi.acs.presets_changed();
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no preset {name}")))
    }
}
