//! Declarations: what `declare()` asked (timestamps to meet, values and instance counts to
//! hold), what a round of them still needs fetched, the answers a run got, and the changes
//! they come to on the device.

use std::collections::BTreeMap;

use cwmp::ParameterValue;
use serde_json::{json, Value as Json};

use super::view::{Need, Pattern, Seg, View};
use crate::tasks::TaskSpec;

/// The most parameters one GetParameterValues names.
pub(crate) const GPV_BATCH: usize = 512;
/// GenieACS's `cwmp.gpvBatchSize` default (its model's batches).
pub(crate) const GENIEACS_GPV_BATCH: usize = 32;

/// A declared value and its type, if given (`xsd:...`).
pub(crate) type Declared = (Json, Option<String>);

#[derive(Debug, Clone)]
pub(crate) struct Decl {
    pub(crate) pattern: Pattern,
    pub(crate) path_get: i64,
    pub(crate) attr_get: BTreeMap<String, i64>,
    pub(crate) path_set: Option<u64>,
    pub(crate) value_set: Option<Declared>,
    /// A refresh of everything below the path (the built-in `refresh` of an object).
    pub(crate) deep: bool,
    /// The built-in `download` provision: file type, file name, target file name.
    pub(crate) download: Option<(String, String, Option<String>)>,
}

impl Decl {
    /// A declaration of `pattern` that wants it known at all and changes nothing.
    pub(crate) fn of(pattern: Pattern) -> Decl {
        Decl {
            pattern,
            path_get: 1,
            attr_get: BTreeMap::new(),
            path_set: None,
            value_set: None,
            deep: false,
            download: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Query {
    Get { decl: usize, item: Option<usize>, attr: String },
    Size { decl: usize },
}

/// What one run declared and read.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) decls: Vec<Decl>,
    /// Each query's first answer (a run is deterministic: a later one is the same).
    pub(crate) answers: Vec<(Query, Option<Json>)>,
    pub(crate) asked: std::collections::HashSet<Query>,
    pub(crate) clears: Vec<(Pattern, i64)>,
    pub(crate) ext: Vec<Vec<String>>,
    pub(crate) logs: Vec<String>,
    pub(crate) commit: bool,
}

pub(crate) fn ts_of(v: &Json) -> i64 {
    v.as_f64().filter(|t| t.is_finite() && *t >= 1.0).map_or(0, |t| t.min(i64::MAX as f64) as i64)
}

/// A declaration of `declare(path, timestamps, values)`.
pub(crate) fn declaration(path: &str, timestamps: &Json, values: &Json) -> Result<Decl, String> {
    let pattern = Pattern::parse(path)?;
    if pattern.root() == "Downloads" {
        return Err("declarations of Downloads.* are not run yet: use the download provision or task".into());
    }
    let mut d = Decl::of(pattern);
    if let Some(vals) = values.as_object() {
        for (attr, v) in vals {
            if attr == "path" {
                let max = crate::provisions::MAX_INSTANCES as f64;
                let n = v.as_f64().filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= max);
                let n =
                    n.ok_or_else(|| format!("declare {path}: values.path is a count of instances from 0 to {max}"))?;
                d.path_set = Some(n as u64);
                continue;
            }
            // A value set implies the parameter known (its type taken from the cache).
            d.attr_get.insert(attr.clone(), 1);
            if attr == "value" {
                d.value_set = Some(match v {
                    Json::Array(a) if !a.is_empty() => {
                        (a[0].clone(), a.get(1).and_then(Json::as_str).map(str::to_string))
                    }
                    v => (v.clone(), None),
                });
            }
        }
    }
    if let Some(ts) = timestamps.as_object() {
        for (attr, t) in ts {
            let t = ts_of(t);
            if t < 1 {
                continue;
            }
            if attr == "path" {
                d.path_get = t;
            } else {
                let e = d.attr_get.entry(attr.clone()).or_insert(t);
                *e = (*e).max(t);
            }
        }
    }
    Ok(d)
}

/// What a declaration still needs fetched.
pub(crate) fn needs(view: &View, d: &Decl, out: &mut Vec<Need>) {
    let (matches, n) = view.unpack(&d.pattern, d.path_get);
    if d.deep {
        out.extend(n);
        for m in &matches {
            let ts = d.attr_get.get("value").copied().unwrap_or(1);
            out.extend(view.subtree_needs(&format!("{m}."), d.path_get, ts));
        }
        return;
    }
    out.extend(n);
    for m in &matches {
        for (attr, ts) in &d.attr_get {
            if let Err(n) = view.attribute(m, attr, *ts) {
                out.push(n);
            }
        }
    }
}

pub(crate) fn answer(
    view: &View,
    overlay: &BTreeMap<String, Json>,
    decls: &[Decl],
    q: &Query,
) -> Result<Option<Json>, ()> {
    match q {
        Query::Size { decl } => {
            let d = &decls[*decl];
            let (m, needs) = view.unpack(&d.pattern, d.path_get);
            if !needs.is_empty() {
                return Err(());
            }
            Ok((!m.is_empty()).then(|| json!(m.len())))
        }
        Query::Get { decl, item, attr } => {
            let d = &decls[*decl];
            let (m, needs) = view.unpack(&d.pattern, d.path_get);
            if !needs.is_empty() {
                return Err(());
            }
            let Some(path) = m.get(item.unwrap_or(0)) else { return Ok(None) };
            if attr == "path" {
                return Ok(Some(json!(path)));
            }
            let Some(ts) = d.attr_get.get(attr) else { return Ok(None) };
            if attr == "value" {
                if let Some(v) = overlay.get(path) {
                    return Ok(Some(v.clone()));
                }
            }
            view.attribute(path, attr, *ts).map_err(drop)
        }
    }
}

/// The JavaScript value `[v, "xsd:type"]` a declared value comes to on `path`.
pub(crate) fn declared_js(view: &View, path: &str, value: &Json, ty: &Option<String>) -> Json {
    let ty = ty.clone().or_else(|| view.leaves.get(path).map(|l| format!("xsd:{}", l.ty))).unwrap_or_else(|| {
        match value {
            Json::Bool(_) => "xsd:boolean",
            Json::Number(_) => "xsd:int",
            _ => "xsd:string",
        }
        .into()
    });
    json!([value, ty])
}

/// Whether `clear(pattern, ts)` would forget anything.
pub(crate) fn stale(view: &View, pattern: &Pattern, ts: i64) -> bool {
    view.leaves.iter().any(|(name, l)| l.at < ts && pattern.could_match(name) && depth_ok(pattern, name))
}

pub(crate) fn depth_ok(pattern: &Pattern, name: &str) -> bool {
    name.split('.').count() >= pattern.segs.len()
}

/// An instance count declared: table, its matches, how many, the alias's keys, the selection.
type Count = (String, Vec<String>, u64, Vec<ParameterValue>, String);

/// A change a round's declarations come to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Value(ParameterValue),
    Tag(String, bool),
    Add {
        table: String,
        keys: Vec<ParameterValue>,
    },
    Delete(String),
    Reboot,
    FactoryReset,
    /// A virtual parameter to write (its script runs with the value).
    Virtual(String, Json, Option<String>),
    /// A Download: file type, file name, target file name.
    Download(String, String, Option<String>),
}

pub(crate) fn typed(path: &str, value: &Json, ty: Option<&str>) -> Option<ParameterValue> {
    let value = match (ty.map(|t| t.trim_start_matches("xsd:")), value) {
        (Some("dateTime"), Json::Number(n)) => {
            json!(cwmp::DateTime::from_unix(n.as_i64().unwrap_or(0) / 1000).as_str())
        }
        (_, v) => v.clone(),
    };
    let mut t = vec![json!(path), value];
    if let Some(ty) = ty {
        t.push(json!(ty));
    }
    crate::tasks::triple(&Json::Array(t)).ok()
}

/// The changes `decls` come to on `view`, later declarations over earlier ones.
pub(crate) fn sets(view: &View, decls: &[Decl]) -> Vec<Change> {
    let mut values: BTreeMap<String, ParameterValue> = BTreeMap::new();
    let mut tags: BTreeMap<String, bool> = BTreeMap::new();
    let mut out = Vec::new();
    let mut last = Vec::new();
    // Per table and selection: the matches, the count wanted, the alias's keys.
    let mut counts: Vec<Count> = Vec::new();
    let mut virtuals = Vec::new();
    for d in decls {
        if let Some((ty, name, target)) = &d.download {
            out.push(Change::Download(ty.clone(), name.clone(), target.clone()));
            continue;
        }
        let (matches, needs) = view.unpack(&d.pattern, d.path_get);
        if !needs.is_empty() {
            continue;
        }
        if let Some((v, ty)) = &d.value_set {
            for m in &matches {
                if let Some(t) = m.strip_prefix("Tags.") {
                    let on = v.as_bool().unwrap_or_else(|| v.as_str().is_some_and(|s| s == "true"));
                    tags.insert(t.to_string(), on);
                    continue;
                }
                if m == "Reboot" || m == "FactoryReset" {
                    let want = v.as_f64().unwrap_or(0.0) as i64;
                    let had = view
                        .leaves
                        .get(m.as_str())
                        .and_then(|l| cwmp::DateTime::parse(&l.value).and_then(|d| d.to_unix()))
                        .map_or(i64::MIN, |s| s * 1000);
                    if want > had {
                        last.push(if m == "Reboot" { Change::Reboot } else { Change::FactoryReset });
                    }
                    continue;
                }
                if m.starts_with("DeviceID.") {
                    continue;
                }
                if let Some(name) = m.strip_prefix("VirtualParameters.") {
                    let cur = view.leaves.get(m.as_str());
                    let want = ty.clone().or_else(|| cur.map(|l| format!("xsd:{}", l.ty)));
                    let same = cur.is_some_and(|l| {
                        typed(m, v, want.as_deref()).is_some_and(|pv| pv.value.to_lexical() == l.value)
                    });
                    if !same {
                        virtuals.push(Change::Virtual(name.to_string(), v.clone(), want));
                    }
                    continue;
                }
                let Some(leaf) = view.leaves.get(m.as_str()) else { continue };
                let ty = ty.clone().unwrap_or_else(|| format!("xsd:{}", leaf.ty));
                let Some(pv) = typed(m, v, Some(&ty)) else { continue };
                if pv.value.to_lexical() == leaf.value && format!("xsd:{}", leaf.ty) == ty {
                    values.remove(m.as_str());
                } else {
                    values.insert(m.clone(), pv);
                }
            }
        }
        if let (Some(n), Some(last_seg)) = (d.path_set, d.pattern.segs.last()) {
            let table: Vec<String> = d.pattern.segs[..d.pattern.segs.len() - 1]
                .iter()
                .map(|s| match s {
                    Seg::Name(n) => n.clone(),
                    _ => String::new(),
                })
                .collect();
            if table.iter().any(String::is_empty) || !matches!(last_seg, Seg::Any | Seg::Alias(_)) {
                continue;
            }
            let keys: Vec<ParameterValue> = match last_seg {
                Seg::Alias(keys) => keys.iter().filter_map(|(k, v)| typed(k, &json!(v), None)).collect(),
                _ => Vec::new(),
            };
            // The same table and selection declared again: the later count stands.
            let key = (table.join("."), format!("{last_seg:?}"));
            counts.retain(|(t, _, _, _, k)| (t, k) != (&key.0, &key.1));
            counts.push((key.0, matches, n, keys, key.1));
        }
    }
    // An instance a declaration wants (one of the first `n` it matches) is not deleted by a
    // broader one (`Table.[]` with path 0 beside `Table.[Key:value]` with path 1: every other
    // instance goes, that one stays).
    let mut kept: Vec<&str> = Vec::new();
    for (_, matches, n, _, _) in &counts {
        kept.extend(matches.iter().take(*n as usize).map(String::as_str));
    }
    let mut adds = 0;
    for (table, matches, n, keys, _) in &counts {
        let have = matches.len() as u64;
        if *n > have {
            for _ in have..*n {
                // At most MAX_INSTANCES added per round (the next round adds the rest).
                if adds >= crate::provisions::MAX_INSTANCES {
                    break;
                }
                adds += 1;
                out.push(Change::Add { table: table.clone(), keys: keys.clone() });
            }
        } else {
            let extra = matches.iter().rev().filter(|m| !kept.contains(&m.as_str())).take((have - n) as usize);
            for m in extra {
                let del = Change::Delete(m.clone());
                if !out.contains(&del) {
                    out.push(del);
                }
            }
        }
    }
    let mut changes: Vec<Change> = virtuals;
    changes.extend(values.into_values().map(Change::Value));
    for (t, on) in tags {
        if view.tags.contains(&t) != on {
            changes.push(Change::Tag(t, on));
        }
    }
    changes.extend(out);
    if last.contains(&Change::FactoryReset) {
        last.retain(|c| *c == Change::FactoryReset);
    }
    last.dedup();
    changes.extend(last);
    changes
}

/// The fewest requests that fetch `needs`: one GetParameterNames (NextLevel false) per subtree
/// not below another, one (NextLevel true) per object whose children are wanted and not in one
/// of those subtrees, then GetParameterValues in batches of what is known to exist. (A value
/// below a subtree being listed waits for the listing: its name may be gone.)
pub(crate) fn fetches(needs: Vec<Need>, whole_subtrees: bool, batch: usize) -> Vec<TaskSpec> {
    let mut whole: Vec<&str> = needs
        .iter()
        .filter_map(|n| match n {
            Need::Names(o) => Some(o.as_str()),
            _ => None,
        })
        .collect();
    whole.sort();
    whole.dedup();
    let below = |o: &str, list: &[&str]| list.iter().any(|p| *p != o && o.starts_with(p));
    let whole: Vec<&str> = whole.iter().copied().filter(|o| !below(o, &whole)).collect();
    let mut out: Vec<TaskSpec> = whole
        .iter()
        .map(|o| TaskSpec::GetParameterNames { parameter_path: o.to_string(), next_level: !whole_subtrees })
        .collect();
    let mut levels: Vec<&str> = needs
        .iter()
        .filter_map(|n| match n {
            Need::Level(o) if !whole.iter().any(|p| o.starts_with(p)) => Some(o.as_str()),
            _ => None,
        })
        .collect();
    levels.sort();
    levels.dedup();
    out.extend(levels.iter().map(|o| TaskSpec::GetParameterNames { parameter_path: o.to_string(), next_level: true }));
    let values: Vec<String> = needs
        .iter()
        .filter_map(|n| match n {
            Need::Value(v) if !whole.iter().any(|p| v.starts_with(p)) => Some(v.clone()),
            _ => None,
        })
        .collect();
    for chunk in values.chunks(batch.max(1)) {
        out.push(TaskSpec::get(chunk.to_vec()));
    }
    out
}

/// What a session sent already and must not send again: secrets set (the cache never holds
/// them, and a CPE reads them back empty), Downloads, virtual parameters written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent {
    pub(crate) secrets: Vec<(String, String)>,
    pub(crate) downloads: Vec<(String, String, Option<String>)>,
    pub(crate) written: Vec<(String, Json)>,
}

impl Sent {
    /// `changes` less what was sent already.
    pub(crate) fn filter(&self, changes: Vec<Change>) -> Vec<Change> {
        changes
            .into_iter()
            .filter(|c| match c {
                Change::Value(v) => !self.secrets.contains(&(v.name.clone(), v.value.to_lexical().into_owned())),
                Change::Download(t, n, f) => !self.downloads.contains(&(t.clone(), n.clone(), f.clone())),
                Change::Virtual(name, v, _) => !self.written.contains(&(name.clone(), v.clone())),
                _ => true,
            })
            .collect()
    }
}

impl Record {
    /// Keeps the first answer to `q`.
    pub(crate) fn answered(&mut self, q: Query, a: &Option<Json>) {
        if self.asked.insert(q.clone()) {
            self.answers.push((q, a.clone()));
        }
    }
}
