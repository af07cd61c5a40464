//! `GET /files`, `PUT /files/{name}` (metadata from the headers) and `DELETE /files/{name}`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{done, json_response, Call, Nbi, NbiError, Reply};

/// Every file: its metadata, `_id` and `length`.
pub(crate) fn list(nbi: &Nbi) -> Result<Reply, NbiError> {
    let fs = nbi.acs.store.files()?;
    let out = fs
        .into_iter()
        .map(|(n, len, mut m)| {
            if let Json::Object(o) = &mut m {
                o.insert("_id".into(), json!(n));
                o.insert("length".into(), json!(len));
            }
            m
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Json::Array(out)))
}

/// `PUT /files/{name}`: the file and its metadata.
pub(crate) struct Upload {
    name: String,
    content: Bytes,
    meta: Json,
}

impl Upload {
    /// From the path's name, the `fileType`, `oui`, `productClass`, `version` headers and the body.
    pub fn parse(name: &str, call: &Call) -> Result<Upload, NbiError> {
        let h = |k: &str| call.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let meta = json!({"fileType": h("filetype"), "oui": h("oui"), "productClass": h("productclass"), "version": h("version")});
        if name.is_empty() || name.contains("..") {
            return Err(NbiError::Invalid("invalid file name"));
        }
        Ok(Upload { name: name.to_string(), content: call.body.clone(), meta })
    }
}

/// Stores a file.
pub(crate) fn put(nbi: &Nbi, u: Upload) -> Result<Reply, NbiError> {
    nbi.acs.store.put_file(&u.name, &u.content, &u.meta)?;
    Ok(done())
}

/// Deletes a file.
pub(crate) fn delete(nbi: &Arc<Nbi>, name: &str) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_file(name)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no file {name}")))
    }
}
