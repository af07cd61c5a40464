//! The property of the fuzz target `query`: the NBI's query language (`acs::query::matches`)
//! and the device JSON with a projection (`acs::query::device_json`). Input: a first line with
//! the query (JSON, as `?query=` carries it), a second with the projection (comma-separated, as
//! `?projection=`), then the device's cached parameters, one a line: `type name=value` (what
//! CPEs report, so outside input too). Included with `#[path]` by the fuzz target and by
//! `acs/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use acs::query::{device_json, matches, MAX_NESTING};
use acs::store::{CachedParam, Device};
use serde_json::{json, Value as Json};

/// The device every query runs against.
pub fn device() -> Device {
    Device {
        id: "00D09E-vRGW-0001".into(),
        manufacturer: "vrgw".into(),
        oui: "00D09E".into(),
        product_class: "vRGW".into(),
        serial_number: "0001".into(),
        last_inform: 1_795_302_534,
        tags: vec!["lab".into(), "home".into()],
        ..Device::default()
    }
}

/// `(query text, projection, parameters)` of an input.
pub fn split(data: &[u8]) -> (String, Vec<String>, Vec<CachedParam>) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let query = lines.next().unwrap_or_default().to_string();
    // As the NBI splits `?projection=`.
    let projection = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let params = lines
        .filter_map(|l| {
            let (ty, rest) = l.split_once(' ')?;
            let (name, value) = rest.split_once('=')?;
            Some(CachedParam { name: name.into(), ty: ty.into(), value: value.into(), updated: 1_795_302_000 })
        })
        .collect();
    (query, projection, params)
}

/// Checks the property on one input; panics when it does not hold. Returns whether the query
/// was one the NBI runs (valid JSON and a valid query).
pub fn check_query(data: &[u8]) -> bool {
    let (text, projection, params) = split(data);
    let d = device();
    check_json(&d, &params, &projection);
    let Ok(q) = serde_json::from_str::<Json>(&text) else { return false };
    let r = matches(&d, &params, &q);
    assert_eq!(matches(&d, &params, &q), r, "the same query answered twice differently");
    let Ok(b) = r else { return false };
    let nest_refused = |r: &Result<bool, acs::query::BadQuery>| match r {
        Err(e) => e.0.contains(&format!("nest at most {MAX_NESTING} deep")),
        Ok(_) => false,
    };
    // One more level of $and or $or around a query changes nothing (but its depth).
    for wrapped in [json!({"$and": [q]}), json!({"$or": [q]}), json!({"$and": [q, {}]})] {
        let w = matches(&d, &params, &wrapped);
        assert!(w == Ok(b) || nest_refused(&w), "{wrapped} gives {w:?}, {q} gave {b}");
    }
    // A false alternative changes nothing either.
    let or_false = json!({"$or": [q, {"_id": {"$ne": d.id}}]});
    let w = matches(&d, &params, &or_false);
    assert!(w == Ok(b) || nest_refused(&w), "{or_false} gives {w:?}, {q} gave {b}");
    // The fields of one object are a conjunction: split into an $and, the answer is the same
    // (when the split form is valid: the object form stops at its first false field).
    if let Some(obj) = q.as_object().filter(|o| o.len() > 1) {
        let parts: Vec<Json> = obj.iter().map(|(k, v)| json!({ k.clone(): v.clone() })).collect();
        let split = json!({ "$and": parts });
        if let Ok(b2) = matches(&d, &params, &split) {
            assert_eq!(b2, b, "{q} is {b} but {split} is {b2}");
        }
    }
    true
}

/// Depth of nested objects (the root is 0).
fn depth(j: &Json) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(j, 0)];
    while let Some((v, n)) = todo.pop() {
        deepest = deepest.max(n);
        if let Json::Object(m) = v {
            todo.extend(m.values().map(|c| (c, n + 1)));
        }
    }
    deepest
}

/// Whether a projection shows `path` (named, or under a named path at a dot).
fn wanted(projection: &[String], path: &str) -> bool {
    projection.is_empty()
        || projection.iter().any(|p| path == p || path.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('.')))
}

/// The device JSON: bounded depth whatever the names; the ACS's own fields as the ACS has them;
/// every parameter within the codec's limits and the projection reachable at its path.
fn check_json(d: &Device, params: &[CachedParam], projection: &[String]) {
    let j = device_json(d, params, projection);
    let limits = cwmp::Limits::default();
    // Segments, a trailing empty one for a partial path, then the leaf's own fields.
    assert!(depth(&j) <= cwmp::MAX_NAME_SEGMENTS + 2, "device JSON {} deep", depth(&j));
    let shown: Vec<&CachedParam> =
        params.iter().filter(|p| limits.accepts_name(&p.name) && wanted(projection, &p.name)).collect();
    // Known gap (see `acs/tests/fuzz_replay.rs`, `parameters_cannot_overwrite_the_acs_fields`): a
    // parameter whose first segment is one of the ACS's own fields replaces that field.
    let reserved = shown.iter().any(|p| p.name.starts_with('_'));
    if !reserved {
        assert_eq!(j["_id"], json!(d.id), "a parameter overwrote _id");
        if wanted(projection, "_deviceId") {
            assert_eq!(j["_deviceId"]["_SerialNumber"], json!(d.serial_number), "a parameter overwrote _deviceId");
        } else {
            assert!(j.get("_deviceId").is_none());
        }
    }
    for p in &shown {
        // Another parameter whose name continues this one's (a CPE reporting both `A.B` and
        // `A.B.C`) may take its place; the ACS's own fields are checked above.
        let shadowed = params.iter().any(|o| {
            o.name.len() != p.name.len() && {
                let (short, long) = if o.name.len() < p.name.len() { (&o.name, &p.name) } else { (&p.name, &o.name) };
                long.starts_with(short.as_str()) && long[short.len()..].starts_with('.')
            }
        });
        if shadowed || p.name.split('.').next().is_some_and(|s| s.starts_with('_')) {
            continue;
        }
        let at = p.name.split('.').try_fold(&j, |v, seg| v.get(seg));
        assert!(at.is_some_and(Json::is_object), "{:?} is not at its path in {j}", p.name);
    }
    // Nothing beyond what was asked for.
    if let Json::Object(top) = &j {
        for key in top.keys().filter(|k| !["_id", "_deviceId", "_lastInform", "_tags"].contains(&k.as_str())) {
            assert!(
                shown.iter().any(|p| p.name.split('.').next() == Some(key.as_str())),
                "{key:?} shown, not in the projection {projection:?}"
            );
        }
    }
}
