//! Provisioning profiles (GenieACS "presets"), in GenieACS's shape: at each Inform, the presets
//! whose `events` and `schedule` fit and whose `precondition` the device matches apply, in
//! ascending `weight` (then name), a later one overriding an earlier one on the same parameter
//! or tag, as GenieACS's declarations do.
//!
//! ```json
//! {"weight": 0, "channel": "default", "events": {"0 BOOTSTRAP": true, "1 BOOT": false},
//!  "precondition": "{\"_tags\": \"test\"}", "schedule": "3600 0 2 * * *",
//!  "configurations": [{"type": "value", "name": "Device.ManagementServer.PeriodicInformInterval", "value": "300"},
//!                     {"type": "add_tag", "tag": "provisioned"},
//!                     {"type": "provision", "name": "mynewprovision", "args": ["x"]}]}
//! ```
//!
//! - `events`: every event named `true` must be in the Inform, every one named `false` must not
//!   (codes compared with runs of white space as `_`, as GenieACS does); none named: every Inform.
//! - `precondition`: a query of [`crate::query`], as GenieACS stores it (a JSON string; `""`:
//!   every device) or, beyond GenieACS, as a JSON object. GenieACS's newer expression syntax
//!   (`Tags.test IS NOT NULL`) is refused.
//! - `schedule`: `<seconds> <cron>`: the preset applies for that many seconds after each time the
//!   cron expression (5 fields, or 6 with seconds first; UTC) names.
//! - `configurations`: `value` (only sent when the cached value differs; a string is typed as
//!   the cached parameter is), `age` (read when the cached value is older than `age` seconds),
//!   `add_tag`, `delete_tag`, `add_object`/`delete_object` (an object of `/objects`, matched on
//!   its `_keys` under the parent `name`), `provision` (`name`, `args`); ours: `refresh`
//!   (`names`, read every time). `provision` + `provisionArgs` (GenieACS's UI shape) is one more
//!   `provision` configuration.
//! - A `provision` of GenieACS's built-ins `value`, `tag` and `refresh` applies as those
//!   configurations; `reboot`, `reset`, `instances` and `download` as the `provisions` task runs them
//!   (`crate::provisions`), after the preset's other requests; a stored script runs in the
//!   session's provisioning ([`crate::script`]) after the requests of every configuration;
//!   `download` sends its Download at every matching Inform, as GenieACS's does (its
//!   documentation: trigger it on events such as `1 BOOT`).

use std::collections::{BTreeMap, HashMap, HashSet};

use cwmp::{ParameterValue, Value, XsdType};
use serde_json::{json, Map, Value as Json};

use crate::query::{Query, Record};
use crate::store::devices::Lifecycle;
use crate::store::{CachedParam, Store, StoreError};
use crate::tasks::TaskSpec;

/// A preset that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPreset(pub String);

fn bad(msg: impl Into<String>) -> BadPreset {
    BadPreset(msg.into())
}

/// GenieACS's built-in provisions: a stored provision may not take their names.
pub const BUILT_IN_PROVISIONS: [&str; 7] = ["refresh", "value", "tag", "reboot", "reset", "download", "instances"];

/// The longest a `schedule` may keep a preset applying after each of its times (31 days).
pub const MAX_SCHEDULE_SECS: i64 = 31 * 86_400;

/// A preset, typed from its JSON (which the store keeps as the NBI received it).
#[derive(Debug, Clone)]
pub struct Preset {
    /// Order of application: ascending, then by name (GenieACS's).
    pub weight: i64,
    /// GenieACS's fault channel (`default`).
    pub channel: String,
    /// Event codes (white space as `_`) that must be present (`true`) or absent (`false`).
    pub events: BTreeMap<String, bool>,
    /// Which devices it applies to.
    pub precondition: Query,
    /// Whether the precondition is empty (every device).
    every_device: bool,
    /// When it applies, if only at times.
    pub schedule: Option<Schedule>,
    /// What it does.
    pub configurations: Vec<Configuration>,
}

/// One thing a preset does.
#[derive(Debug, Clone, PartialEq)]
pub enum Configuration {
    /// Set a value (`{"type": "value", "name", "value", "valueType"?}`); `typed`: the type was
    /// given (`valueType`, or a JSON number or boolean) rather than taken from the cache.
    Value {
        /// The value (a JSON string is an xsd:string until the cache says otherwise).
        value: ParameterValue,
        /// Whether its type was given.
        typed: bool,
    },
    /// Read values every time (`{"type": "refresh", "names": [...]}`; ours).
    Refresh(Vec<String>),
    /// Read a value older than `age` seconds (`{"type": "age", "name", "age"}`).
    Age {
        /// The parameter's path.
        name: String,
        /// Seconds.
        age: i64,
    },
    /// Add a tag (`{"type": "add_tag", "tag"}`).
    AddTag(String),
    /// Remove a tag (`{"type": "delete_tag", "tag"}`).
    DeleteTag(String),
    /// Make sure an instance of `/objects/<object>` exists under `parent`.
    AddObject {
        /// The table's path (`name`).
        parent: String,
        /// The object's name.
        object: String,
    },
    /// Delete the instances under `parent` matching `/objects/<object>`.
    DeleteObject {
        /// The table's path (`name`).
        parent: String,
        /// The object's name.
        object: String,
    },
    /// GenieACS's built-in `reboot`, `reset`, `instances` or `download` provision (planned as
    /// the `provisions` task plans it, sent after the preset's other requests).
    BuiltIn(crate::provisions::ProvisionCall),
    /// A provision script with its arguments (run by [`crate::script`]).
    Provision {
        /// The provision's name.
        name: String,
        /// Its arguments, as given.
        args: Vec<Json>,
    },
}

fn string_field<'a>(c: &'a Json, field: &str, what: &str) -> Result<&'a str, BadPreset> {
    c.get(field)
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("{what} configuration needs {field} (a non-empty string)")))
}

/// A `value` configuration's typed value.
fn value_config(name: &str, value: &Json, value_type: Option<&Json>) -> Result<Configuration, BadPreset> {
    let mut triple = vec![json!(name), value.clone()];
    if let Some(t) = value_type {
        triple.push(t.clone());
    }
    let v = crate::tasks::triple(&Json::Array(triple)).map_err(|e| bad(e.0))?;
    Ok(Configuration::Value { value: v, typed: value_type.is_some() || !value.is_string() })
}

/// A `provision` configuration: GenieACS's built-ins `value`, `tag`, `refresh` as what they do.
fn provision(name: &str, args: Vec<Json>) -> Result<Configuration, BadPreset> {
    let arg = |i: usize| args.get(i);
    let path = |what: &str| {
        arg(0)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| bad(format!("provision {what} takes a path first")))
    };
    match name {
        "" => Err(bad("a provision configuration needs name (a non-empty string)")),
        "value" => match args.len() {
            2 => value_config(&path("value")?, &args[1], None),
            3 if arg(1) == Some(&json!("value")) => value_config(&path("value")?, &args[2], None),
            _ => Err(bad("provision value takes [path, value] or [path, \"value\", value]")),
        },
        "tag" => match (arg(0).and_then(Json::as_str), arg(1).and_then(Json::as_bool), args.len()) {
            (Some(t), Some(on), 2) if !t.is_empty() => {
                Ok(if on { Configuration::AddTag(t.into()) } else { Configuration::DeleteTag(t.into()) })
            }
            _ => Err(bad("provision tag takes [tag, true|false]")),
        },
        "refresh" => match args.len() {
            1 => Ok(Configuration::Refresh(vec![path("refresh")?])),
            2 => Ok(Configuration::Age { name: path("refresh")?, age: seconds(&args[1], "provision refresh's age")? }),
            _ => Err(bad("provision refresh takes [path] or [path, age]")),
        },
        // `download` too: GenieACS declares the Download with the session's time, so it is sent
        // at every session the preset applies to.
        "reboot" | "reset" | "instances" | "download" => {
            let call: Vec<Json> = std::iter::once(json!(name)).chain(args).collect();
            Ok(Configuration::BuiltIn(crate::provisions::call(&Json::Array(call)).map_err(|e| bad(e.0))?))
        }
        _ => Ok(Configuration::Provision { name: name.into(), args }),
    }
}

/// Seconds from a JSON number or a numeric string (GenieACS reads `+c.age`).
fn seconds(v: &Json, what: &str) -> Result<i64, BadPreset> {
    let n = match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| *n >= 0).ok_or_else(|| bad(format!("{what} is a number of seconds")))
}

fn configuration(c: &Json) -> Result<Configuration, BadPreset> {
    let Some(ty) = c.get("type").and_then(Json::as_str) else {
        return Err(bad("a configuration needs type (value, age, refresh, add_tag, delete_tag, add_object, delete_object, provision)"));
    };
    let what = format!("a {ty}");
    match ty {
        "value" => {
            let name = string_field(c, "name", &what)?;
            let value = c.get("value").ok_or_else(|| bad("a value configuration needs value"))?;
            value_config(name, value, c.get("valueType"))
        }
        "age" => {
            let name = string_field(c, "name", &what)?.to_string();
            let age = seconds(c.get("age").unwrap_or(&Json::Null), "an age configuration's age")?;
            Ok(Configuration::Age { name, age })
        }
        "refresh" => match c.get("names").and_then(Json::as_array) {
            Some(a) if !a.is_empty() && a.iter().all(|n| n.as_str().is_some_and(|s| !s.is_empty())) => {
                Ok(Configuration::Refresh(a.iter().filter_map(Json::as_str).map(str::to_string).collect()))
            }
            _ => Err(bad("a refresh configuration needs names (parameter paths)")),
        },
        "add_tag" => Ok(Configuration::AddTag(string_field(c, "tag", &what)?.into())),
        "delete_tag" => Ok(Configuration::DeleteTag(string_field(c, "tag", &what)?.into())),
        "add_object" | "delete_object" => {
            let parent = string_field(c, "name", &what)?.trim_end_matches('.').to_string();
            let object = string_field(c, "object", &what)?.to_string();
            Ok(if ty == "add_object" {
                Configuration::AddObject { parent, object }
            } else {
                Configuration::DeleteObject { parent, object }
            })
        }
        "provision" => {
            let name = c.get("name").and_then(Json::as_str).unwrap_or("");
            let args = match c.get("args") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Array(a)) => a.clone(),
                Some(_) => return Err(bad("a provision configuration's args is an array")),
            };
            provision(name, args)
        }
        other => Err(bad(format!("unknown configuration type {other:?}"))),
    }
}

/// `provisionArgs` as GenieACS's UI writes it (`"a", 5, true`: a comma-separated list of
/// literals), or a JSON array.
fn provision_args(v: Option<&Json>) -> Result<Vec<Json>, BadPreset> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(a)) => Ok(a.clone()),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(Json::String(s)) => serde_json::from_str::<Vec<Json>>(&format!("[{s}]")).map_err(|_| {
            bad("provisionArgs is a comma-separated list of literals (\"text\", numbers, true, false, null); \
                 expressions are not read")
        }),
        Some(_) => Err(bad("provisionArgs is a string (a comma-separated list) or an array")),
    }
}

/// The precondition: a JSON string of a query (`""`: every device), or a query object.
fn precondition(p: &Json) -> Result<(Query, bool), BadPreset> {
    let q = match p.get("precondition") {
        None | Some(Json::Null) => json!({}),
        Some(Json::String(s)) if s.trim().is_empty() => json!({}),
        Some(Json::String(s)) => serde_json::from_str(s).map_err(|e| {
            bad(format!(
                "precondition is not a JSON query ({e}); GenieACS's expression syntax (`Tags.x IS NOT NULL`) is not read"
            ))
        })?,
        Some(o @ Json::Object(_)) => o.clone(),
        Some(_) => return Err(bad("precondition is a query: a JSON string of one, or an object")),
    };
    let every = q.as_object().is_some_and(Map::is_empty);
    let parsed = Query::parse(&q).map_err(|e| bad(format!("precondition: {e}")))?;
    Ok((parsed, every))
}

/// An event code as GenieACS compares them: runs of white space as `_`.
fn event_key(code: &str) -> String {
    code.split_whitespace().collect::<Vec<_>>().join("_")
}

impl Preset {
    /// A preset as the NBI receives it (and the store keeps it); the error says what is wrong.
    pub fn from_json(p: &Json) -> Result<Preset, BadPreset> {
        if !p.is_object() {
            return Err(bad("a preset is a JSON object"));
        }
        let weight = match p.get("weight") {
            None | Some(Json::Null) => 0,
            Some(w) => w
                .as_i64()
                .or_else(|| w.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| bad("weight is an integer"))?,
        };
        let channel = match p.get("channel") {
            None | Some(Json::Null) => "default".to_string(),
            Some(Json::String(c)) if c.is_empty() => "default".to_string(),
            Some(Json::String(c)) if c.len() <= 128 && !c.chars().any(char::is_control) => c.clone(),
            Some(_) => return Err(bad("channel is a string of at most 128 bytes")),
        };
        let (precondition, every_device) = precondition(p)?;
        let events = match p.get("events") {
            None | Some(Json::Null) => BTreeMap::new(),
            Some(ev) => ev
                .as_object()
                .and_then(|m| m.iter().map(|(k, v)| Some((event_key(k), v.as_bool()?))).collect::<Option<_>>())
                .ok_or_else(|| bad("events maps event codes to true or false"))?,
        };
        let schedule = match p.get("schedule") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s.trim().is_empty() => None,
            Some(Json::String(s)) => Some(Schedule::parse(s).map_err(|e| bad(format!("schedule: {e}")))?),
            Some(_) => return Err(bad("schedule is a string: \"<seconds> <cron expression>\"")),
        };
        let mut configurations: Vec<Configuration> = match p.get("configurations") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(confs)) => confs.iter().map(configuration).collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("configurations must be an array")),
        };
        match p.get("provision") {
            None | Some(Json::Null) => {
                if p.get("provisionArgs").is_some_and(|a| !a.is_null()) {
                    return Err(bad("provisionArgs goes with provision"));
                }
            }
            Some(Json::String(name)) => configurations.push(provision(name, provision_args(p.get("provisionArgs"))?)?),
            Some(_) => return Err(bad("provision is the name of a provision")),
        }
        if p.get("configurations").is_none() && p.get("provision").is_none() {
            return Err(bad("a preset needs configurations (an array) or provision"));
        }
        Ok(Preset { weight, channel, events, precondition, every_device, schedule, configurations })
    }

    /// Whether it applies to an Inform with these events (keys of [`event_key`]) at `now`.
    fn wanted(&self, events: &HashSet<String>, now: i64) -> bool {
        self.events.iter().all(|(k, v)| *v == events.contains(k))
            && self.schedule.as_ref().is_none_or(|s| s.active(now))
    }

    /// Whether applying it needs the device's record: a precondition, or a tag change.
    fn needs_device(&self) -> bool {
        !self.every_device
            || self.configurations.iter().any(|c| matches!(c, Configuration::AddTag(_) | Configuration::DeleteTag(_)))
    }

    /// Whether applying it reads the parameter cache.
    fn needs_params(&self) -> bool {
        self.precondition.needs_params()
            || self.configurations.iter().any(|c| {
                matches!(
                    c,
                    Configuration::Value { .. }
                        | Configuration::Age { .. }
                        | Configuration::AddObject { .. }
                        | Configuration::DeleteObject { .. }
                )
            })
    }

    /// The provisions it names (stored scripts or built-ins it does not run).
    pub fn provisions(&self) -> impl Iterator<Item = &str> {
        self.configurations.iter().filter_map(|c| match c {
            Configuration::Provision { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }
}

/// Checks a preset as the NBI receives it.
pub fn validate(p: &Json) -> Result<(), BadPreset> {
    Preset::from_json(p).map(|_| ())
}

/// An object of `/objects` flattened (`{"a": {"b": 1}}` is `a.b`), with the fields that
/// identify an instance (`_keys`; absent or empty: every field, as GenieACS does).
struct Object {
    fields: Vec<(String, Json)>,
    keys: Vec<String>,
}

impl Object {
    fn from_json(o: &Json) -> Object {
        fn flatten(prefix: &str, v: &Json, out: &mut Vec<(String, Json)>) {
            match v {
                Json::Object(m) => {
                    for (k, v) in m {
                        flatten(&format!("{prefix}{k}."), v, out);
                    }
                }
                v => out.push((prefix.trim_end_matches('.').to_string(), v.clone())),
            }
        }
        let mut fields = Vec::new();
        if let Some(m) = o.as_object() {
            for (k, v) in m.iter().filter(|(k, _)| !k.starts_with('_')) {
                flatten(&format!("{k}."), v, &mut fields);
            }
        }
        let keys: Vec<String> = o
            .get("_keys")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let keys = if keys.is_empty() { fields.iter().map(|(k, _)| k.clone()).collect() } else { keys };
        Object { fields, keys }
    }

    /// The instances (`parent.N.`) of the cache whose key fields hold the object's values.
    fn instances(&self, parent: &str, params: &[CachedParam]) -> Vec<String> {
        table_rows(params, parent)
            .into_iter()
            .filter(|(_, row)| {
                self.keys.iter().all(|k| {
                    let want = self.fields.iter().find(|(f, _)| f == k).map(|(_, v)| lexical(v));
                    want.is_some_and(|w| row.get(k.as_str()) == Some(&w.as_str()))
                })
            })
            .map(|(n, _)| format!("{parent}.{n}."))
            .collect()
    }
}

/// The rows the cache holds of `table` (its path without the trailing dot): each instance
/// number with its fields' values, ascending.
pub(crate) fn table_rows<'a>(params: &'a [CachedParam], table: &str) -> BTreeMap<u64, HashMap<&'a str, &'a str>> {
    let prefix = format!("{table}.");
    let mut rows: BTreeMap<u64, HashMap<&str, &str>> = BTreeMap::new();
    for p in params {
        let Some(rest) = p.name.strip_prefix(&prefix) else { continue };
        let Some((n, field)) = rest.split_once('.') else { continue };
        let Ok(n) = n.parse::<u64>() else { continue };
        rows.entry(n).or_default().insert(field, p.value.as_str());
    }
    rows
}

/// The text of a JSON scalar as a parameter holds it.
pub(crate) fn lexical(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// A value configuration's value typed as the cache has the parameter when the type was not
/// given; whether the cache already holds it.
pub(crate) fn as_cached(value: &ParameterValue, typed: bool, cached: Option<&CachedParam>) -> (ParameterValue, bool) {
    let Some(c) = cached else { return (value.clone(), false) };
    let mut v = value.clone();
    if !typed && c.ty != "string" {
        if let Some(Ok(typed)) = XsdType::from_local(&c.ty).map(|t| Value::parse(t, &value.value.to_lexical())) {
            v.value = typed;
        }
    }
    let same = v.value.to_lexical() == c.value;
    (v, same)
}

/// Applies the presets that match this Inform: tags now, and the requests to run in this session
/// (returned with the preset's name) and the provision scripts to run after them, in ascending
/// weight. Presets are derived again at every
/// matching Inform, so their requests are not queued durably; a session cut short simply leaves
/// them to the next. Presets of a `held` channel (one with a fault not yet due for a retry) are
/// left out, as GenieACS leaves out a faulted channel's.
pub fn apply(
    store: &dyn Store,
    presets: &[(String, Preset)],
    device: &str,
    events: &[cwmp::Event],
    held: &HashSet<String>,
) -> Result<Applied, StoreError> {
    let now = crate::endpoint::now();
    let codes: HashSet<String> = events.iter().map(|e| event_key(&e.code)).collect();
    let mut wanted: Vec<&(String, Preset)> =
        presets.iter().filter(|(_, p)| !held.contains(&p.channel) && p.wanted(&codes, now)).collect();
    if wanted.is_empty() {
        return Ok(Applied::default());
    }
    wanted.sort_by(|a, b| a.1.weight.cmp(&b.1.weight).then_with(|| a.0.cmp(&b.0)));
    // The device's record and its cache are read only when a preset needs them.
    let mut dev = if wanted.iter().any(|(_, p)| p.needs_device()) {
        let Some(dev) = store.device(device)? else { return Ok(Applied::default()) };
        dev
    } else {
        crate::store::Device { id: device.to_string(), ..Default::default() }
    };
    let params = if wanted.iter().any(|(_, p)| p.needs_params()) { store.params(device)? } else { Vec::new() };
    let names_objects = |p: &Preset| {
        p.configurations
            .iter()
            .any(|c| matches!(c, Configuration::AddObject { .. } | Configuration::DeleteObject { .. }))
    };
    let objects: HashMap<String, Object> = if wanted.iter().any(|(_, p)| names_objects(p)) {
        store.objects()?.into_iter().map(|(n, o)| (n, Object::from_json(&o))).collect()
    } else {
        HashMap::new()
    };
    // Every precondition is evaluated on the device as the Inform left it, before any preset
    // changes it (as GenieACS evaluates them all before running their provisions).
    // `_registered`, `_lastBoot`, `_lastBootstrap`: read with the device's record.
    let life = if wanted.iter().any(|(_, p)| p.needs_device()) {
        store.lifecycle(device)?.unwrap_or_default()
    } else {
        Lifecycle::default()
    };
    // `_writable`, `_object`, ...: read only for a precondition that names them.
    let info = if wanted.iter().any(|(_, p)| !p.every_device && p.precondition.needs_path_info()) {
        store.path_info(device)?
    } else {
        Vec::new()
    };
    let record = Record { device: &dev, life: &life, params: &params }.with_info(&info);
    let matching: Vec<&(String, Preset)> =
        wanted.into_iter().filter(|(_, p)| p.every_device || p.precondition.matches_full(&record)).collect();
    let cache: HashMap<&str, &CachedParam> = params.iter().map(|p| (p.name.as_str(), p)).collect();

    // A later (heavier) preset overrides an earlier one on the same parameter or tag.
    let mut values: BTreeMap<String, (usize, ParameterValue, bool)> = BTreeMap::new();
    let mut tags: BTreeMap<String, bool> = BTreeMap::new();
    let mut reads: Vec<Vec<String>> = vec![Vec::new(); matching.len()];
    let mut objects_tasks: Vec<Vec<TaskSpec>> = vec![Vec::new(); matching.len()];
    let mut built_ins: Vec<Vec<TaskSpec>> = vec![Vec::new(); matching.len()];
    let mut scripts = Vec::new();
    for (i, (name, p)) in matching.iter().enumerate() {
        for c in &p.configurations {
            match c {
                Configuration::Value { value, typed } => {
                    values.insert(value.name.clone(), (i, value.clone(), *typed));
                }
                Configuration::Refresh(names) => reads[i].extend(names.iter().cloned()),
                Configuration::Age { name, age } => {
                    if cache.get(name.as_str()).is_none_or(|c| c.updated + age < now) {
                        reads[i].push(name.clone());
                    }
                }
                Configuration::AddTag(t) => {
                    tags.insert(t.clone(), true);
                }
                Configuration::DeleteTag(t) => {
                    tags.insert(t.clone(), false);
                }
                Configuration::AddObject { parent, object } => {
                    let Some(o) = objects.get(object) else { continue };
                    let found = o.instances(parent, &params);
                    if let Some(row) = found.first() {
                        // The instance exists: its other fields are values like any other.
                        for (f, v) in o.fields.iter().filter(|(f, _)| !o.keys.contains(f)) {
                            if let Ok(Configuration::Value { value, typed }) =
                                value_config(&format!("{row}{f}"), v, None)
                            {
                                values.insert(value.name.clone(), (i, value, typed));
                            }
                        }
                    } else {
                        let parameter_values =
                            o.fields.iter().filter_map(|(f, v)| crate::tasks::triple(&json!([f, v])).ok()).collect();
                        objects_tasks[i]
                            .push(TaskSpec::AddObject { object_name: format!("{parent}."), parameter_values });
                    }
                }
                Configuration::DeleteObject { parent, object } => {
                    let Some(o) = objects.get(object) else { continue };
                    for row in o.instances(parent, &params) {
                        objects_tasks[i].push(TaskSpec::DeleteObject { object_name: row });
                    }
                }
                Configuration::BuiltIn(call) => {
                    built_ins[i].extend(crate::provisions::expand(store, device, std::slice::from_ref(call), now)?)
                }
                Configuration::Provision { name: prov, args } => scripts.push(crate::script::Call {
                    preset: name.clone(),
                    channel: p.channel.clone(),
                    name: prov.clone(),
                    args: args.clone(),
                }),
            }
        }
    }

    let mut new_tags = dev.tags.clone();
    for (t, on) in tags {
        if on && !new_tags.contains(&t) {
            new_tags.push(t);
        } else if !on {
            new_tags.retain(|x| *x != t);
        }
    }
    if new_tags != dev.tags {
        store.set_tags(device, &new_tags)?;
        dev.tags = new_tags;
    }

    let mut sets: Vec<Vec<ParameterValue>> = vec![Vec::new(); matching.len()];
    for (i, value, typed) in values.into_values() {
        let (value, same) = as_cached(&value, typed, cache.get(value.name.as_str()).copied());
        if !same {
            sets[i].push(value);
        }
    }
    let mut queued = Vec::new();
    for (i, (name, _)) in matching.iter().enumerate() {
        if !sets[i].is_empty() {
            tracing::info!(device, preset = %name, "preset applies values");
            queued.push((name.clone(), TaskSpec::set(std::mem::take(&mut sets[i]))));
        }
        for t in std::mem::take(&mut objects_tasks[i]) {
            queued.push((name.clone(), t));
        }
        if !reads[i].is_empty() {
            queued.push((name.clone(), TaskSpec::get(std::mem::take(&mut reads[i]))));
        }
        for t in std::mem::take(&mut built_ins[i]) {
            queued.push((name.clone(), t));
        }
    }
    Ok(Applied { requests: queued, scripts })
}

/// What the presets that match an Inform come to.
#[derive(Debug, Default)]
pub struct Applied {
    /// Requests of the presets' configurations and built-in provisions, each with its preset.
    pub requests: Vec<(String, TaskSpec)>,
    /// Provision scripts to run, in the presets' order.
    pub scripts: Vec<crate::script::Call>,
}

/// A preset's `schedule`: `<seconds> <cron>`, the cron expression with 5 fields (minute, hour,
/// day of month, month, day of week) or 6 (seconds first), in UTC: numbers, `*`, ranges
/// `a-b`, steps `/n` and lists `,` (`?` as `*`); day of week 0-7, 0 and 7 Sunday. When both
/// day fields are restricted, either may match (as cron does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// How long after each time the preset applies.
    pub duration: i64,
    fields: [u64; 6],
    dom_any: bool,
    dow_any: bool,
}

/// Field bounds: second, minute, hour, day of month, month, day of week.
const BOUNDS: [(u32, u32, &str); 6] = [
    (0, 59, "second"),
    (0, 59, "minute"),
    (0, 23, "hour"),
    (1, 31, "day of month"),
    (1, 12, "month"),
    (0, 7, "day of week"),
];

fn cron_field(text: &str, (lo, hi, what): (u32, u32, &str)) -> Result<(u64, bool), String> {
    let mut set = 0u64;
    let any = text == "*" || text == "?";
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| format!("{what}: bad step in {item:?}"))?)
            }
            None => (item, 1),
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| format!("{what}: {s:?} is not a number from {lo} to {hi}"))
        };
        let (a, b) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None if item.contains('/') => (num(r)?, hi),
                None => (num(r)?, num(r)?),
            },
        };
        if a > b {
            return Err(format!("{what}: range {range:?} runs backwards"));
        }
        for n in (a..=b).step_by(step as usize) {
            set |= 1 << n;
        }
    }
    Ok((set, any))
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Schedule {
    /// From GenieACS's text (`"3600 0 2 * * *"`: an hour from 02:00 every day).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let mut parts: Vec<&str> = text.split_whitespace().collect();
        if parts.is_empty() {
            return Err("empty".into());
        }
        let duration: i64 = parts.remove(0).parse().map_err(|_| "it starts with a duration in seconds".to_string())?;
        if !(1..=MAX_SCHEDULE_SECS).contains(&duration) {
            return Err(format!("the duration is from 1 to {MAX_SCHEDULE_SECS} seconds"));
        }
        if parts.len() == 5 {
            parts.insert(0, "0");
        }
        if parts.len() != 6 {
            return Err("a cron expression has 5 fields (or 6, seconds first)".into());
        }
        let mut fields = [0u64; 6];
        let mut anys = [false; 6];
        for (i, p) in parts.iter().enumerate() {
            (fields[i], anys[i]) = cron_field(p, BOUNDS[i])?;
        }
        // Sunday is 0 and 7.
        if fields[5] & (1 << 7) != 0 {
            fields[5] |= 1;
        }
        Ok(Schedule { duration, fields, dom_any: anys[3], dow_any: anys[5] })
    }

    fn day_matches(&self, days: i64) -> bool {
        let (_, month, day) = civil(days);
        let weekday = (days + 4).rem_euclid(7) as u32;
        if self.fields[4] & (1 << month) == 0 {
            return false;
        }
        let dom = self.fields[3] & (1 << day) != 0;
        let dow = self.fields[5] & (1 << weekday) != 0;
        match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// Whether `now` (Unix seconds) is within `duration` after the latest time named.
    pub fn active(&self, now: i64) -> bool {
        let earliest = now - self.duration;
        let mut minute = now.div_euclid(60) * 60;
        while minute + 59 > earliest {
            let day = minute.div_euclid(86_400);
            if !self.day_matches(day) {
                minute = day * 86_400 - 60;
                continue;
            }
            let hour = minute.div_euclid(3600);
            if self.fields[2] & (1 << (hour.rem_euclid(24))) == 0 {
                minute = hour * 3600 - 60;
                continue;
            }
            if self.fields[1] & (1 << (minute.div_euclid(60).rem_euclid(60))) != 0 {
                // The latest second of this minute named and not after now.
                if let Some(s) = (0..60).rev().find(|s| self.fields[0] & (1 << s) != 0 && minute + s <= now) {
                    return minute + s > earliest;
                }
            }
            minute -= 60;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genieacs_reference_preset_reads() {
        let p = Preset::from_json(&json!({"weight": 0, "precondition": "{\"_tags\": \"test\"}", "configurations": [
            {"type": "value", "name": "InternetGatewayDevice.ManagementServer.PeriodicInformEnable", "value": "true"},
            {"type": "value", "name": "InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "value": "300"},
            {"type": "delete_object", "name": "object_parent", "object": "object_name"},
            {"type": "add_object", "name": "object_parent", "object": "object_name"},
            {"type": "provision", "name": "YourProvisionName"}]}))
        .expect("the reference's preset");
        assert_eq!(p.configurations.len(), 5);
        assert_eq!(p.provisions().collect::<Vec<_>>(), ["YourProvisionName"]);
        assert!(p.events.is_empty() && p.channel == "default" && !p.every_device);
    }

    #[test]
    fn bad_presets_say_why() {
        let err = |p: Json| Preset::from_json(&p).map(|_| ()).expect_err("refused").0;
        assert_eq!(err(json!({"configurations": [{"type": "launch"}]})), "unknown configuration type \"launch\"");
        assert!(err(json!({"precondition": "Tags.x IS NOT NULL", "configurations": []})).contains("expression syntax"));
        assert!(err(json!({"precondition": "{\"a\": {\"$where\": 1}}", "configurations": []})).contains("$where"));
        assert_eq!(err(json!({"weight": "heavy", "configurations": []})), "weight is an integer");
        assert!(err(json!({"schedule": "0 * * * * *", "configurations": []})).starts_with("schedule: the duration"));
        assert!(err(json!({"schedule": "60 61 0 * * * *", "configurations": []})).contains("second"));
        assert_eq!(err(json!({"weight": 1})), "a preset needs configurations (an array) or provision");
        assert!(err(json!({"provision": "p", "provisionArgs": "a +"})).starts_with("provisionArgs"));
        assert_eq!(err(json!({"provision": "tag", "provisionArgs": "\"x\""})), "provision tag takes [tag, true|false]");
        assert_eq!(err(json!({"provision": "reboot", "provisionArgs": "1"})), "reboot takes no arguments");
        assert!(err(json!({"provision": "instances", "provisionArgs": "\"Device.T.*\", \"many\""}))
            .contains("whole number"));
        let p = Preset::from_json(&json!({"provision": "instances", "provisionArgs": "\"Device.T.*\", 2"}))
            .expect("preset");
        assert!(matches!(&p.configurations[..], [Configuration::BuiltIn(_)]), "{:?}", p.configurations);
    }

    #[test]
    fn ui_shape_is_a_provision_configuration() {
        let p = Preset::from_json(&json!({"provision": "mynewprovision", "provisionArgs": "\"a\", 5, true"}))
            .expect("preset");
        assert_eq!(
            p.configurations,
            vec![Configuration::Provision {
                name: "mynewprovision".into(),
                args: vec![json!("a"), json!(5), json!(true)]
            }]
        );
        let p = Preset::from_json(&json!({"provision": "tag", "provisionArgs": "\"t\", false"})).expect("preset");
        assert_eq!(p.configurations, vec![Configuration::DeleteTag("t".into())]);
    }

    #[test]
    fn events_must_be_present_or_absent_as_named() {
        let p = Preset::from_json(&json!({"events": {"0 BOOTSTRAP": true, "1  BOOT": false}, "configurations": []}))
            .expect("preset");
        let ev = |codes: &[&str]| codes.iter().map(|c| event_key(c)).collect::<HashSet<_>>();
        assert!(p.wanted(&ev(&["0 BOOTSTRAP"]), 0));
        assert!(!p.wanted(&ev(&["0 BOOTSTRAP", "1 BOOT"]), 0));
        assert!(!p.wanted(&ev(&["2 PERIODIC"]), 0));
        let always = Preset::from_json(&json!({"configurations": []})).expect("preset");
        assert!(always.wanted(&ev(&["2 PERIODIC"]), 0));
    }

    #[test]
    fn schedules_apply_within_their_duration() {
        // 2026-12-06 (a Sunday) 02:30:00 UTC.
        let t = 1_796_524_200;
        assert_eq!(civil(t / 86_400), (2026, 12, 6));
        let daily = Schedule::parse("3600 0 2 * * *").expect("daily at 02:00 for an hour");
        assert!(daily.active(t));
        assert!(!daily.active(t + 1800));
        assert!(!daily.active(t - 1801));
        assert!(Schedule::parse("1801 0 2 * * *").expect("5 fields").active(t));
        assert!(!Schedule::parse("1800 0 2 * * *").expect("5 fields").active(t));
        assert!(Schedule::parse("1800 0 2 * *").is_err());
        let sunday = Schedule::parse("86400 0 0 * * 7").expect("Sundays");
        assert!(sunday.active(t));
        assert!(!sunday.active(t + 86_400));
        let weekdays = Schedule::parse("86400 0 0 * * 1-5").expect("weekdays");
        assert!(!weekdays.active(t));
        assert!(weekdays.active(t + 86_400));
        let every_ten = Schedule::parse("60 */10 * * * * *").expect("every ten seconds");
        assert!(every_ten.active(t + 5));
        assert!(Schedule::parse("5 */10 * * * * *").expect("five seconds in ten").active(t + 4));
        assert!(!Schedule::parse("5 */10 * * * * *").expect("five seconds in ten").active(t + 5));
        let every_ten_minutes = Schedule::parse("60 */10 * * * *").expect("every ten minutes");
        assert!(every_ten_minutes.active(t + 59) && !every_ten_minutes.active(t + 60));
        assert!(Schedule::parse("60 0 0 1 1 *").is_ok_and(|s| !s.active(t)));
    }

    #[test]
    fn objects_match_on_their_keys() {
        let o = Object::from_json(&json!({"_id": "x", "_keys": ["SSID"], "SSID": "lab", "Enable": true}));
        let p = |n: &str, v: &str| CachedParam { name: n.into(), ty: "string".into(), value: v.into(), updated: 0 };
        let params = [p("T.1.SSID", "other"), p("T.2.SSID", "lab"), p("T.2.Enable", "false"), p("T.x.SSID", "lab")];
        assert_eq!(o.instances("T", &params), vec!["T.2.".to_string()]);
        let all_keys = Object::from_json(&json!({"SSID": "lab", "Enable": true}));
        assert!(all_keys.instances("T", &params).is_empty());
    }
}
