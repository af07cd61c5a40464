//! `GET|HEAD /devices` (query, projection, sort, skip, limit, the `total` header),
//! `DELETE /devices/{id}` and `POST|DELETE /devices/{id}/tags/{tag}`.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{blocking, done, json_response, parse_json, Nbi, NbiError, Reply};
use crate::query::{self, FullRecord, Query, Record, Sort};
use crate::store::devices::Lifecycle;
use crate::store::{CachedParam, Device, PathInfo};

/// `GET /devices`: which devices, in which order, which page, and which of their values.
pub(crate) struct Listing {
    /// A GenieACS query (`{}`: every device).
    pub query: Query,
    /// Parameter paths to show (empty: all).
    pub projection: Vec<String>,
    /// The order (`None`: by id).
    pub sort: Option<Sort>,
    /// Devices passed over first.
    pub skip: usize,
    /// The most devices shown (`None`: all; `limit=0` is no limit, as in MongoDB).
    pub limit: Option<usize>,
    /// `HEAD`: the headers only.
    pub head: bool,
}

/// A count from the query string: a non-negative integer.
fn count(params: &HashMap<String, String>, name: &'static str) -> Result<Option<usize>, NbiError> {
    match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => {
            v.parse().map(Some).map_err(|_| NbiError::Bad(format!("{name} is a non-negative integer, not {v:?}")))
        }
    }
}

impl Listing {
    /// From `?query=`, `?projection=`, `?sort=`, `?skip=` and `?limit=`.
    pub fn parse(params: &HashMap<String, String>, head: bool) -> Result<Listing, NbiError> {
        let query: Json = match params.get("query").filter(|q| !q.is_empty()) {
            Some(q) => parse_json("query", q.as_bytes())?,
            None => json!({}),
        };
        let projection = params
            .get("projection")
            .map(|p| p.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let sort = params.get("sort").filter(|s| !s.is_empty()).map(|s| Sort::parse(s)).transpose()?;
        Ok(Listing {
            query: Query::parse(&query)?,
            projection,
            sort,
            skip: count(params, "skip")?.unwrap_or(0),
            limit: count(params, "limit")?.filter(|l| *l > 0),
            head,
        })
    }
}

/// A device's cached values and what its CPE told of its paths besides values.
type Cache = (Vec<CachedParam>, Vec<PathInfo>);

/// A device, its lifecycle and (once loaded) its cache.
type Row = (Device, Lifecycle, Option<Cache>);

/// The device with its cache (none yet loaded: an empty one).
fn full<'a>(d: &'a Device, life: &'a Lifecycle, cache: &'a Option<Cache>) -> FullRecord<'a> {
    let (params, info) = cache.as_ref().map_or((&[][..], &[][..]), |(p, i)| (p.as_slice(), i.as_slice()));
    Record { device: d, life, params }.with_info(info)
}

/// The devices matching the query, as GenieACS shows them, with the count of all that match in
/// the `total` header. The cache (values and [`PathInfo`]) is read only for the devices that
/// need it: those the query or the sort reads, and those shown.
pub(crate) async fn list(nbi: &Arc<Nbi>, l: Listing) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.clone();
    blocking(move || {
        let early = l.query.needs_params() || l.sort.as_ref().is_some_and(Sort::needs_params);
        let mut rows: Vec<Row> = Vec::new();
        // The store narrows the devices by what every match has (a tag, a value), by index.
        for (d, life) in store.device_records_with(&l.query.necessary())? {
            let cache = if early { Some((store.params(&d.id)?, store.path_info(&d.id)?)) } else { None };
            if l.query.matches_full(&full(&d, &life, &cache)) {
                rows.push((d, life, cache));
            }
        }
        if let Some(sort) = &l.sort {
            // Stable: devices the sort does not tell apart stay in id order.
            rows.sort_by(|a, b| sort.cmp_full(&full(&a.0, &a.1, &a.2), &full(&b.0, &b.1, &b.2)));
        }
        let total = rows.len();
        let mut reply = if l.head {
            json_response(StatusCode::OK, &Json::Null)
        } else {
            let page = rows.into_iter().skip(l.skip).take(l.limit.unwrap_or(usize::MAX));
            let mut out = Vec::new();
            for (d, life, cache) in page {
                let cache = match cache {
                    Some(c) => Some(c),
                    None => Some((store.params(&d.id)?, store.path_info(&d.id)?)),
                };
                out.push(query::full_record_json(&full(&d, &life, &cache), &l.projection));
            }
            json_response(StatusCode::OK, &Json::Array(out))
        };
        if l.head {
            *reply.body_mut() = Default::default();
        }
        reply.headers_mut().insert("total", HeaderValue::from(total));
        Ok(reply)
    })
    .await
}

/// `DELETE /devices/{id}`: forgets the device, its parameter cache, tasks and faults; it
/// registers again at its next Inform. 200 whether or not it was known, as GenieACS answers.
pub(crate) async fn delete(nbi: &Arc<Nbi>, dev: &str) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.clone();
    let dev = dev.to_string();
    blocking(move || {
        if store.delete_device(&dev)? {
            tracing::info!(device = %dev, "device deleted through the NBI");
        }
        Ok(done())
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
