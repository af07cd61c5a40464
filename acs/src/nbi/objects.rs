//! `/objects`, as GenieACS serves them: JSON objects that presets' `add_object` and
//! `delete_object` configurations name (fields of an instance, `_keys` those identifying it).

use std::collections::HashMap;

use serde_json::Value as Json;

use super::presets::{name, with_id, MAX_PRESET_BYTES};
use super::{done, parse_json, Nbi, NbiError, Reply};

/// `PUT /objects/{name}`: a checked name and the object.
pub(crate) struct Put {
    name: String,
    object: Json,
}

impl Put {
    /// From the path's name and the body: a JSON object whose fields are scalars or objects of
    /// them, `_keys` (if given) an array of field names.
    pub fn parse(path_name: &str, body: &[u8]) -> Result<Put, NbiError> {
        let name = name(path_name, "object")?;
        if body.len() > MAX_PRESET_BYTES {
            return Err(NbiError::Bad(format!("an object is at most {MAX_PRESET_BYTES} bytes")));
        }
        let mut object: Json = parse_json("the object", body)?;
        let Json::Object(m) = &mut object else { return Err(NbiError::Invalid("an object is a JSON object")) };
        m.remove("_id");
        if let Some(keys) = m.get("_keys") {
            if !keys.as_array().is_some_and(|k| k.iter().all(Json::is_string)) {
                return Err(NbiError::Invalid("_keys is an array of field names"));
            }
        }
        fn scalars(v: &Json, depth: usize) -> bool {
            match v {
                Json::Object(m) => depth > 0 && m.values().all(|v| scalars(v, depth - 1)),
                Json::Array(_) | Json::Null => false,
                _ => true,
            }
        }
        if !m.iter().filter(|(k, _)| !k.starts_with('_')).all(|(_, v)| scalars(v, 16)) {
            return Err(NbiError::Invalid(
                "an object's fields are strings, numbers, booleans or objects of them (at most 16 deep)",
            ));
        }
        Ok(Put { name, object })
    }
}

/// Stores (or replaces) an object.
pub(crate) fn put(nbi: &Nbi, p: Put) -> Result<Reply, NbiError> {
    nbi.acs.store.put_object(&p.name, &p.object)?;
    Ok(done())
}

/// Every object with its `_id`, or those the parameters select.
pub(crate) fn list(nbi: &Nbi, params: &HashMap<String, String>) -> Result<Reply, NbiError> {
    let docs = nbi.acs.store.objects()?.into_iter().map(|(n, o)| with_id(n, o)).collect();
    super::tasks::collection::answer(params, docs)
}

/// Deletes an object: 200 whether or not it existed, as GenieACS answers.
pub(crate) fn delete(nbi: &Nbi, name: &str) -> Result<Reply, NbiError> {
    nbi.acs.store.delete_object(name)?;
    Ok(done())
}
