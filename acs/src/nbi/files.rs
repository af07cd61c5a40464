//! `GET /files` (`?query=`), `PUT /files/{name}` (metadata from the headers) and
//! `DELETE /files/{name}`, as GenieACS answers them.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value as Json};

use super::{done, Call, Nbi, NbiError, Reply};
use crate::endpoint::now;
use crate::query;
use crate::store::files::FileInfo;

/// The metadata headers of `PUT /files/{name}`, by their names in the metadata.
const METADATA: [&str; 4] = ["fileType", "oui", "productClass", "version"];

/// A file as GenieACS (GridFS) shows it: `_id` and `filename` (its name), `length`,
/// `uploadDate`, `metadata` (the headers given at upload).
pub(crate) fn file_json(f: &FileInfo) -> Json {
    json!({"_id": f.name, "filename": f.name, "length": f.length, "uploadDate": query::iso(f.uploaded),
           "metadata": f.metadata})
}

/// Every file, or those `?query=` matches (`{"filename": ...}`, `{"metadata.fileType": ...}`),
/// with `sort`, `skip`, `limit`, `projection` and the `total` header.
pub(crate) fn query(nbi: &Nbi, params: &HashMap<String, String>) -> Result<Reply, NbiError> {
    let docs = nbi.acs.store.files()?.iter().map(file_json).collect();
    super::tasks::collection::answer(params, docs)
}

/// `PUT /files/{name}`: the file and its metadata.
pub(crate) struct Upload {
    name: String,
    content: Bytes,
    meta: Json,
}

impl Upload {
    /// From the path's name, the `fileType`, `oui`, `productClass`, `version` headers (those
    /// given) and the body.
    pub fn parse(name: &str, call: &Call) -> Result<Upload, NbiError> {
        if name.is_empty()
            || name == "."
            || name.contains("..")
            || name.contains('/')
            || name.chars().any(char::is_control)
        {
            return Err(NbiError::Invalid("invalid file name (empty, a path, or with control characters)"));
        }
        let mut meta = Map::new();
        for field in METADATA {
            if let Some(v) = call.headers.get(field) {
                let v = v.to_str().map_err(|_| NbiError::Bad(format!("the {field} header is not text")))?;
                meta.insert(field.into(), json!(v));
            }
        }
        Ok(Upload { name: name.to_string(), content: call.body.clone(), meta: Json::Object(meta) })
    }
}

/// Stores (or replaces) a file: 200, as GenieACS's API reference says (its server answers 201).
pub(crate) fn put(nbi: &Nbi, u: Upload) -> Result<Reply, NbiError> {
    nbi.acs.store.put_file(&u.name, &u.content, &u.meta, now())?;
    tracing::info!(file = %u.name, bytes = u.content.len(), "file stored");
    Ok(done())
}

/// Deletes a file (404 if there is none, as GenieACS answers).
pub(crate) fn delete(nbi: &Arc<Nbi>, name: &str) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_file(name)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no file {name}")))
    }
}
