//! A documented subset of GenieACS's device query language, projections, and the device JSON
//! shape GenieACS's NBI returns.
//!
//! Supported: equality on `_id`, `_tags`, `_lastInform`, `_deviceId._Manufacturer|_OUI|
//! _ProductClass|_SerialNumber` and any parameter path (optionally with `._value`); the operators
//! `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$exists`; and `$and`, `$or`. Numbers compare
//! as numbers, anything else as text; `_lastInform` takes an ISO date or milliseconds.
//!
//! Bounds on outside input: `$and`/`$or` nest at most [`MAX_NESTING`] deep (a 400 otherwise);
//! the device JSON is built without recursion, and a cached parameter whose name the CWMP codec
//! would refuse today (over `cwmp::MAX_NAME_BYTES` or `cwmp::MAX_NAME_SEGMENTS`; an older ACS
//! stored such names) is left out of it, so its nesting never exceeds the codec's bound.

use std::collections::HashSet;

use serde_json::{json, Map, Value as Json};

use crate::store::{CachedParam, Device};

/// A query the NBI cannot run, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(pub String);

/// ISO 8601 text of Unix seconds.
pub fn iso(secs: i64) -> String {
    cwmp::DateTime::from_unix(secs).as_str().to_string()
}

fn typed(ty: &str, value: &str) -> Json {
    match ty {
        "int" | "long" => value.parse::<i64>().map(Json::from).unwrap_or_else(|_| json!(value)),
        "unsignedInt" | "unsignedLong" => value.parse::<u64>().map(Json::from).unwrap_or_else(|_| json!(value)),
        "boolean" => json!(value == "true" || value == "1"),
        _ => json!(value),
    }
}

/// What a field of a device holds, for comparisons.
fn field(d: &Device, params: &[CachedParam], key: &str) -> Option<Json> {
    match key {
        "_id" => Some(json!(d.id)),
        "_lastInform" => Some(json!(d.last_inform * 1000)),
        "_deviceId._Manufacturer" => Some(json!(d.manufacturer)),
        "_deviceId._OUI" => Some(json!(d.oui)),
        "_deviceId._ProductClass" => Some(json!(d.product_class)),
        "_deviceId._SerialNumber" => Some(json!(d.serial_number)),
        k => {
            let name = k.strip_suffix("._value").unwrap_or(k);
            params.iter().find(|p| p.name == name).map(|p| typed(&p.ty, &p.value))
        }
    }
}

fn as_millis(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => {
            let d = cwmp::DateTime::parse(s)?;
            let t = d.as_str();
            // Days from civil (Howard Hinnant), enough for comparisons.
            let y: i64 = t.get(0..4)?.parse().ok()?;
            let m: i64 = t.get(5..7)?.parse().ok()?;
            let day: i64 = t.get(8..10)?.parse().ok()?;
            let (hh, mm, ss): (i64, i64, i64) =
                (t.get(11..13)?.parse().ok()?, t.get(14..16)?.parse().ok()?, t.get(17..19)?.parse().ok()?);
            let y2 = if m <= 2 { y - 1 } else { y };
            let era = y2.div_euclid(400);
            let yoe = y2 - era * 400;
            let mp = (m + 9) % 12;
            let doy = (153 * mp + 2) / 5 + day - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            let days = era * 146_097 + doe - 719_468;
            Some(((days * 86400 + hh * 3600 + mm * 60 + ss) * 1000) as f64)
        }
        _ => None,
    }
}

fn cmp(a: &Json, b: &Json, date: bool) -> Option<std::cmp::Ordering> {
    if date {
        return as_millis(a)?.partial_cmp(&as_millis(b)?);
    }
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::Number(x), Json::String(y)) | (Json::String(y), Json::Number(x)) => {
            let y: f64 = y.parse().ok()?;
            let o = x.as_f64()?.partial_cmp(&y)?;
            Some(if matches!(a, Json::Number(_)) { o } else { o.reverse() })
        }
        (Json::String(x), Json::String(y)) => Some(x.cmp(y)),
        (Json::Bool(x), Json::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn test_field(d: &Device, params: &[CachedParam], key: &str, cond: &Json) -> Result<bool, BadQuery> {
    if key == "_tags" {
        return match cond {
            Json::String(t) => Ok(d.tags.iter().any(|x| x == t)),
            Json::Object(o) if o.len() == 1 && o.contains_key("$ne") => {
                Ok(!d.tags.iter().any(|x| Some(x.as_str()) == o["$ne"].as_str()))
            }
            _ => Err(BadQuery("_tags takes a tag name or {\"$ne\": tag}".into())),
        };
    }
    let date = key == "_lastInform";
    let have = field(d, params, key);
    let eq = |want: &Json| have.as_ref().is_some_and(|h| cmp(h, want, date) == Some(std::cmp::Ordering::Equal));
    match cond {
        Json::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
            for (op, want) in ops {
                let ok = match op.as_str() {
                    "$eq" => eq(want),
                    "$ne" => !eq(want),
                    "$gt" | "$gte" | "$lt" | "$lte" => match have.as_ref().and_then(|h| cmp(h, want, date)) {
                        Some(o) => match op.as_str() {
                            "$gt" => o.is_gt(),
                            "$gte" => o.is_ge(),
                            "$lt" => o.is_lt(),
                            _ => o.is_le(),
                        },
                        None => false,
                    },
                    "$in" => want.as_array().ok_or_else(|| BadQuery("$in takes an array".into()))?.iter().any(eq),
                    "$exists" => have.is_some() == want.as_bool().unwrap_or(true),
                    other => return Err(BadQuery(format!("unsupported operator {other}"))),
                };
                if !ok {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        want => Ok(eq(want)),
    }
}

/// How deep `$and` and `$or` may nest in a query.
pub const MAX_NESTING: usize = 16;

/// Whether the device matches `query` (a JSON object).
pub fn matches(d: &Device, params: &[CachedParam], query: &Json) -> Result<bool, BadQuery> {
    matches_within(d, params, query, MAX_NESTING)
}

fn matches_within(d: &Device, params: &[CachedParam], query: &Json, depth: usize) -> Result<bool, BadQuery> {
    let obj = query.as_object().ok_or_else(|| BadQuery("a query is a JSON object".into()))?;
    let nested = |q: &Json| match depth.checked_sub(1) {
        Some(left) => matches_within(d, params, q, left),
        None => Err(BadQuery(format!("$and and $or nest at most {MAX_NESTING} deep"))),
    };
    for (k, v) in obj {
        let ok = match k.as_str() {
            "$and" => {
                let list = v.as_array().ok_or_else(|| BadQuery("$and takes an array".into()))?;
                let mut all = true;
                for q in list {
                    all &= nested(q)?;
                }
                all
            }
            "$or" => {
                let list = v.as_array().ok_or_else(|| BadQuery("$or takes an array".into()))?;
                let mut any = false;
                for q in list {
                    any |= nested(q)?;
                }
                any
            }
            op if op.starts_with('$') => return Err(BadQuery(format!("unsupported operator {op}"))),
            key => test_field(d, params, key, v)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The paths a projection names (empty: everything).
struct Projection<'a>(HashSet<&'a str>);

impl<'a> Projection<'a> {
    fn new(paths: &'a [String]) -> Projection<'a> {
        Projection(paths.iter().map(String::as_str).collect())
    }

    /// Whether `path` is named or lies under a named path (`A.B` shows `A.B` and `A.B.C`, not
    /// `A.BC`): one look-up per segment, whatever the projection's length.
    fn wants(&self, path: &str) -> bool {
        self.0.is_empty() || self.0.contains(path) || path.match_indices('.').any(|(i, _)| self.0.contains(&path[..i]))
    }
}

/// Places `leaf` at the path `name` (split at dots) under `root`, creating objects on the way;
/// a value in the way is replaced by an object. A loop, not a recursion per segment.
fn insert(root: &mut Map<String, Json>, name: &str, leaf: Json) {
    let mut node = root;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_string(), leaf);
            return;
        }
        let entry = node.entry(part).or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        let Some(next) = entry.as_object_mut() else { return };
        node = next;
    }
}

/// The device as GenieACS's NBI shows it, limited to `projection` (empty: everything).
///
/// Parameters whose names are over the CWMP codec's limits are left out (and logged): they nest
/// deeper than any client could read, and no CPE can send them any more.
pub fn device_json(d: &Device, params: &[CachedParam], projection: &[String]) -> Json {
    let projection = Projection::new(projection);
    let wanted = |path: &str| projection.wants(path);
    let mut root = Map::new();
    root.insert("_id".into(), json!(d.id));
    if wanted("_deviceId") {
        root.insert(
            "_deviceId".into(),
            json!({"_Manufacturer": d.manufacturer, "_OUI": d.oui, "_ProductClass": d.product_class, "_SerialNumber": d.serial_number}),
        );
    }
    if wanted("_lastInform") {
        root.insert("_lastInform".into(), json!(iso(d.last_inform)));
    }
    if wanted("_tags") && !d.tags.is_empty() {
        root.insert("_tags".into(), json!(d.tags));
    }
    let limits = cwmp::Limits::default();
    let mut left_out = 0;
    for p in params {
        // A name over the codec's limits, or one that would land on the ACS's own fields (`_id`,
        // `_deviceId`, `_tags`, `_lastInform`: no data model's root starts with `_`).
        if !limits.accepts_name(&p.name) || p.name.starts_with('_') {
            left_out += 1;
            continue;
        }
        if !wanted(&p.name) {
            continue;
        }
        let leaf =
            json!({"_value": typed(&p.ty, &p.value), "_type": format!("xsd:{}", p.ty), "_timestamp": iso(p.updated)});
        insert(&mut root, &p.name, leaf);
    }
    if left_out > 0 {
        tracing::warn!(
            device = %d.id,
            "{left_out} cached parameter(s) left out of the device JSON: names over {} bytes or {} segments, or \
             starting with '_'",
            limits.max_name_bytes,
            limits.max_name_segments
        );
    }
    Json::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> (Device, Vec<CachedParam>) {
        let d = Device {
            id: "00A0B1-Host-1".into(),
            manufacturer: "m".into(),
            oui: "00A0B1".into(),
            product_class: "Host".into(),
            serial_number: "1".into(),
            cr_url: String::new(),
            cr_username: String::new(),
            cr_password: String::new(),
            last_inform: 1_795_302_534,
            tags: vec!["lab".into()],
        };
        let p = vec![
            CachedParam {
                name: "Device.DeviceInfo.UpTime".into(),
                ty: "unsignedInt".into(),
                value: "300".into(),
                updated: 1,
            },
            CachedParam {
                name: "Device.DeviceInfo.SoftwareVersion".into(),
                ty: "string".into(),
                value: "0.1.0".into(),
                updated: 1,
            },
        ];
        (d, p)
    }

    #[test]
    fn queries() {
        let (d, p) = dev();
        let m = |q: Json| matches(&d, &p, &q).expect("valid query");
        assert!(m(json!({"_id": "00A0B1-Host-1"})));
        assert!(!m(json!({"_id": "other"})));
        assert!(m(json!({"_tags": "lab"})));
        assert!(m(json!({"Device.DeviceInfo.UpTime": {"$gt": 100, "$lte": 300}})));
        assert!(!m(json!({"Device.DeviceInfo.UpTime._value": {"$lt": 100}})));
        assert!(m(json!({"Device.DeviceInfo.SoftwareVersion": "0.1.0"})));
        assert!(m(json!({"_lastInform": {"$gt": "2026-11-21T00:00:00Z"}})));
        assert!(!m(json!({"_lastInform": {"$gt": "2026-11-22T00:00:00Z"}})));
        assert!(m(json!({"$or": [{"_id": "x"}, {"_deviceId._OUI": "00A0B1"}]})));
        assert!(m(json!({"Device.Nope": {"$exists": false}})));
        assert!(m(json!({"_id": {"$in": ["a", "00A0B1-Host-1"]}})));
        assert!(matches(&d, &p, &json!({"_id": {"$regex": "x"}})).is_err());
        assert!(matches(&d, &p, &json!([1])).is_err());
        let j = device_json(&d, &p, &["Device.DeviceInfo.UpTime".to_string()]);
        assert_eq!(j["Device"]["DeviceInfo"]["UpTime"]["_value"], json!(300));
        assert!(j["Device"]["DeviceInfo"].get("SoftwareVersion").is_none());
        assert!(j.get("_deviceId").is_none());
        assert_eq!(device_json(&d, &p, &[])["_lastInform"], json!("2026-11-21T23:08:54Z"));
    }

    fn nested(levels: usize) -> Json {
        (0..levels).fold(json!({"_id": "00A0B1-Host-1"}), |q, _| json!({"$and": [q], "$or": [{"_tags": "lab"}]}))
    }

    #[test]
    fn and_or_nest_at_most_max_nesting_deep() {
        let (d, p) = dev();
        assert_eq!(matches(&d, &p, &nested(MAX_NESTING)), Ok(true));
        let err = matches(&d, &p, &nested(MAX_NESTING + 1)).expect_err("too deep");
        assert!(err.0.contains("at most 16 deep"), "{err}");
    }

    #[test]
    fn projections_show_named_paths_and_what_lies_under_them() {
        let (d, mut p) = dev();
        p.push(CachedParam { name: "Device.DeviceInfoX.A".into(), ty: "string".into(), value: "x".into(), updated: 1 });
        let j = device_json(&d, &p, &["Device.DeviceInfo".to_string(), "_tags".to_string()]);
        assert_eq!(j["Device"]["DeviceInfo"]["SoftwareVersion"]["_value"], json!("0.1.0"));
        assert!(j["Device"].get("DeviceInfoX").is_none(), "a prefix that is not a whole segment shows nothing");
        assert_eq!(j["_tags"], json!(["lab"]));
        assert!(j.get("_lastInform").is_none());
        let all = device_json(&d, &p, &[]);
        assert_eq!(all["Device"]["DeviceInfoX"]["A"]["_value"], json!("x"));
        assert!(device_json(&d, &p, &["Nothing.Here".to_string()]).get("Device").is_none());
    }

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

    #[test]
    fn names_over_the_codec_limits_are_left_out_of_the_device_json() {
        let (d, mut p) = dev();
        let deep = "A.".repeat(19_999) + "A";
        let at_limit = vec!["B"; cwmp::MAX_NAME_SEGMENTS].join(".");
        for name in [deep.clone(), at_limit.clone(), format!("C.{}", "x".repeat(cwmp::MAX_NAME_BYTES))] {
            p.push(CachedParam { name, ty: "string".into(), value: "v".into(), updated: 1 });
        }
        for projection in [vec![], vec!["A".to_string(), "B".to_string(), "C".to_string()]] {
            let j = device_json(&d, &p, &projection);
            assert!(j.get("A").is_none() && j.get("C").is_none(), "over the limits: left out");
            let leaf = (0..cwmp::MAX_NAME_SEGMENTS).fold(&j, |v, _| &v["B"]);
            assert_eq!(leaf["_value"], json!("v"), "at the limit: shown");
            // Root, 32 segments, then the leaf's own fields.
            assert_eq!(depth(&j), cwmp::MAX_NAME_SEGMENTS + 1);
        }
        assert_eq!(device_json(&d, &p, &[])["Device"]["DeviceInfo"]["UpTime"]["_value"], json!(300));
    }
}
