//! GenieACS's provision scripts, run in the embedded engine ([`engine`]) against what the ACS
//! knows of a device ([`view`]), and the session's declarations resolved into CWMP requests.
//!
//! A session's scripts run together, in their presets' order. A script's `declare()` says what
//! it wants known (timestamps) and what it wants the device to hold (values, instance counts);
//! reading an attribute that is not known recently enough ends the run there (GenieACS's
//! commit), and the script runs again from its start once the session fetched it. Unlike
//! GenieACS, which re-runs every script at every step of the session:
//!
//! - every script's declarations of a round are fetched together: one GetParameterNames per
//!   table that must be listed, one GetParameterValues for every value wanted;
//! - every value declared to be set, by every script, goes in one SetParameterValues (whose
//!   values the cache takes as set, without reading them back), after all scripts ran to their
//!   end (or to an explicit `commit()`, which orders them);
//! - a script that ran to its end runs again only when something it read changed (its answers
//!   are compared, without running it); its declarations are kept and evaluated again.
//!
//! Built-in provisions stay in [`crate::provisions`]; virtual parameters come later.

pub mod engine;
pub mod ext;
pub mod view;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use cwmp::ParameterValue;
use serde_json::{json, Value as Json};

use crate::store::{CachedParam, Store, StoreError};
use crate::tasks::TaskSpec;
use engine::{Host, Limits, Outcome, Script, Stop};
use view::{Need, Pattern, Seg, View};

/// The most rounds (fetches, sets, extension calls) a session's scripts may take.
pub const MAX_ROUNDS: u32 = 32;
/// The most declarations one run may make.
pub const MAX_DECLARATIONS: usize = 4096;
/// The most parameters one GetParameterValues names.
const GPV_BATCH: usize = 512;

/// How scripts run: the engine's limits per run, and where `ext()` finds its programs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Time and memory of one run.
    pub limits: Limits,
    /// The extensions (none: an `ext()` call faults its script).
    pub extensions: Option<ext::Extensions>,
}

/// A provision script a preset (or a `provisions` task) asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The preset (or task) that asked; faults are recorded in its channel.
    pub preset: String,
    /// Its fault channel.
    pub channel: String,
    /// The provision's name.
    pub name: String,
    /// `args`.
    pub args: Vec<Json>,
}

#[derive(Debug, Clone)]
struct Decl {
    pattern: Pattern,
    path_get: i64,
    attr_get: BTreeMap<String, i64>,
    path_set: Option<u64>,
    value_set: Option<(Json, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Query {
    Get { decl: usize, item: Option<usize>, attr: String },
    Size { decl: usize },
}

/// What one run declared and read.
#[derive(Debug, Default)]
struct Record {
    decls: Vec<Decl>,
    answers: Vec<(Query, Option<Json>)>,
    clears: Vec<(Pattern, i64)>,
    ext: Vec<Vec<String>>,
    logs: Vec<String>,
    commit: bool,
}

/// One run's side of the sandbox.
struct RunHost {
    view: Rc<View>,
    /// Values declared earlier in the round (by any script): what a later read sees.
    overlay: Rc<RefCell<BTreeMap<String, Json>>>,
    ext_cache: Rc<HashMap<String, Json>>,
    rec: Record,
}

fn ts_of(v: &Json) -> i64 {
    v.as_f64().filter(|t| t.is_finite() && *t >= 1.0).map_or(0, |t| t.min(i64::MAX as f64) as i64)
}

/// A declaration of `declare(path, timestamps, values)`.
fn declaration(path: &str, timestamps: &Json, values: &Json) -> Result<Decl, String> {
    let pattern = Pattern::parse(path)?;
    let mut d = Decl { pattern, path_get: 1, attr_get: BTreeMap::new(), path_set: None, value_set: None };
    if let Some(vals) = values.as_object() {
        for (attr, v) in vals {
            if attr == "path" {
                let n = v.as_f64().filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= 1e6);
                d.path_set =
                    Some(n.ok_or_else(|| format!("declare {path}: values.path is a count of instances"))? as u64);
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
fn needs(view: &View, d: &Decl, out: &mut Vec<Need>) {
    let (matches, n) = view.unpack(&d.pattern, d.path_get);
    out.extend(n);
    for m in &matches {
        for (attr, ts) in &d.attr_get {
            if let Err(n) = view.attribute(m, attr, *ts) {
                out.push(n);
            }
        }
    }
}

fn answer(view: &View, overlay: &BTreeMap<String, Json>, decls: &[Decl], q: &Query) -> Result<Option<Json>, ()> {
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
fn declared_js(view: &View, path: &str, value: &Json, ty: &Option<String>) -> Json {
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

impl Host for RunHost {
    fn declare(&mut self, path: &str, timestamps: &Json, values: &Json) -> Result<usize, Stop> {
        if self.rec.decls.len() >= MAX_DECLARATIONS {
            return Err(Stop::Type(format!("at most {MAX_DECLARATIONS} declarations in a run")));
        }
        let d = declaration(path, timestamps, values).map_err(Stop::Type)?;
        if let Some((v, ty)) = &d.value_set {
            let (matches, _) = self.view.unpack(&d.pattern, d.path_get);
            let mut overlay = self.overlay.borrow_mut();
            for m in matches {
                let js = declared_js(&self.view, &m, v, ty);
                overlay.insert(m, js);
            }
        }
        self.rec.decls.push(d);
        Ok(self.rec.decls.len() - 1)
    }

    fn get(&mut self, decl: usize, item: Option<usize>, attr: &str) -> Result<Option<Json>, Stop> {
        if decl >= self.rec.decls.len() {
            return Err(Stop::Type("not a declaration of this run".into()));
        }
        let q = Query::Get { decl, item, attr: attr.to_string() };
        let a = answer(&self.view, &self.overlay.borrow(), &self.rec.decls, &q).map_err(|()| Stop::Interrupt)?;
        self.rec.answers.push((q, a.clone()));
        Ok(a)
    }

    fn size(&mut self, decl: usize) -> Result<Option<usize>, Stop> {
        if decl >= self.rec.decls.len() {
            return Err(Stop::Type("not a declaration of this run".into()));
        }
        let q = Query::Size { decl };
        let a = answer(&self.view, &self.overlay.borrow(), &self.rec.decls, &q).map_err(|()| Stop::Interrupt)?;
        self.rec.answers.push((q, a.clone()));
        Ok(a.and_then(|n| n.as_u64()).map(|n| n as usize))
    }

    fn clear(&mut self, path: &str, timestamp: f64, _attributes: &Json) -> Result<(), Stop> {
        let pattern = Pattern::parse(path).map_err(Stop::Type)?;
        let ts = ts_of(&json!(timestamp));
        // Clearing changes what later reads see: the session clears, then the script runs again.
        if stale(&self.view, &pattern, ts) {
            self.rec.clears.push((pattern, ts));
            return Err(Stop::Interrupt);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Stop> {
        let mut n = Vec::new();
        for d in &self.rec.decls {
            needs(&self.view, d, &mut n);
        }
        if !n.is_empty() || !sets(&self.view, &self.rec.decls).is_empty() {
            self.rec.commit = true;
            return Err(Stop::Interrupt);
        }
        Ok(())
    }

    fn ext(&mut self, call: Vec<String>) -> Result<Json, Stop> {
        let key = Json::from(call.clone()).to_string();
        match self.ext_cache.get(&key) {
            Some(v) => Ok(v.clone()),
            None => {
                self.rec.ext.push(call);
                Err(Stop::Interrupt)
            }
        }
    }

    fn log(&mut self, message: String) {
        self.rec.logs.push(message);
    }
}

/// Whether `clear(pattern, ts)` would forget anything.
fn stale(view: &View, pattern: &Pattern, ts: i64) -> bool {
    view.leaves.iter().any(|(name, l)| l.at < ts && pattern.could_match(name) && depth_ok(pattern, name))
}

fn depth_ok(pattern: &Pattern, name: &str) -> bool {
    name.split('.').count() >= pattern.segs.len()
}

/// A change a round's declarations come to.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Value(ParameterValue),
    Tag(String, bool),
    Add { table: String, keys: Vec<ParameterValue> },
    Delete(String),
    Reboot,
    FactoryReset,
}

fn typed(path: &str, value: &Json, ty: Option<&str>) -> Option<ParameterValue> {
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
fn sets(view: &View, decls: &[Decl]) -> Vec<Change> {
    let mut values: BTreeMap<String, ParameterValue> = BTreeMap::new();
    let mut tags: BTreeMap<String, bool> = BTreeMap::new();
    let mut out = Vec::new();
    let mut last = Vec::new();
    let mut counts: Vec<(String, Vec<String>, u64, Vec<ParameterValue>)> = Vec::new();
    for d in decls {
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
            counts.push((table.join("."), matches, n, keys));
        }
    }
    // An instance a declaration wants (one of the first `n` it matches) is not deleted by a
    // broader one (`Table.[]` with path 0 beside `Table.[Key:value]` with path 1: every other
    // instance goes, that one stays).
    let mut kept: Vec<&str> = Vec::new();
    for (_, matches, n, _) in &counts {
        kept.extend(matches.iter().take(*n as usize).map(String::as_str));
    }
    for (table, matches, n, keys) in &counts {
        let have = matches.len() as u64;
        if *n > have {
            for _ in have..*n {
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
    let mut changes: Vec<Change> = Vec::new();
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

/// A script of the session and how far it got.
#[derive(Debug)]
struct Entry {
    call: Call,
    script: Script,
    /// Its last run, if it ran to its end.
    done: Option<Record>,
}

/// What the session does next for its scripts.
#[derive(Debug)]
pub enum Next {
    /// Send these (each with the preset that asked), then ask again.
    Send(Vec<(String, TaskSpec)>),
    /// Every script ran to its end and the device holds what they declared.
    Done,
}

/// A script that failed, for its channel's fault.
#[derive(Debug, Clone)]
pub struct ScriptFault {
    /// The call.
    pub call: Call,
    /// GenieACS's fault code: `script.<ErrorName>`, `script.timeout`, `script.memory`, ...
    pub code: String,
    /// The message, naming the script and line.
    pub message: String,
    /// The stack.
    pub detail: String,
}

/// Counts of a session's scripts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Script runs.
    pub runs: u32,
    /// Rounds (each a batch of requests, or an extension call).
    pub rounds: u32,
}

/// A session's provision scripts.
pub struct Provisioning {
    device: String,
    /// `Date.now()` of the session (ms, a whole second: the cache's precision).
    now_ms: i64,
    seed: u32,
    entries: Vec<Entry>,
    ext_cache: HashMap<String, Json>,
    settings: Settings,
    /// Counts so far.
    pub stats: Stats,
}

impl std::fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioning").field("device", &self.device).field("stats", &self.stats).finish()
    }
}

fn seed(device: &str) -> u32 {
    // FNV-1a: the same device draws the same numbers in every run.
    device.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

impl Provisioning {
    /// The scripts `calls` name, from the store; a call naming no stored provision is a fault.
    pub fn new(
        store: &dyn Store,
        device: &str,
        now: i64,
        calls: Vec<Call>,
        settings: &Settings,
    ) -> Result<(Provisioning, Vec<ScriptFault>), StoreError> {
        let scripts: HashMap<String, String> =
            store.scripts(crate::store::ScriptKind::Provision)?.into_iter().collect();
        let mut faults = Vec::new();
        let mut entries = Vec::new();
        for call in calls {
            match scripts.get(&call.name) {
                Some(source) => entries.push(Entry {
                    script: Script { name: call.name.clone(), source: source.clone() },
                    call,
                    done: None,
                }),
                None => faults.push(ScriptFault {
                    code: "script.missing".into(),
                    message: format!("no provision {} is stored", call.name),
                    detail: String::new(),
                    call,
                }),
            }
        }
        let p = Provisioning {
            device: device.to_string(),
            now_ms: now.saturating_mul(1000),
            seed: seed(device),
            entries,
            ext_cache: HashMap::new(),
            settings: settings.clone(),
            stats: Stats::default(),
        };
        Ok((p, faults))
    }

    /// Whether no script is left.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the scripts of `channel` (its fault holds them back).
    pub fn drop_channel(&mut self, channel: &str) {
        self.entries.retain(|e| e.call.channel != channel);
    }

    /// Runs what must run, and says what to send next (faults of scripts that threw are
    /// returned; those scripts are dropped with their channel's others).
    pub fn next(&mut self, store: &dyn Store, now: i64) -> Result<(Next, Vec<ScriptFault>), StoreError> {
        let mut faults = Vec::new();
        loop {
            if self.entries.is_empty() {
                return Ok((Next::Done, faults));
            }
            self.stats.rounds += 1;
            if self.stats.rounds > MAX_ROUNDS {
                for e in self.entries.drain(..) {
                    faults.push(ScriptFault {
                        code: "script.unstable".into(),
                        message: format!(
                            "provision {}: the session's scripts did not settle in {MAX_ROUNDS} rounds",
                            e.call.name
                        ),
                        detail: String::new(),
                        call: e.call,
                    });
                }
                return Ok((Next::Done, faults));
            }
            let view = Rc::new(View::load(store, &self.device)?);
            let overlay: Rc<RefCell<BTreeMap<String, Json>>> = Rc::default();
            let ext_cache = Rc::new(self.ext_cache.clone());
            let mut interrupted: Vec<Record> = Vec::new();
            let mut failed: Vec<usize> = Vec::new();
            for (i, e) in self.entries.iter_mut().enumerate() {
                // A script that ran to its end runs again only when an answer it got changed.
                if let Some(rec) = &e.done {
                    let same = rec
                        .answers
                        .iter()
                        .all(|(q, a)| answer(&view, &overlay.borrow(), &rec.decls, q).is_ok_and(|b| b == *a));
                    if same {
                        let mut o = overlay.borrow_mut();
                        for d in &rec.decls {
                            if let Some((v, ty)) = &d.value_set {
                                for m in view.unpack(&d.pattern, d.path_get).0 {
                                    let js = declared_js(&view, &m, v, ty);
                                    o.insert(m, js);
                                }
                            }
                        }
                        continue;
                    }
                }
                let host = Rc::new(RefCell::new(RunHost {
                    view: view.clone(),
                    overlay: overlay.clone(),
                    ext_cache: ext_cache.clone(),
                    rec: Record::default(),
                }));
                self.stats.runs += 1;
                let args = Json::Array(e.call.args.clone());
                let outcome = engine::run(&e.script, &args, self.now_ms, self.seed, host.clone(), self.settings.limits);
                let rec = std::mem::take(&mut host.borrow_mut().rec);
                match outcome {
                    Outcome::Done(_) => {
                        for l in &rec.logs {
                            tracing::info!(device = %self.device, provision = %e.call.name, "script: {l}");
                        }
                        e.done = Some(rec);
                    }
                    Outcome::Interrupted => {
                        e.done = None;
                        interrupted.push(rec);
                    }
                    Outcome::Fault(err) => {
                        e.done = None;
                        let code = format!("script.{}", err.name);
                        let message = format!("provision {}: {err}", e.call.name);
                        tracing::warn!(device = %self.device, provision = %e.call.name, "{message}");
                        faults.push(ScriptFault { call: e.call.clone(), code, message, detail: err.stack });
                        failed.push(i);
                    }
                }
            }
            // A script's fault holds back its channel.
            let channels: Vec<String> = failed.iter().map(|i| self.entries[*i].call.channel.clone()).collect();
            self.entries.retain(|e| !channels.contains(&e.call.channel));
            let decls: Vec<Decl> = self
                .entries
                .iter()
                .filter_map(|e| e.done.as_ref())
                .chain(interrupted.iter())
                .flat_map(|r| r.decls.iter().cloned())
                .collect();
            // Clears first: they change what the rest needs.
            let clears: Vec<(Pattern, i64)> = interrupted.iter().flat_map(|r| r.clears.iter().cloned()).collect();
            if !clears.is_empty() {
                let forget: Vec<String> = view
                    .leaves
                    .iter()
                    .filter(|(n, l)| clears.iter().any(|(p, ts)| l.at < *ts && p.could_match(n) && depth_ok(p, n)))
                    .map(|(n, _)| n.clone())
                    .collect();
                store.forget_param_names(&self.device, &forget)?;
                continue;
            }
            let calls: Vec<Vec<String>> = interrupted.iter().flat_map(|r| r.ext.iter().cloned()).collect();
            if !calls.is_empty() {
                for c in calls {
                    let key = Json::from(c.clone()).to_string();
                    let result = match &self.settings.extensions {
                        Some(x) => x.call(&c),
                        None => Err("no extensions are configured ([scripts] extensions_dir)".into()),
                    };
                    match result {
                        Ok(v) => drop(self.ext_cache.insert(key, v)),
                        Err(msg) => {
                            let who: Vec<usize> =
                                (0..self.entries.len()).filter(|i| self.entries[*i].done.is_none()).collect();
                            for i in who.into_iter().rev() {
                                let e = self.entries.remove(i);
                                faults.push(ScriptFault {
                                    code: "ext".into(),
                                    message: format!("provision {}: ext({}): {msg}", e.call.name, c.join(", ")),
                                    detail: String::new(),
                                    call: e.call,
                                });
                            }
                            break;
                        }
                    }
                }
                continue;
            }
            let mut wanted = Vec::new();
            for d in &decls {
                needs(&view, d, &mut wanted);
            }
            wanted.sort();
            wanted.dedup();
            let preset = self.entries.first().map(|e| e.call.preset.clone()).unwrap_or_default();
            if !wanted.is_empty() {
                return Ok((Next::Send(fetches(wanted).into_iter().map(|t| (preset.clone(), t)).collect()), faults));
            }
            let changes = sets(&view, &decls);
            if changes.is_empty() {
                if interrupted.is_empty() {
                    return Ok((Next::Done, faults));
                }
                // Interrupted with nothing to fetch, set or call: cannot happen but by a bug;
                // the round limit ends it.
                continue;
            }
            let mut tasks = Vec::new();
            let mut values = Vec::new();
            let mut tags_changed = false;
            for c in changes {
                match c {
                    Change::Value(v) => values.push(v),
                    Change::Tag(t, on) => {
                        let mut tags = view.tags.clone();
                        if on {
                            tags.push(t);
                        } else {
                            tags.retain(|x| *x != t);
                        }
                        store.set_tags(&self.device, &tags)?;
                        tags_changed = true;
                    }
                    Change::Add { table, keys } => {
                        tasks.push(TaskSpec::AddObject { object_name: format!("{table}."), parameter_values: keys })
                    }
                    Change::Delete(path) => tasks.push(TaskSpec::DeleteObject { object_name: format!("{path}.") }),
                    Change::Reboot | Change::FactoryReset => {
                        let name = if c == Change::Reboot { "Reboot" } else { "FactoryReset" };
                        let at = CachedParam {
                            name: name.into(),
                            ty: "dateTime".into(),
                            value: cwmp::DateTime::from_unix(now).as_str().to_string(),
                            updated: now,
                        };
                        store.cache_params(&self.device, &[at])?;
                        tasks.push(if c == Change::Reboot { TaskSpec::Reboot } else { TaskSpec::FactoryReset });
                    }
                }
            }
            if !values.is_empty() {
                tasks.insert(0, TaskSpec::set(values));
            }
            if tasks.is_empty() && tags_changed {
                continue;
            }
            return Ok((Next::Send(tasks.into_iter().map(|t| (preset.clone(), t)).collect()), faults));
        }
    }
}

/// The fewest requests that fetch `needs`: one GetParameterNames (NextLevel false) per subtree
/// not below another, one (NextLevel true) per object whose children are wanted and not in one
/// of those subtrees, then GetParameterValues in batches of what is known to exist. (A value
/// below a subtree being listed waits for the listing: its name may be gone.)
fn fetches(needs: Vec<Need>) -> Vec<TaskSpec> {
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
        .map(|o| TaskSpec::GetParameterNames { parameter_path: o.to_string(), next_level: false })
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
    for chunk in values.chunks(GPV_BATCH) {
        out.push(TaskSpec::get(chunk.to_vec()));
    }
    out
}
