//! `GET /devices` (query and projection) and `POST|DELETE /devices/{id}/tags/{tag}`.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{blocking, done, json_response, parse_json, Nbi, NbiError, Reply};
use crate::query;

/// `GET /devices`: which devices and which of their values.
pub(crate) struct Listing {
    /// A GenieACS query (`{}`: every device).
    pub query: Json,
    /// Parameter paths to show (empty: all).
    pub projection: Vec<String>,
}

impl Listing {
    /// From `?query=` and `?projection=`.
    pub fn parse(params: &HashMap<String, String>) -> Result<Listing, NbiError> {
        let query = match params.get("query").filter(|q| !q.is_empty()) {
            Some(q) => parse_json("query", q.as_bytes())?,
            None => json!({}),
        };
        let projection = params
            .get("projection")
            .map(|p| p.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Listing { query, projection })
    }
}

/// The devices matching the query, as GenieACS shows them.
pub(crate) async fn list(nbi: &Arc<Nbi>, l: Listing) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.clone();
    blocking(move || {
        let mut out = Vec::new();
        for d in store.devices()? {
            let ps = store.params(&d.id)?;
            if query::matches(&d, &ps, &l.query)? {
                out.push(query::device_json(&d, &ps, &l.projection));
            }
        }
        Ok(json_response(StatusCode::OK, &Json::Array(out)))
    })
    .await
}

/// Adds (`add`) or removes a tag of a device.
pub(crate) async fn tag(nbi: &Arc<Nbi>, dev: &str, tag: &str, add: bool) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.clone();
    let (dev, tag) = (dev.to_string(), tag.to_string());
    blocking(move || {
        let d = store.device(&dev)?.ok_or_else(|| NbiError::NotFound(format!("no device {dev}")))?;
        let mut tags = d.tags;
        tags.retain(|t| t != &tag);
        if add {
            tags.push(tag);
        }
        store.set_tags(&dev, &tags)?;
        Ok(done())
    })
    .await
}
