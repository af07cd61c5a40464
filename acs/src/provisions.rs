//! GenieACS's built-in provisions (`refresh`, `value`, `tag`, `reboot`, `reset`, `download`,
//! `instances`) as the `provisions` task names them (`{"name": "provisions", "provisions":
//! [["value", "Device.X", "v"], ["tag", "t", true], ...]}`): typed once where the task enters,
//! stored as GenieACS's arrays, and turned into the requests they come to on a device from what
//! the ACS holds of it when the task starts. A task that also names a provision script (any
//! other name, stored through `/provisions`) runs as a whole in the session's provisioning
//! ([`crate::script`]), its built-ins as declarations beside the scripts'.

use std::collections::{BTreeMap, HashMap};

use cwmp::ParameterValue;
use serde_json::{json, Value as Json};

use crate::store::{CachedParam, Store};
use crate::tasks::{BadTask, TaskSpec};

/// The most provisions one task may name.
pub const MAX_PROVISIONS: usize = 64;
/// The most instances one `instances` provision may add or delete.
pub const MAX_INSTANCES: i64 = 256;

/// One provision of a `provisions` task: what it does, and the array it was given as (kept so
/// the task reads back as GenieACS stores it).
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionCall {
    /// What it does.
    pub step: Provision,
    raw: Vec<Json>,
}

impl ProvisionCall {
    /// The provision's name (`value`, `refresh`, ..., or a script's).
    pub fn name(&self) -> &str {
        self.raw.first().and_then(Json::as_str).unwrap_or_default()
    }

    /// Whether a path, table or file the provision names contains `s`.
    pub fn mentions(&self, s: &str) -> bool {
        self.raw.iter().skip(1).any(|a| a.as_str().is_some_and(|a| a.contains(s)))
    }
}

impl serde::Serialize for ProvisionCall {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// A built-in provision.
#[derive(Debug, Clone, PartialEq)]
pub enum Provision {
    /// `["refresh", path, age?]`: read the path (an object's subtree when it ends in `.`), or
    /// only when the cached value is older than `age` seconds.
    Refresh {
        /// The path.
        path: String,
        /// Seconds a cached value stays fresh.
        age: Option<i64>,
    },
    /// `["value", path, value]` (or `[path, "value", value]`): set it unless the cache holds
    /// it; a string takes the cached parameter's type.
    Value {
        /// The value.
        value: ParameterValue,
        /// Whether the type was given (a JSON number or boolean) rather than taken from the cache.
        typed: bool,
    },
    /// `["tag", tag, true|false]`: add or remove a tag.
    Tag {
        /// The tag.
        tag: String,
        /// Add (true) or remove (false).
        on: bool,
    },
    /// `["reboot"]`: reboot after the task's other requests.
    Reboot,
    /// `["reset"]`: factory reset after the task's other requests.
    Reset,
    /// `["download", fileType, fileName, targetFileName?]`.
    Download {
        /// TR-069 file type.
        file_type: String,
        /// The file on the ACS's file server.
        file_name: String,
        /// The name the CPE gives it.
        target_file_name: Option<String>,
    },
    /// `["instances", path, count]`: as many instances matching the path (`Table.*`,
    /// `Table.[Key:"v",...]`, `Table.3`) as `count` says (`"+1"`, `"-2"`: relative to those
    /// there; `2`: exactly).
    Instances {
        /// The table's path, without its trailing dot.
        table: String,
        /// Which instances count.
        select: Select,
        /// How many there should be.
        count: Count,
    },
    /// A provision script stored through `/provisions`, with its `args`.
    Script {
        /// Its name.
        name: String,
        /// Its arguments.
        args: Vec<Json>,
    },
}

/// Whether any of `provisions` is a script (the task then runs in the session's provisioning).
pub fn has_scripts(provisions: &[ProvisionCall]) -> bool {
    provisions.iter().any(|p| matches!(p.step, Provision::Script { .. }))
}

/// The instances an `instances` provision counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `*`: every instance.
    All,
    /// `[Key:value,...]`: those whose keys hold these values (new ones are made with them).
    Alias(Vec<(String, Json)>),
    /// `3`: that instance.
    Number(u64),
}

/// An `instances` provision's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `"+n"` / `"-n"`: that many more or fewer than there are.
    Relative(i64),
    /// `n`: exactly that many.
    Exactly(i64),
}

fn bad(msg: impl Into<String>) -> BadTask {
    BadTask(msg.into())
}

/// The `provisions` of a `provisions` task, checked as GenieACS's `sanitizeTask` checks them
/// (an array of arrays of null, booleans, numbers and strings, each naming a provision), and
/// each built-in's arguments as its provision function checks them.
pub fn from_json(spec: &Json) -> Result<Vec<ProvisionCall>, BadTask> {
    let list = spec
        .get("provisions")
        .and_then(Json::as_array)
        .ok_or_else(|| bad("provisions must be an array of [name, args...] arrays"))?;
    if list.len() > MAX_PROVISIONS {
        return Err(bad(format!("at most {MAX_PROVISIONS} provisions in one task")));
    }
    list.iter().map(call).collect()
}

/// One provision, `[name, args...]`, checked.
pub fn call(p: &Json) -> Result<ProvisionCall, BadTask> {
    let raw = p.as_array().ok_or_else(|| bad(format!("a provision is an array [name, args...], not {p}")))?;
    if let Some(v) = raw.iter().find(|v| v.is_array() || v.is_object()) {
        return Err(bad(format!("a provision's arguments are null, booleans, numbers or strings, not {v}")));
    }
    let name = raw
        .first()
        .and_then(Json::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad(format!("a provision starts with its name (a non-empty string): {p}")))?;
    let args = &raw[1..];
    let text = |i: usize| args.get(i).and_then(Json::as_str);
    let path = |what: &str| {
        text(0).filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| bad(format!("{what} takes a path first")))
    };
    let step = match name {
        "refresh" => match args {
            [_] => Provision::Refresh { path: path("refresh")?, age: None },
            [_, age] => Provision::Refresh {
                path: path("refresh")?,
                age: Some(age.as_i64().filter(|a| *a >= 0).ok_or_else(|| bad("refresh's age is a number of seconds"))?),
            },
            _ => return Err(bad("refresh takes [path] or [path, age]")),
        },
        "value" => {
            let value = match args {
                [_, v] => v,
                [_, attr, v] if attr == "value" => v,
                [_, attr, _] => return Err(bad(format!("value sets the attribute \"value\" only, not {attr}"))),
                _ => return Err(bad("value takes [path, value] or [path, \"value\", value]")),
            };
            if value.is_null() {
                return Err(bad("value takes a value (a string, number or boolean)"));
            }
            let value = crate::tasks::triple(&json!([path("value")?, value]))?;
            Provision::Value { typed: !args[args.len() - 1].is_string(), value }
        }
        "tag" => match args {
            [Json::String(t), Json::Bool(on)] if !t.is_empty() => Provision::Tag { tag: t.clone(), on: *on },
            _ => return Err(bad("tag takes [tag, true|false]")),
        },
        "reboot" | "reset" if !args.is_empty() => return Err(bad(format!("{name} takes no arguments"))),
        "reboot" => Provision::Reboot,
        "reset" => Provision::Reset,
        "download" => match args {
            [Json::String(t), Json::String(f)] | [Json::String(t), Json::String(f), Json::Null] if !f.is_empty() => {
                Provision::Download { file_type: t.clone(), file_name: f.clone(), target_file_name: None }
            }
            [Json::String(t), Json::String(f), Json::String(n)] if !f.is_empty() => Provision::Download {
                file_type: t.clone(),
                file_name: f.clone(),
                target_file_name: Some(n.clone()).filter(|n| !n.is_empty()),
            },
            _ => return Err(bad("download takes [fileType, fileName, targetFileName?] (strings)")),
        },
        "instances" => {
            let [_, count] = args else { return Err(bad("instances takes [path, count]")) };
            let (table, select) = selector(&path("instances")?)?;
            Provision::Instances { table, select, count: count_of(count)? }
        }
        other => {
            let ok = other.len() <= 128 && other.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
            if !ok {
                return Err(bad(format!(
                    "provision {other:?} is neither a built-in one ({}) nor a script's name (A-Z a-z 0-9 _ -)",
                    crate::presets::BUILT_IN_PROVISIONS.join(", ")
                )));
            }
            Provision::Script { name: other.to_string(), args: args.to_vec() }
        }
    };
    Ok(ProvisionCall { step, raw: raw.clone() })
}

/// `Table.*`, `Table.[Key:"v",Other:5]`, `Table.3`: the table and which of its instances.
fn selector(path: &str) -> Result<(String, Select), BadTask> {
    let path = path.trim_end_matches('.');
    let (table, last) = if let Some(i) = path.find(".[") {
        (&path[..i], &path[i + 1..])
    } else {
        path.rsplit_once('.').ok_or_else(|| bad(format!("instances takes Table.* or Table.[Key:value] ({path:?})")))?
    };
    if table.is_empty() || table.contains('*') || table.contains('[') {
        return Err(bad(format!("instances names one table ({table:?}): no wildcards or aliases above the instances")));
    }
    let select = if last == "*" {
        Select::All
    } else if let Some(inner) = last.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let mut keys = Vec::new();
        for pair in split_top(inner) {
            let (k, v) = pair
                .split_once(':')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| bad(format!("an alias is [Key:value,...], not [{inner}]")))?;
            let v = v.trim();
            let v =
                serde_json::from_str::<Json>(v).ok().filter(|j| !j.is_array() && !j.is_object()).unwrap_or(json!(v));
            keys.push((k.trim().to_string(), v));
        }
        if keys.is_empty() {
            return Err(bad("an alias names at least one Key:value"));
        }
        Select::Alias(keys)
    } else if let Ok(n) = last.parse::<u64>() {
        Select::Number(n)
    } else {
        return Err(bad(format!("instances takes Table.*, Table.[Key:value] or Table.N, not {path:?}")));
    };
    Ok((table.to_string(), select))
}

/// Splits `a:"x,y",b:2` at the commas outside quotes.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn count_of(v: &Json) -> Result<Count, BadTask> {
    let text = match v {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.trim().to_string(),
        _ => String::new(),
    };
    let n: i64 =
        text.parse().map_err(|_| bad(format!("instances' count is a whole number (\"+1\", \"-1\", 2), not {v}")))?;
    if n.abs() > MAX_INSTANCES {
        return Err(bad(format!("instances adds or deletes at most {MAX_INSTANCES} instances")));
    }
    Ok(if text.starts_with('+') || text.starts_with('-') { Count::Relative(n) } else { Count::Exactly(n) })
}

/// The requests `provisions` come to on `device` now, in order (reboot and reset last), from
/// the cache and tags the store holds; tags are changed here and now.
pub fn expand(
    store: &dyn Store,
    device: &str,
    provisions: &[ProvisionCall],
    now: i64,
) -> Result<Vec<TaskSpec>, crate::store::StoreError> {
    let params = store.params(device)?;
    let cache: HashMap<&str, &CachedParam> = params.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut out = Vec::new();
    let mut sets: Vec<ParameterValue> = Vec::new();
    let mut set_at = None;
    let mut last = Vec::new();
    let mut tags: BTreeMap<&str, bool> = BTreeMap::new();
    for p in provisions {
        match &p.step {
            Provision::Refresh { path, age } => {
                // An object is fresh when everything cached below it is.
                let oldest = if path.ends_with('.') {
                    params.iter().filter(|p| p.name.starts_with(path.as_str())).map(|p| p.updated).min()
                } else {
                    cache.get(path.as_str()).map(|c| c.updated)
                };
                let fresh = age.is_some_and(|a| oldest.is_some_and(|t| t + a >= now));
                if fresh {
                    continue;
                }
                out.push(if path.ends_with('.') {
                    TaskSpec::RefreshObject { object_name: path.trim_end_matches('.').to_string() }
                } else {
                    TaskSpec::get(vec![path.clone()])
                });
            }
            Provision::Value { value, typed } => {
                let (value, same) = crate::presets::as_cached(value, *typed, cache.get(value.name.as_str()).copied());
                if !same {
                    // One SetParameterValues for every value, where the first one stood.
                    set_at.get_or_insert(out.len());
                    sets.retain(|s| s.name != value.name);
                    sets.push(value);
                }
            }
            Provision::Tag { tag, on } => drop(tags.insert(tag, *on)),
            Provision::Reboot => last.push(TaskSpec::Reboot),
            Provision::Reset => last.push(TaskSpec::FactoryReset),
            Provision::Download { file_type, file_name, target_file_name } => out.push(TaskSpec::Download {
                file: None,
                file_type: file_type.clone(),
                file_name: file_name.clone(),
                target_file_name: target_file_name.clone(),
            }),
            // Tasks naming scripts run in the session's provisioning, not here.
            Provision::Script { .. } => {}
            Provision::Instances { table, select, count } => {
                let found = instances(&params, table, select);
                let target = match count {
                    Count::Relative(d) => (found.len() as i64 + d).max(0),
                    Count::Exactly(n) => (*n).max(0),
                };
                let have = found.len() as i64;
                let parameter_values: Vec<ParameterValue> = match select {
                    Select::Alias(keys) => {
                        keys.iter().filter_map(|(k, v)| crate::tasks::triple(&json!([k, v])).ok()).collect()
                    }
                    Select::All | Select::Number(_) => Vec::new(),
                };
                for _ in have..target {
                    out.push(TaskSpec::AddObject {
                        object_name: format!("{table}."),
                        parameter_values: parameter_values.clone(),
                    });
                }
                // The newest go first.
                for n in found.iter().rev().take((have - target).max(0) as usize) {
                    out.push(TaskSpec::DeleteObject { object_name: format!("{table}.{n}.") });
                }
            }
        }
    }
    if let Some(i) = set_at {
        out.insert(i, TaskSpec::set(sets));
    }
    // A reset makes a reboot needless.
    if last.contains(&TaskSpec::FactoryReset) {
        last.retain(|t| *t == TaskSpec::FactoryReset);
    }
    last.dedup();
    out.extend(last);
    if !tags.is_empty() {
        if let Some(dev) = store.device(device)? {
            let mut new = dev.tags.clone();
            for (t, on) in tags {
                match (on, new.iter().any(|x| x == t)) {
                    (true, false) => new.push(t.to_string()),
                    (false, true) => new.retain(|x| x != t),
                    _ => {}
                }
            }
            if new != dev.tags {
                store.set_tags(device, &new)?;
            }
        }
    }
    Ok(out)
}

/// The instance numbers of `table` the cache holds that `select` picks, ascending.
fn instances(params: &[CachedParam], table: &str, select: &Select) -> Vec<u64> {
    crate::presets::table_rows(params, table)
        .into_iter()
        .filter(|(n, row)| match select {
            Select::All => true,
            Select::Number(want) => n == want,
            Select::Alias(keys) => {
                keys.iter().all(|(k, v)| row.get(k.as_str()) == Some(&crate::presets::lexical(v).as_str()))
            }
        })
        .map(|(n, _)| n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeviceStore, ParamStore};

    fn err(p: Json) -> String {
        from_json(&json!({"provisions": [p]})).expect_err("refused").0
    }

    #[test]
    fn arguments_are_checked_as_genieacs_checks_them() {
        let ok = from_json(&json!({"provisions": [
            ["refresh", "Device.WiFi."], ["refresh", "Device.DeviceInfo.UpTime", 60],
            ["value", "Device.A", "x"], ["value", "Device.B", "value", 5], ["tag", "t", true],
            ["reboot"], ["reset"], ["download", "1 Firmware Upgrade Image", "fw.bin"],
            ["instances", "Device.NAT.PortMapping.[ExternalPort:8080,Protocol:\"TCP\"]", "+1"],
            ["instances", "Device.NAT.PortMapping.*", 0]]}))
        .expect("all built-ins");
        assert_eq!(ok.len(), 10);
        assert_eq!(
            ok[8].step,
            Provision::Instances {
                table: "Device.NAT.PortMapping".into(),
                select: Select::Alias(vec![("ExternalPort".into(), json!(8080)), ("Protocol".into(), json!("TCP"))]),
                count: Count::Relative(1),
            }
        );
        // Read back as given.
        assert_eq!(serde_json::to_value(&ok[3]).expect("json"), json!(["value", "Device.B", "value", 5]));
        assert!(err(json!(["my.script", 1])).contains("nor a script's name"));
        assert_eq!(
            from_json(&json!({"provisions": [["myScript", 1, "a"]]})).expect("a script")[0].step,
            Provision::Script { name: "myScript".into(), args: vec![json!(1), json!("a")] }
        );
        assert_eq!(err(json!(["tag", "t"])), "tag takes [tag, true|false]");
        assert_eq!(err(json!(["reboot", 1])), "reboot takes no arguments");
        assert!(err(json!(["value", "Device.A", "writable", true])).contains("\"value\" only"));
        assert!(err(json!(["instances", "Device.X.*", "lots"])).contains("whole number"));
        assert!(err(json!(["instances", "Device.X.*", 100000])).contains("at most"));
        assert!(err(json!(["instances", "Device.*.Y.*", 1])).contains("one table"));
        assert!(err(json!(["refresh", "Device.", {"a": 1}])).contains("null, booleans"));
        assert!(err(json!("refresh")).contains("an array"));
        assert!(from_json(&json!({"provisions": "x"})).is_err());
    }

    #[test]
    fn what_the_cache_holds_decides_the_requests() {
        let dir = test_support::TempDir::new("acs-provisions");
        let store = crate::store::SqliteStore::open(&dir.join("acs.db")).expect("store");
        let dev = crate::store::Device { id: "d".into(), tags: vec!["old".into()], ..Default::default() };
        store.record_inform(&dev).expect("device");
        let cached = |name: &str, ty: &str, value: &str| CachedParam {
            name: name.into(),
            ty: ty.into(),
            value: value.into(),
            updated: 100,
        };
        store
            .cache_params(
                "d",
                &[
                    cached("Device.A", "unsignedInt", "5"),
                    cached("Device.B", "string", "same"),
                    cached("Device.T.1.Name", "string", "x"),
                    cached("Device.T.2.Name", "string", "y"),
                    cached("Device.T.3.Name", "string", "x"),
                ],
            )
            .expect("cache");
        let calls = from_json(&json!({"provisions": [
            ["reboot"], ["refresh", "Device.A", 60], ["refresh", "Device.B", 10], ["refresh", "Device.T.", 60],
            ["value", "Device.A", "6"],
            ["refresh", "Device.T."], ["value", "Device.B", "same"], ["tag", "old", false], ["tag", "new", true],
            ["instances", "Device.T.[Name:\"x\"]", 1], ["instances", "Device.T.*", "+1"]]}))
        .expect("provisions");
        let out = expand(&store, "d", &calls, 150).expect("expand");
        assert_eq!(
            out,
            [
                TaskSpec::get(vec!["Device.B".into()]),
                TaskSpec::set(vec![ParameterValue::new("Device.A", cwmp::Value::UnsignedInt(6))]),
                TaskSpec::RefreshObject { object_name: "Device.T".into() },
                TaskSpec::DeleteObject { object_name: "Device.T.3.".into() },
                TaskSpec::AddObject { object_name: "Device.T.".into(), parameter_values: vec![] },
                TaskSpec::Reboot,
            ],
            "fresh and equal values left alone, the string typed as cached, the newest match deleted, reboot last"
        );
        assert_eq!(store.device("d").expect("read").expect("device").tags, ["new"]);
    }
}
