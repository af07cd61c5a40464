//! `/provisions` and `/virtual_parameters`: JavaScript sources, compiled by the engine when put
//! (a syntax error is a 400 with its line and column) and kept as received, listed as GenieACS lists them (`[{"_id", "script"}]`, with its `query`,
//! `projection`, `sort`, `skip`, `limit`), one shown by name, replaced by `PUT`, removed by
//! `DELETE`.

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::json;

use super::{done, json_response, Nbi, NbiError, Reply};
use crate::store::ScriptKind;

/// The largest script taken.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;

fn what(kind: ScriptKind) -> &'static str {
    match kind {
        ScriptKind::Provision => "provision",
        ScriptKind::VirtualParameter => "virtual parameter",
    }
}

/// `PUT /provisions/{name}` or `/virtual_parameters/{name}`: a checked name and its source.
pub(crate) struct Put {
    kind: ScriptKind,
    name: String,
    script: String,
}

/// A script's name: 1 to 128 of `A-Z a-z 0-9 _ -` (the characters GenieACS's route takes
/// unescaped; a virtual parameter's name is a path segment, `VirtualParameters.<name>`), and
/// not one of GenieACS's built-in provisions, which a stored script would shadow.
pub(crate) fn name(kind: ScriptKind, name: &str) -> Result<String, NbiError> {
    let ok = (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    if !ok {
        return Err(NbiError::Bad(format!("invalid {} name: 1 to 128 of A-Z a-z 0-9 _ -", what(kind))));
    }
    if kind == ScriptKind::Provision && crate::presets::BUILT_IN_PROVISIONS.contains(&name) {
        return Err(NbiError::Bad(format!("{name} is a built-in provision")));
    }
    Ok(name.to_string())
}

impl Put {
    /// From the path's name and the body (UTF-8 text, at most [`MAX_SCRIPT_BYTES`]).
    pub fn parse(kind: ScriptKind, name: &str, body: &[u8]) -> Result<Put, NbiError> {
        let name = self::name(kind, name)?;
        if body.len() > MAX_SCRIPT_BYTES {
            return Err(NbiError::Bad(format!("a script is at most {MAX_SCRIPT_BYTES} bytes")));
        }
        let script =
            std::str::from_utf8(body).map_err(|e| NbiError::Bad(format!("a script is UTF-8 text: {e}")))?.to_string();
        // Compiled, not run: a syntax error is told with its line and column, and nothing is stored.
        crate::script::engine::check(&name, &script)
            .map_err(|e| NbiError::Bad(format!("{} {name} does not compile: {e}", what(kind))))?;
        Ok(Put { kind, name, script })
    }
}

/// Stores (or replaces) a script.
pub(crate) fn put(nbi: &Nbi, p: Put) -> Result<Reply, NbiError> {
    nbi.acs.store.put_script(p.kind, &p.name, &p.script)?;
    nbi.acs.scripts_changed();
    tracing::info!(name = %p.name, bytes = p.script.len(), "{} stored", what(p.kind));
    Ok(done())
}

/// Every script of the kind, or those the parameters select.
pub(crate) fn list(nbi: &Nbi, kind: ScriptKind, params: &HashMap<String, String>) -> Result<Reply, NbiError> {
    let docs = nbi.acs.store.scripts(kind)?.into_iter().map(|(n, s)| json!({"_id": n, "script": s})).collect();
    super::tasks::collection::answer(params, docs)
}

/// One script (beyond GenieACS, which lists them only).
pub(crate) fn get(nbi: &Nbi, kind: ScriptKind, name: &str) -> Result<Reply, NbiError> {
    match nbi.acs.store.scripts(kind)?.into_iter().find(|(n, _)| n == name) {
        Some((n, s)) => Ok(json_response(StatusCode::OK, &json!({"_id": n, "script": s}))),
        None => Err(NbiError::NotFound(format!("no {} {name}", what(kind)))),
    }
}

/// Deletes a script: 200 whether or not it existed, as GenieACS answers.
pub(crate) fn delete(nbi: &Nbi, kind: ScriptKind, name: &str) -> Result<Reply, NbiError> {
    nbi.acs.store.delete_script(kind, name)?;
    nbi.acs.scripts_changed();
    Ok(done())
}
