//! The session's side: the scripts, built-ins, virtual parameters and the ACS's own
//! declarations it runs, round after round, and what each round comes to (fetches, extension
//! calls, clears, sets, faults).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use cwmp::ParameterValue;
use serde_json::{json, Value as Json};

use super::decl::{
    answer, declared_js, depth_ok, fetches, needs, sets, typed, Change, Decl, Declared, Record, Sent,
    GENIEACS_GPV_BATCH, GPV_BATCH,
};
use super::engine::{self, Outcome, Script, Stop};
use super::host::RunHost;
use super::view::{self, Need, Pattern, View};
use super::{Call, Settings, Strategy, MAX_ROUNDS};
use crate::store::{CachedParam, Store, StoreError};
use crate::tasks::TaskSpec;

/// What an entry of the session runs.
#[derive(Debug, Clone)]
enum Source {
    /// A provision script.
    Script(Script),
    /// A built-in provision of a `provisions` task that also names scripts: its declarations,
    /// made once per session (a relative instance count counts what was there at the start).
    BuiltIn(crate::provisions::Provision),
    /// Declarations of the ACS's own (a task's reads and writes of virtual parameters).
    Declarations(Vec<Decl>),
    /// A virtual parameter's script, with what was declared of it: how fresh (ms), and the
    /// value to write.
    Virtual { script: Script, ts: i64, set: Option<Declared> },
}

/// One thing the session runs, and how far it got.
#[derive(Debug)]
struct Entry {
    call: Call,
    source: Source,
    /// Its last run, if it ran to its end.
    done: Option<Record>,
}

/// How one entry's run ended.
enum Ran {
    Done(Record, Json),
    Interrupted(Record),
    Fault(engine::Error),
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
    /// Script runs (provisions and virtual parameters).
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
    ext_cache: std::sync::Arc<HashMap<String, Json>>,
    settings: Settings,
    /// What this session sent already (secrets, Downloads, virtual parameters written).
    sent: Sent,
    /// [`Strategy::Revisions`]: the last run of every script, after the last change, is done.
    verified: bool,
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

/// The declarations of a built-in provision (as GenieACS's default provisions make them).
fn built_in(p: &crate::provisions::Provision, view: &View, now_ms: i64) -> Result<Record, Stop> {
    use crate::provisions::{Count, Provision, Select};
    let mut rec = Record::default();
    let decl = |path: &str| Pattern::parse(path).map_err(Stop::Type);
    match p {
        Provision::Refresh { path, age } => {
            let t = age.map_or(now_ms, |a| now_ms - a.saturating_mul(1000));
            let mut d = Decl::of(decl(path)?);
            d.attr_get.insert("value".into(), t);
            if path.ends_with('.') {
                d.deep = true;
                d.path_get = t;
            }
            rec.decls.push(d);
        }
        Provision::Value { value, typed } => {
            let mut d = Decl::of(decl(&value.name)?);
            d.attr_get.insert("value".into(), 1);
            let ty = typed.then(|| value.value.xsd_type().qname().to_string());
            d.value_set = Some((json!(value.value.to_lexical()), ty));
            rec.decls.push(d);
        }
        Provision::Tag { tag, on } => {
            let mut d = Decl::of(decl(&format!("Tags.{tag}"))?);
            d.value_set = Some((json!(on), None));
            rec.decls.push(d);
        }
        Provision::Reboot | Provision::Reset => {
            let mut d = Decl::of(decl(if *p == Provision::Reboot { "Reboot" } else { "FactoryReset" })?);
            d.value_set = Some((json!(now_ms), None));
            rec.decls.push(d);
        }
        Provision::Download { file_type, file_name, target_file_name } => {
            // GenieACS declares it with the session's time: once per session.
            let mut d = Decl::of(decl("Downloads")?);
            d.download = Some((file_type.clone(), file_name.clone(), target_file_name.clone()));
            rec.decls.push(d);
        }
        Provision::Script { .. } => {}
        Provision::Instances { table, select, count } => {
            let path = match select {
                Select::All => format!("{table}.*"),
                Select::Number(n) => format!("{table}.{n}"),
                Select::Alias(keys) => {
                    let keys: Vec<String> =
                        keys.iter().map(|(k, v)| format!("{k}:{}", crate::presets::lexical(v))).collect();
                    format!("{table}.[{}]", keys.join(","))
                }
            };
            let mut d = Decl::of(decl(&path)?);
            let n = match count {
                Count::Exactly(n) => *n,
                Count::Relative(delta) => {
                    let (m, needs) = view.unpack(&d.pattern, 1);
                    if !needs.is_empty() {
                        rec.decls.push(d);
                        return Ok(rec);
                    }
                    m.len() as i64 + delta
                }
            };
            d.path_set = Some(n.max(0) as u64);
            rec.decls.push(d);
        }
    }
    Ok(rec)
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
                    source: Source::Script(Script { name: call.name.clone(), source: source.clone() }),
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
            ext_cache: std::sync::Arc::default(),
            settings: settings.clone(),
            sent: Sent::default(),
            verified: false,
            stats: Stats::default(),
        };
        Ok((p, faults))
    }

    /// A `provisions` task's provisions (built-ins and scripts, in order), run as one.
    pub fn for_task(
        store: &dyn Store,
        device: &str,
        now: i64,
        task: &str,
        provisions: &[crate::provisions::ProvisionCall],
        settings: &Settings,
    ) -> Result<(Provisioning, Vec<ScriptFault>), StoreError> {
        let mut calls = Vec::new();
        let mut built_ins = Vec::new();
        for (i, p) in provisions.iter().enumerate() {
            let call = |name: &str, args: Vec<Json>| Call {
                preset: task.to_string(),
                channel: task.to_string(),
                name: name.to_string(),
                args,
            };
            match &p.step {
                crate::provisions::Provision::Script { name, args } => calls.push((i, call(name, args.clone()))),
                b => built_ins.push((i, call(p.name(), Vec::new()), b.clone())),
            }
        }
        let (mut prov, faults) =
            Provisioning::new(store, device, now, calls.iter().map(|(_, c)| c.clone()).collect(), settings)?;
        // In the task's order.
        let mut order: Vec<(usize, Entry)> = Vec::new();
        let mut scripts = prov.entries.drain(..);
        for (i, c) in &calls {
            if !faults.iter().any(|f| f.call == *c) {
                if let Some(e) = scripts.next() {
                    order.push((*i, e));
                }
            }
        }
        drop(scripts);
        for (i, call, b) in built_ins {
            order.push((i, Entry { call, source: Source::BuiltIn(b), done: None }));
        }
        order.sort_by_key(|(i, _)| *i);
        prov.entries = order.into_iter().map(|(_, e)| e).collect();
        Ok((prov, faults))
    }

    /// Reads (`get`: `[name]`) and writes (`set`: values) of virtual parameters that a task asks
    /// for, and refreshes of every one (`all`): their scripts run as the session's.
    pub fn for_virtual_parameters(
        device: &str,
        now: i64,
        task: &str,
        get: &[String],
        set: &[ParameterValue],
        settings: &Settings,
    ) -> Provisioning {
        let now_ms = now.saturating_mul(1000);
        let mut decls = Vec::new();
        for name in get {
            if let Ok(pattern) = Pattern::parse(name) {
                let mut d = Decl::of(pattern);
                d.path_get = now_ms;
                // A partial path is its whole subtree, as GetParameterValues reads it.
                d.deep = name.ends_with('.');
                d.attr_get.insert("value".into(), now_ms);
                decls.push(d);
            }
        }
        for v in set {
            if let Ok(pattern) = Pattern::parse(&v.name) {
                let mut d = Decl::of(pattern);
                d.attr_get.insert("value".into(), 1);
                d.value_set = Some((json!(v.value.to_lexical()), Some(v.value.xsd_type().qname().to_string())));
                decls.push(d);
            }
        }
        let call =
            Call { preset: task.to_string(), channel: task.to_string(), name: task.to_string(), args: Vec::new() };
        Provisioning {
            device: device.to_string(),
            now_ms,
            seed: seed(device),
            entries: vec![Entry { call, source: Source::Declarations(decls), done: None }],
            ext_cache: std::sync::Arc::default(),
            settings: settings.clone(),
            sent: Sent::default(),
            verified: false,
            stats: Stats::default(),
        }
    }

    /// Whether no script is left.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the scripts of `channel` (its fault holds them back).
    pub fn drop_channel(&mut self, channel: &str) {
        self.entries.retain(|e| e.call.channel != channel);
    }

    fn run(&mut self, i: usize, view: &Rc<View>, overlay: &Rc<RefCell<BTreeMap<String, Json>>>) -> Ran {
        let e = &self.entries[i];
        let (script, args) = match &e.source {
            Source::BuiltIn(b) => {
                return match built_in(b, view, self.now_ms) {
                    Ok(rec)
                        if rec.decls.iter().all(|d| {
                            d.path_set.is_some()
                                || !matches!(
                                    b,
                                    crate::provisions::Provision::Instances {
                                        count: crate::provisions::Count::Relative(_),
                                        ..
                                    }
                                )
                        }) =>
                    {
                        Ran::Done(rec, Json::Null)
                    }
                    Ok(rec) => Ran::Interrupted(rec),
                    Err(Stop::Type(m)) => Ran::Fault(engine::Error {
                        name: "Error".into(),
                        message: m,
                        line: None,
                        column: None,
                        stack: String::new(),
                    }),
                    Err(Stop::Interrupt) => Ran::Interrupted(Record::default()),
                };
            }
            Source::Declarations(d) => return Ran::Done(Record { decls: d.clone(), ..Record::default() }, Json::Null),
            Source::Script(s) => (s, Json::Array(e.call.args.clone())),
            Source::Virtual { script, ts, set } => {
                let path = format!("VirtualParameters.{}", script.name);
                let (cur_ts, cur_values) = match view.leaves.get(&path) {
                    Some(l) => (json!({"path": l.at, "value": l.at}), json!({"value": view::js_value(l)})),
                    None => (json!({}), json!({})),
                };
                let mut dts = json!({"path": ts, "value": ts});
                let mut dvalues = json!({});
                if let Some((v, ty)) = set {
                    dts["value"] = json!(self.now_ms);
                    dvalues["value"] = json!([v, ty.clone().unwrap_or_else(|| "xsd:string".into())]);
                }
                (script, json!([dts, dvalues, cur_ts, cur_values]))
            }
        };
        let host = Rc::new(RefCell::new(RunHost {
            view: view.clone(),
            overlay: overlay.clone(),
            ext_cache: self.ext_cache.clone(),
            sent: Rc::new(self.sent.clone()),
            rec: Record::default(),
        }));
        self.stats.runs += 1;
        let outcome = engine::run(script, &args, self.now_ms, self.seed, host.clone(), self.settings.limits);
        let rec = std::mem::take(&mut host.borrow_mut().rec);
        match outcome {
            Outcome::Done(ret) => Ran::Done(rec, ret),
            Outcome::Interrupted => Ran::Interrupted(rec),
            Outcome::Fault(err) => Ran::Fault(err),
        }
    }

    /// A virtual parameter's returned attributes, cached as the device's parameter.
    fn keep_virtual(&self, store: &dyn Store, name: &str, ret: &Json, now: i64) -> Result<(), String> {
        let value = ret.get("value").ok_or("a virtual parameter's script returns {writable, value}")?;
        let (v, ty) = match value {
            Json::Array(a) if !a.is_empty() => (a[0].clone(), a.get(1).and_then(Json::as_str).map(str::to_string)),
            Json::Array(_) => return Err("a virtual parameter's value is [value, type]".into()),
            v => (v.clone(), None),
        };
        let ty = ty.unwrap_or_else(|| {
            match &v {
                Json::Bool(_) => "xsd:boolean",
                Json::Number(n) if n.is_u64() => "xsd:unsignedInt",
                Json::Number(_) => "xsd:int",
                _ => "xsd:string",
            }
            .to_string()
        });
        let path = format!("VirtualParameters.{name}");
        let pv = typed(&path, &v, Some(&ty)).ok_or_else(|| format!("{v} is not a value of type {ty}"))?;
        let cached = CachedParam::from_value(&pv, now);
        store.cache_params(&self.device, &[cached]).map_err(|e| e.to_string())?;
        let writable = ret.get("writable").and_then(Json::as_bool).unwrap_or(false);
        let info = crate::store::PathInfo { name: path, writable: Some(writable), ..Default::default() };
        store.cache_path_info(&self.device, &[info]).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn fault(&self, call: &Call, code: String, message: String, detail: String) -> ScriptFault {
        tracing::warn!(device = %self.device, provision = %call.name, "{message}");
        ScriptFault { call: call.clone(), code, message, detail }
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
                for e in std::mem::take(&mut self.entries) {
                    let msg = format!(
                        "provision {}: the session's scripts did not settle in {MAX_ROUNDS} rounds",
                        e.call.name
                    );
                    faults.push(self.fault(&e.call, "script.unstable".into(), msg, String::new()));
                }
                return Ok((Next::Done, faults));
            }
            let view = Rc::new(View::load(store, &self.device)?);
            let overlay: Rc<RefCell<BTreeMap<String, Json>>> = Rc::default();
            let mut interrupted: Vec<(usize, Record)> = Vec::new();
            let mut failed: Vec<String> = Vec::new();
            let mut kept_virtual = false;
            for i in 0..self.entries.len() {
                // An entry that ran to its end runs again only when an answer it got changed;
                // a built-in's declarations are made once.
                if let Some(rec) = &self.entries[i].done {
                    let frozen = matches!(self.entries[i].source, Source::BuiltIn(_) | Source::Declarations(_));
                    let same = frozen
                        || self.settings.strategy == Strategy::Merged
                            && rec
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
                let ran = self.run(i, &view, &overlay);
                let e = &self.entries[i];
                match ran {
                    Ran::Done(rec, ret) => {
                        for l in &rec.logs {
                            tracing::info!(device = %self.device, provision = %e.call.name, "script: {l}");
                        }
                        if let Source::Virtual { script, .. } = &e.source {
                            if let Err(why) = self.keep_virtual(store, &script.name, &ret, now) {
                                let msg = format!("virtual parameter {}: {why}", script.name);
                                faults.push(self.fault(&e.call, "script.virtualParameter".into(), msg, String::new()));
                                failed.push(e.call.channel.clone());
                                continue;
                            }
                            kept_virtual = true;
                        }
                        self.entries[i].done = Some(rec);
                    }
                    Ran::Interrupted(rec) => {
                        self.entries[i].done = None;
                        interrupted.push((i, rec));
                    }
                    Ran::Fault(err) => {
                        let what =
                            if matches!(e.source, Source::Virtual { .. }) { "virtual parameter" } else { "provision" };
                        let name = match &e.source {
                            Source::Virtual { script, .. } => script.name.clone(),
                            _ => e.call.name.clone(),
                        };
                        let msg = format!("{what} {name}: {err}");
                        faults.push(self.fault(&e.call, format!("script.{}", err.name), msg, err.stack));
                        failed.push(e.call.channel.clone());
                    }
                }
            }
            // A fault holds back its channel's other scripts.
            if !failed.is_empty() {
                self.entries.retain(|e| !failed.contains(&e.call.channel));
                interrupted.clear();
                continue;
            }
            if kept_virtual {
                // Who read them runs again with their values.
                continue;
            }
            let decls: Vec<Decl> = self
                .entries
                .iter()
                .filter_map(|e| e.done.as_ref())
                .chain(interrupted.iter().map(|(_, r)| r))
                .flat_map(|r| r.decls.iter().cloned())
                .collect();
            // Clears first: they change what the rest needs.
            let clears: Vec<(Pattern, i64)> = interrupted.iter().flat_map(|(_, r)| r.clears.iter().cloned()).collect();
            if !clears.is_empty() {
                let forget: Vec<String> = view
                    .leaves
                    .iter()
                    .filter(|(n, l)| clears.iter().any(|(p, ts)| l.at < *ts && p.could_match(n) && depth_ok(p, n)))
                    .map(|(n, _)| n.clone())
                    .collect();
                store.forget_param_names(&self.device, &forget)?;
                // What was cleared is not known any more, not known to be gone: the objects it
                // was listed in are listed again when it is next declared.
                let unlist: Vec<crate::store::PathInfo> = view
                    .listed_before(&clears, &forget)
                    .into_iter()
                    .map(|name| crate::store::PathInfo { name, listed: Some(0), ..Default::default() })
                    .collect();
                store.cache_path_info(&self.device, &unlist)?;
                continue;
            }
            // Extensions next: each called once per session.
            let calls: Vec<(usize, Vec<String>)> =
                interrupted.iter().flat_map(|(i, r)| r.ext.iter().map(move |c| (*i, c.clone()))).collect();
            if !calls.is_empty() {
                let mut broken: Vec<String> = Vec::new();
                for (i, c) in calls {
                    let key = Json::from(c.clone()).to_string();
                    if self.ext_cache.contains_key(&key) {
                        continue;
                    }
                    let result = match &self.settings.extensions {
                        Some(x) => x.call(&c),
                        None => Err("no extensions are configured ([scripts] extensions_dir)".into()),
                    };
                    match result {
                        Ok(v) => drop(std::sync::Arc::make_mut(&mut self.ext_cache).insert(key, v)),
                        Err(msg) => {
                            let call = self.entries[i].call.clone();
                            let msg = format!("provision {}: ext({}): {msg}", call.name, c.join(", "));
                            faults.push(self.fault(&call, "ext".into(), msg, String::new()));
                            broken.push(call.channel);
                        }
                    }
                }
                self.entries.retain(|e| !broken.contains(&e.call.channel));
                continue;
            }
            let mut wanted = Vec::new();
            for d in &decls {
                needs(&view, d, &mut wanted);
            }
            wanted.sort();
            wanted.dedup();
            // Virtual parameters wanted fresher than cached: their scripts run first (one that
            // runs already is waiting for what the rest of `wanted` fetches).
            let running = |name: &str| {
                self.entries.iter().any(|e| matches!(&e.source, Source::Virtual { script, .. } if script.name == name))
            };
            let virtuals: Vec<String> = wanted
                .iter()
                .filter_map(|n| match n {
                    Need::Virtual(v) if !running(v) => Some(v.clone()),
                    _ => None,
                })
                .collect();
            wanted.retain(|n| !matches!(n, Need::Virtual(_)));
            // Who declared a virtual parameter: its script runs in that one's channel.
            let owner =
                |entries: &[Entry], interrupted: &[(usize, Record)], name: &str| {
                    let path = format!("VirtualParameters.{name}");
                    let declares = |r: &Record| r.decls.iter().any(|d| d.pattern.could_match(&path));
                    interrupted.iter().find(|(_, r)| declares(r)).map(|(i, _)| entries[*i].call.clone()).or_else(|| {
                        entries.iter().find(|e| e.done.as_ref().is_some_and(declares)).map(|e| e.call.clone())
                    })
                };
            if !virtuals.is_empty() {
                let ts = decls.iter().flat_map(|d| d.attr_get.values()).copied().max().unwrap_or(self.now_ms);
                let list = virtuals
                    .into_iter()
                    .map(|v| {
                        let o = owner(&self.entries, &interrupted, &v);
                        (v, None, o)
                    })
                    .collect();
                self.add_virtuals(store, list, ts, &mut faults)?;
                continue;
            }
            let preset = self.entries.first().map(|e| e.call.preset.clone()).unwrap_or_default();
            let revisions = self.settings.strategy == Strategy::Revisions;
            let changes = self.sent.filter(sets(&view, &decls));
            if !wanted.is_empty() {
                let batch = if revisions { GENIEACS_GPV_BATCH } else { GPV_BATCH };
                let mut list = fetches(wanted, !revisions, batch);
                if revisions {
                    // GenieACS sets what was declared by this step at this step.
                    let plain: Vec<Change> =
                        changes.into_iter().filter(|c| !matches!(c, Change::Virtual(..))).collect();
                    list.extend(self.requests(store, &view, plain, now)?.0);
                }
                let sent =
                    list.into_iter().map(|t| (self.owner_of(&t, &interrupted).unwrap_or_else(|| preset.clone()), t));
                return Ok((Next::Send(sent.collect()), faults));
            }
            let writes: Vec<(String, Declared)> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Virtual(name, v, ty) => Some((name.clone(), (v.clone(), ty.clone()))),
                    _ => None,
                })
                .collect();
            if !writes.is_empty() {
                for (name, (v, _)) in &writes {
                    self.sent.written.push((name.clone(), v.clone()));
                }
                let list = writes
                    .into_iter()
                    .map(|(n, s)| {
                        let o = owner(&self.entries, &interrupted, &n);
                        (n, Some(s), o)
                    })
                    .collect();
                self.add_virtuals(store, list, self.now_ms, &mut faults)?;
                continue;
            }
            let changes: Vec<Change> = changes.into_iter().filter(|c| !matches!(c, Change::Virtual(..))).collect();
            if changes.is_empty() {
                if interrupted.is_empty() && revisions && !self.verified {
                    // GenieACS runs every script once more after the last change.
                    self.verified = true;
                    for e in &mut self.entries {
                        if matches!(e.source, Source::Script(_) | Source::Virtual { .. }) {
                            e.done = None;
                        }
                    }
                    continue;
                }
                if interrupted.is_empty() {
                    return Ok((Next::Done, faults));
                }
                // Interrupted with nothing to fetch, set or call: cannot happen but by a bug;
                // the round limit ends it.
                continue;
            }
            let (tasks, tags_changed) = self.requests(store, &view, changes, now)?;
            self.verified = false;
            if tasks.is_empty() && tags_changed {
                continue;
            }
            let sent =
                tasks.into_iter().map(|t| (self.owner_of(&t, &interrupted).unwrap_or_else(|| preset.clone()), t));
            return Ok((Next::Send(sent.collect()), faults));
        }
    }

    /// The requests `changes` come to (values in one SetParameterValues first, reboot and
    /// reset last); tags are changed in the store here. Whether tags changed.
    fn requests(
        &mut self,
        store: &dyn Store,
        view: &View,
        changes: Vec<Change>,
        now: i64,
    ) -> Result<(Vec<TaskSpec>, bool), StoreError> {
        let mut tasks = Vec::new();
        let mut values = Vec::new();
        let mut downloads = Vec::new();
        let mut tags = view.tags.clone();
        let mut tags_changed = false;
        for c in changes {
            match c {
                Change::Value(v) => {
                    if crate::tasks::secret_name(&v.name) {
                        self.sent.secrets.push((v.name.clone(), v.value.to_lexical().into_owned()));
                    }
                    values.push(v)
                }
                Change::Tag(t, on) => {
                    if on {
                        if !tags.contains(&t) {
                            tags.push(t);
                        }
                    } else {
                        tags.retain(|x| *x != t);
                    }
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
                Change::Download(file_type, file_name, target_file_name) => {
                    let d = (file_type.clone(), file_name.clone(), target_file_name.clone());
                    if !self.sent.downloads.contains(&d) {
                        self.sent.downloads.push(d);
                        downloads.push(TaskSpec::Download { file: None, file_type, file_name, target_file_name });
                    }
                }
                Change::Virtual(..) => {}
            }
        }
        if tags_changed {
            // Every tag change of the round at once.
            store.set_tags(&self.device, &tags)?;
        }
        if !values.is_empty() {
            tasks.insert(0, TaskSpec::set(values));
        }
        // Before a reboot or reset, after the rest (as the `provisions` task orders them).
        let at =
            tasks.iter().position(|t| matches!(t, TaskSpec::Reboot | TaskSpec::FactoryReset)).unwrap_or(tasks.len());
        tasks.splice(at..at, downloads);
        Ok((tasks, tags_changed))
    }

    /// The preset of the first script whose declarations name what `spec` reads or changes:
    /// a CPE's fault on it is recorded in that one's channel.
    fn owner_of(&self, spec: &TaskSpec, interrupted: &[(usize, Record)]) -> Option<String> {
        let names: Vec<String> = match spec {
            TaskSpec::GetParameterValues { parameter_names } => parameter_names.clone(),
            TaskSpec::SetParameterValues { parameter_values } => {
                parameter_values.iter().map(|p| p.name.clone()).collect()
            }
            TaskSpec::GetParameterNames { parameter_path, .. } => vec![parameter_path.clone()],
            TaskSpec::AddObject { object_name, .. } | TaskSpec::DeleteObject { object_name } => {
                vec![object_name.clone()]
            }
            TaskSpec::Reboot => vec!["Reboot".into()],
            TaskSpec::FactoryReset => vec!["FactoryReset".into()],
            TaskSpec::Download { .. } => vec!["Downloads".into()],
            _ => return None,
        };
        let names: Vec<&str> = names.iter().map(|n| n.trim_end_matches('.')).filter(|n| !n.is_empty()).collect();
        let mentions = |r: &Record| {
            r.decls
                .iter()
                .any(|d| names.iter().any(|n| d.pattern.could_match(n) || d.download.is_some() && *n == "Downloads"))
        };
        let interrupted = interrupted.iter().filter(|(_, r)| mentions(r)).map(|(i, _)| *i).min();
        let done = self.entries.iter().position(|e| e.done.as_ref().is_some_and(mentions));
        let i = match (interrupted, done) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        self.entries.get(i).map(|e| e.call.preset.clone())
    }

    /// Entries for virtual parameters to compute (`None`) or write (`Some(value)`), first in
    /// the session's order; one whose script is not stored is a fault of who asked.
    fn add_virtuals(
        &mut self,
        store: &dyn Store,
        list: Vec<(String, Option<Declared>, Option<Call>)>,
        ts: i64,
        faults: &mut Vec<ScriptFault>,
    ) -> Result<(), StoreError> {
        let scripts: HashMap<String, String> =
            store.scripts(crate::store::ScriptKind::VirtualParameter)?.into_iter().collect();
        let first = self.entries.first().map(|e| e.call.clone());
        for (name, set, owner) in list {
            // Run (and faulted) as the script that declared it.
            let Some(call) = owner.or_else(|| first.clone()) else { return Ok(()) };
            let Some(source) = scripts.get(&name) else {
                let msg = format!("no virtual parameter {name} is stored");
                faults.push(self.fault(&call, "script.missing".into(), msg, String::new()));
                self.entries.retain(|e| e.call.channel != call.channel);
                continue;
            };
            let script = Script { name: name.clone(), source: source.clone() };
            self.entries.retain(|e| !matches!(&e.source, Source::Virtual { script: s, .. } if s.name == name));
            let entry = Entry { call, source: Source::Virtual { script, ts, set }, done: None };
            self.entries.insert(0, entry);
        }
        Ok(())
    }
}
