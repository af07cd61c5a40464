//! An in-memory data model with TR-069 semantics: values checked against the schema, tables
//! whose instance numbers only grow, NumberOfEntries computed from the rows, live getters.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cwmp::{Fault, FaultCode, ParameterFault, ParameterInfo, ParameterValue, Value};
use serde::{Deserialize, Serialize};

use crate::handler::Handler;
use crate::path::{parent, Path};
use crate::schema::{Access, ObjectDef, Schema};

/// Computes a live value for a parameter (its concrete path is passed in).
pub type Getter = Arc<dyn Fn(&str) -> Option<Value> + Send + Sync>;

/// A table's bookkeeping: the next instance number and the live ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    next: u32,
    live: BTreeSet<u32>,
}

/// One stored piece of a tree's state, at its path (see [`Snapshot::rows`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Row {
    /// A parameter's value.
    Value(Value),
    /// A table (the path ends with its name and a dot).
    Table(Table),
    /// A write-once parameter that was written.
    WrittenOnce,
}

/// The kind of a [`Row`], which with its path keys it (a parameter's value and the fact that it
/// was written once share a path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// [`Row::Value`].
    Value,
    /// [`Row::Table`].
    Table,
    /// [`Row::WrittenOnce`].
    WrittenOnce,
}

impl Part {
    /// A short stable name, for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Value => "v",
            Part::Table => "t",
            Part::WrittenOnce => "o",
        }
    }
}

impl Row {
    /// Its kind.
    pub fn part(&self) -> Part {
        match self {
            Row::Value(_) => Part::Value,
            Row::Table(_) => Part::Table,
            Row::WrittenOnce => Part::WrittenOnce,
        }
    }
}

/// The rows that changed since the last [`Tree::take_changes`]: each as it is now, `None` when
/// it is gone. Applied to the rows stored before, it gives the tree's [`Snapshot::rows`].
pub type Changes = BTreeMap<(Part, String), Option<Row>>;

/// What a partial path names.
enum Target {
    Object(usize),
    Table(usize),
}

/// A data model held in memory (static values plus optional live getters). Cloning is cheap
/// enough to build a candidate configuration and check it before it replaces the live one.
#[derive(Clone)]
pub struct Tree {
    schema: Arc<Schema>,
    values: BTreeMap<String, Value>,
    tables: HashMap<String, Table>,
    written_once: HashSet<String>,
    getters: HashMap<String, Getter>,
    /// The rows changed since changes were last taken, when they are tracked.
    journal: Option<BTreeSet<(Part, String)>>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("values", &self.values.len()).field("tables", &self.tables.len()).finish()
    }
}

fn fault(code: FaultCode, msg: impl Into<String>) -> Fault {
    Fault::with_string(code, msg)
}

fn pfault(name: &str, code: FaultCode, msg: impl Into<String>) -> ParameterFault {
    ParameterFault { parameter_name: name.to_string(), code, string: msg.into() }
}

impl Tree {
    /// A tree with every single-instance object of `schema` and empty tables.
    pub fn new(schema: Arc<Schema>) -> Tree {
        let mut t = Tree {
            schema,
            values: BTreeMap::new(),
            tables: HashMap::new(),
            written_once: HashSet::new(),
            getters: HashMap::new(),
            journal: None,
        };
        if !t.schema.objects.is_empty() {
            let root = t.schema.objects[0].path.clone();
            t.create_object(&root, 0);
        }
        t
    }

    /// The schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Serves parameter `template` (e.g. `Device.DeviceInfo.UpTime`) from `getter` on every read.
    pub fn bind_getter(&mut self, template: &str, getter: Getter) {
        self.getters.insert(template.to_string(), getter);
    }

    fn create_object(&mut self, prefix: &str, idx: usize) {
        let schema = self.schema.clone();
        let o = &schema.objects[idx];
        if o.mount {
            return;
        }
        for &pi in &o.params {
            let p = &schema.params[pi];
            let path = format!("{prefix}{}", p.name);
            self.touch(Part::Value, &path);
            self.values.insert(path, p.default_value());
        }
        for &ci in &o.children {
            let c = &schema.objects[ci];
            let name = child_name(&o.path, c);
            if c.multi {
                let path = format!("{prefix}{name}.");
                self.touch(Part::Table, &path);
                self.tables.insert(path, Table { next: 1, live: BTreeSet::new() });
            } else {
                self.create_object(&format!("{prefix}{name}."), ci);
            }
        }
    }

    /// Whether every instance number in `concrete` names a live row.
    fn instances_exist(&self, concrete: &str) -> bool {
        let mut end = 0;
        for seg in concrete.split('.') {
            let start = end;
            end += seg.len() + 1;
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                let table = &concrete[..start];
                let Ok(n) = seg.parse::<u32>() else { return false };
                match self.tables.get(table) {
                    Some(t) if t.live.contains(&n) => {}
                    _ => return false,
                }
            }
        }
        true
    }

    fn resolve_object(&self, p: &Path<'_>) -> Result<Target, Fault> {
        let unknown = || fault(FaultCode::InvalidParameterName, format!("{} is not an object here", p.text));
        let target = if let Some(i) = self.schema.object_index(&p.template) {
            Target::Object(i)
        } else if let Some(i) = self.schema.object_index(&format!("{}{{i}}.", p.template)) {
            Target::Table(i)
        } else {
            return Err(unknown());
        };
        if !self.instances_exist(p.text) {
            return Err(unknown());
        }
        if let Target::Table(_) = target {
            if !self.tables.contains_key(p.text) {
                return Err(unknown());
            }
        }
        Ok(target)
    }

    fn materialize(&self, path: &str, stored: &Value) -> Value {
        if path.ends_with("NumberOfEntries") || !self.getters.is_empty() {
            if let Ok(p) = Path::parse(path) {
                if let Some(g) = self.getters.get(&p.template) {
                    if let Some(v) = g(path) {
                        return v;
                    }
                }
                if let Some(row) = self.schema.entries_table(&p.template) {
                    let table = format!("{}{}.", parent(path), last_segment(row.table_path().unwrap_or("")));
                    let n = self.tables.get(&table).map_or(0, |t| t.live.len());
                    return Value::UnsignedInt(n as u32);
                }
            }
        }
        stored.clone()
    }

    /// Values of a full parameter path or of everything below a partial path ("" is the root).
    pub fn get(&self, path: &str) -> Result<Vec<ParameterValue>, Fault> {
        let path = if path.is_empty() { self.schema.root() } else { path };
        let p = Path::parse(path).map_err(|(c, m)| fault(c, m))?;
        if p.partial {
            self.resolve_object(&p)?;
            Ok(self
                .values
                .range::<str, _>((std::ops::Bound::Included(path), std::ops::Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(path))
                .map(|(k, v)| ParameterValue::new(k.clone(), self.readable(k, v)))
                .collect())
        } else {
            match self.values.get(path) {
                Some(v) if self.schema.param(&p.template).is_some() => {
                    Ok(vec![ParameterValue::new(path, self.readable(path, v))])
                }
                _ => Err(fault(FaultCode::InvalidParameterName, format!("no parameter {path}"))),
            }
        }
    }

    /// A value as GetParameterValues shows it: hidden parameters (passwords, keys) read as an
    /// empty string whatever they hold.
    fn readable(&self, path: &str, v: &Value) -> Value {
        let hidden = Path::parse(path).ok().and_then(|p| self.schema.param(&p.template)).is_some_and(|d| d.hidden);
        if hidden {
            Value::String(String::new())
        } else {
            self.materialize(path, v)
        }
    }

    /// One value, as stored (hidden ones included: this is for the device's own use).
    pub fn value(&self, path: &str) -> Option<Value> {
        self.values.get(path).map(|v| self.materialize(path, v))
    }

    /// GetParameterNames.
    pub fn names(&self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        let mut out = Vec::new();
        if path.is_empty() {
            let root = self.schema.root().to_string();
            if next_level {
                out.push(ParameterInfo { name: root, writable: false });
                return Ok(out);
            }
            return self.names(&root, false);
        }
        let p = Path::parse(path).map_err(|(c, m)| fault(c, m))?;
        if !p.partial {
            let def = self.schema.param(&p.template);
            if def.is_none() || !self.values.contains_key(path) {
                return Err(fault(FaultCode::InvalidParameterName, format!("no parameter {path}")));
            }
            if next_level {
                return Err(fault(FaultCode::InvalidArguments, "NextLevel true needs a partial path"));
            }
            out.push(ParameterInfo {
                name: path.to_string(),
                writable: self.param_writable(path, def.map(|d| d.access)),
            });
            return Ok(out);
        }
        match self.resolve_object(&p)? {
            Target::Object(i) => self.walk_object(path, i, next_level, true, &mut out),
            Target::Table(i) => self.walk_table(path, i, next_level, true, &mut out),
        }
        Ok(out)
    }

    fn param_writable(&self, path: &str, access: Option<Access>) -> bool {
        match access {
            Some(Access::ReadWrite) => true,
            Some(Access::WriteOnce) => !self.written_once.contains(path),
            _ => false,
        }
    }

    fn walk_object(&self, prefix: &str, idx: usize, next_level: bool, top: bool, out: &mut Vec<ParameterInfo>) {
        let o = &self.schema.objects[idx];
        if top && !next_level {
            out.push(ParameterInfo { name: prefix.to_string(), writable: o.multi && o.writable });
        }
        if o.mount {
            return;
        }
        for &pi in &o.params {
            let p = &self.schema.params[pi];
            let name = format!("{prefix}{}", p.name);
            let writable = self.param_writable(&name, Some(p.access));
            out.push(ParameterInfo { name, writable });
        }
        for &ci in &o.children {
            let c = &self.schema.objects[ci];
            let child = format!("{prefix}{}.", child_name(&o.path, c));
            if next_level {
                out.push(ParameterInfo { name: child, writable: c.multi && c.writable });
            } else if c.multi {
                self.walk_table(&child, ci, false, true, out);
            } else {
                self.walk_object(&child, ci, false, true, out);
            }
        }
    }

    fn walk_table(&self, table: &str, row: usize, next_level: bool, top: bool, out: &mut Vec<ParameterInfo>) {
        let o = &self.schema.objects[row];
        if top && !next_level {
            out.push(ParameterInfo { name: table.to_string(), writable: o.writable });
        }
        let Some(t) = self.tables.get(table) else { return };
        for n in &t.live {
            let inst = format!("{table}{n}.");
            if next_level {
                out.push(ParameterInfo { name: inst, writable: o.writable });
            } else {
                self.walk_object(&inst, row, false, true, out);
            }
        }
    }

    /// Checks a SetParameterValues (or part of one) without applying it; returns the values in
    /// their parameters' types, or every parameter's fault.
    pub fn validate(&self, values: &[ParameterValue]) -> Result<Vec<(String, Value)>, Vec<ParameterFault>> {
        let mut faults = Vec::new();
        let mut ok = Vec::with_capacity(values.len());
        let mut seen = HashSet::with_capacity(values.len());
        for pv in values {
            let name = pv.name.as_str();
            if !seen.insert(name) {
                faults.push(pfault(name, FaultCode::InvalidArguments, "parameter named twice"));
                continue;
            }
            let p = match Path::parse(name) {
                Ok(p) if !p.partial => p,
                Ok(_) => {
                    faults.push(pfault(name, FaultCode::InvalidParameterName, "an object path cannot be set"));
                    continue;
                }
                Err((c, m)) => {
                    faults.push(pfault(name, c, m));
                    continue;
                }
            };
            let Some(def) = self.schema.param(&p.template).filter(|_| self.values.contains_key(name)) else {
                faults.push(pfault(name, FaultCode::InvalidParameterName, "no such parameter"));
                continue;
            };
            if !self.param_writable(name, Some(def.access)) {
                faults.push(pfault(name, FaultCode::NonWritableParameter, "parameter is read-only"));
                continue;
            }
            match def.check(&pv.value) {
                Ok(v) => ok.push((pv.name.clone(), v)),
                Err((c, m)) => faults.push(pfault(name, c, m)),
            }
        }
        if faults.is_empty() {
            self.check_unique(&ok, &mut faults);
        }
        if faults.is_empty() {
            Ok(ok)
        } else {
            Err(faults)
        }
    }

    fn check_unique(&self, pending: &[(String, Value)], faults: &mut Vec<ParameterFault>) {
        let lookup: HashMap<&str, &Value> = pending.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let value_at = |path: &str| -> Option<Value> {
            lookup.get(path).map(|v| (*v).clone()).or_else(|| self.values.get(path).cloned())
        };
        for (path, _) in pending {
            let Ok(p) = Path::parse(path) else { continue };
            let Some(def) = self.schema.param(&p.template) else { continue };
            let obj: &ObjectDef = &self.schema.objects[def.object];
            if !obj.multi {
                continue;
            }
            let row = parent(path);
            let table = parent(row);
            let Some(t) = self.tables.get(table) else { continue };
            for key in obj.keys.iter().filter(|k| k.params.contains(&def.name)) {
                let tuple = |r: &str| -> Option<Vec<Value>> {
                    let vals: Vec<Value> = key.params.iter().filter_map(|k| value_at(&format!("{r}{k}"))).collect();
                    let unassigned = vals.iter().any(|v| {
                        matches!(v, Value::String(s) if s.is_empty())
                            || matches!(v, Value::UnsignedInt(0) | Value::Int(0))
                    });
                    (!unassigned && vals.len() == key.params.len()).then_some(vals)
                };
                let Some(mine) = tuple(row) else { continue };
                for n in &t.live {
                    let other = format!("{table}{n}.");
                    if other != row && tuple(&other).as_ref() == Some(&mine) {
                        faults.push(pfault(
                            path,
                            FaultCode::InvalidParameterValue,
                            format!("{} must be unique in {table}: {other} has the same", key.params.join("+")),
                        ));
                    }
                }
            }
        }
    }

    /// Applies values returned by [`Tree::validate`].
    pub fn apply(&mut self, values: Vec<(String, Value)>) {
        for (k, v) in values {
            if let Ok(p) = Path::parse(&k) {
                if self.schema.param(&p.template).is_some_and(|d| d.access == Access::WriteOnce) {
                    self.touch(Part::WrittenOnce, &k);
                    self.written_once.insert(k.clone());
                }
            }
            self.touch(Part::Value, &k);
            self.values.insert(k, v);
        }
    }

    /// Sets a value from inside the device (read-only parameters included): status, counters.
    pub fn set_internal(&mut self, path: &str, value: Value) -> Result<(), Fault> {
        let p = Path::parse(path).map_err(|(c, m)| fault(c, m))?;
        let def = self
            .schema
            .param(&p.template)
            .filter(|_| self.values.contains_key(path))
            .ok_or_else(|| fault(FaultCode::InvalidParameterName, format!("no parameter {path}")))?;
        let v = def.check(&value).map_err(|(c, m)| fault(c, m))?;
        if self.values.get(path) != Some(&v) {
            self.touch(Part::Value, path);
            self.values.insert(path.to_string(), v);
        }
        Ok(())
    }

    /// AddObject on a table path (`Device.NAT.PortMapping.`); returns the new instance number.
    pub fn add_object(&mut self, path: &str) -> Result<u32, Fault> {
        self.add_row(path, false)
    }

    /// Adds a row from inside the device, read-only tables included (Hosts.Host from leases).
    pub fn add_object_internal(&mut self, path: &str) -> Result<u32, Fault> {
        self.add_row(path, true)
    }

    fn add_row(&mut self, path: &str, internal: bool) -> Result<u32, Fault> {
        let p = Path::parse(path).map_err(|(c, m)| fault(c, m))?;
        let row_idx = match (p.partial, self.resolve_object(&p)?) {
            (true, Target::Table(i)) => i,
            _ => return Err(fault(FaultCode::InvalidParameterName, format!("{path} is not a table"))),
        };
        let row = &self.schema.objects[row_idx];
        if !row.writable && !internal {
            return Err(fault(FaultCode::InvalidParameterName, format!("{path} does not take AddObject")));
        }
        let max = row.max_entries;
        let t = self
            .tables
            .get_mut(path)
            .ok_or_else(|| fault(FaultCode::InvalidParameterName, format!("{path} is not a table")))?;
        if max.is_some_and(|m| t.live.len() as u32 >= m) {
            return Err(fault(FaultCode::ResourcesExceeded, format!("{path} is full ({} entries)", t.live.len())));
        }
        let n = t.next;
        t.next += 1;
        t.live.insert(n);
        self.touch(Part::Table, path);
        let prefix = format!("{path}{n}.");
        self.create_object(&prefix, row_idx);
        let alias = format!("{prefix}Alias");
        if let Some(Value::String(s)) = self.values.get_mut(&alias) {
            *s = format!("cpe-{n}");
        }
        Ok(n)
    }

    /// DeleteObject on an instance path (`Device.NAT.PortMapping.2.`).
    pub fn delete_object(&mut self, path: &str) -> Result<(), Fault> {
        self.delete_row(path, false)
    }

    /// Deletes a row from inside the device, read-only tables included.
    pub fn delete_object_internal(&mut self, path: &str) -> Result<(), Fault> {
        self.delete_row(path, true)
    }

    fn delete_row(&mut self, path: &str, internal: bool) -> Result<(), Fault> {
        let p = Path::parse(path).map_err(|(c, m)| fault(c, m))?;
        let not_instance = || fault(FaultCode::InvalidParameterName, format!("{path} is not an instance"));
        if !p.partial || !p.template.ends_with("{i}.") {
            return Err(not_instance());
        }
        let row = self.schema.object(&p.template).ok_or_else(not_instance)?;
        if !self.instances_exist(path) {
            return Err(not_instance());
        }
        if !row.writable && !internal {
            return Err(fault(FaultCode::InvalidParameterName, format!("{path} does not take DeleteObject")));
        }
        let table = parent(path).to_string();
        let n: u32 = last_segment(path.trim_end_matches('.')).parse().map_err(|_| not_instance())?;
        let doomed: Vec<String> = self
            .values
            .range::<str, _>((std::ops::Bound::Included(path), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(path))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.touch(Part::Value, &k);
            self.values.remove(&k);
        }
        let tables: Vec<String> = self.tables.keys().filter(|k| k.starts_with(path)).cloned().collect();
        let once: Vec<String> = self.written_once.iter().filter(|k| k.starts_with(path)).cloned().collect();
        for k in tables {
            self.touch(Part::Table, &k);
            self.tables.remove(&k);
        }
        for k in once {
            self.touch(Part::WrittenOnce, &k);
            self.written_once.remove(&k);
        }
        self.touch(Part::Table, &table);
        if let Some(t) = self.tables.get_mut(&table) {
            t.live.remove(&n);
        }
        Ok(())
    }

    /// Live instance numbers of a table path.
    pub fn instances(&self, table: &str) -> Vec<u32> {
        self.tables.get(table).map(|t| t.live.iter().copied().collect()).unwrap_or_default()
    }

    /// Whether the active-notification request for this parameter may be refused (9009).
    pub fn can_deny_active(&self, path: &str) -> bool {
        Path::parse(path)
            .ok()
            .and_then(|p| self.schema.param(&p.template).map(|d| d.notify))
            .is_some_and(|n| n == crate::schema::NotifyPolicy::CanDeny)
    }
}

/// A tree's state, for persisting it: values, tables with their next instance numbers, and
/// which write-once parameters were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    values: BTreeMap<String, Value>,
    tables: BTreeMap<String, Table>,
    written_once: BTreeSet<String>,
}

impl Snapshot {
    /// The state as rows keyed by path, for a store that keeps each row apart (and then writes
    /// only what [`Tree::take_changes`] reports).
    pub fn rows(&self) -> impl Iterator<Item = (&str, Row)> {
        let values = self.values.iter().map(|(k, v)| (k.as_str(), Row::Value(v.clone())));
        let tables = self.tables.iter().map(|(k, t)| (k.as_str(), Row::Table(t.clone())));
        let once = self.written_once.iter().map(|k| (k.as_str(), Row::WrittenOnce));
        values.chain(tables).chain(once)
    }

    /// The state from rows as [`Snapshot::rows`] gave them (checked by [`Tree::restore`]).
    pub fn from_rows(rows: impl IntoIterator<Item = (String, Row)>) -> Snapshot {
        let mut s = Snapshot { values: BTreeMap::new(), tables: BTreeMap::new(), written_once: BTreeSet::new() };
        for (path, row) in rows {
            match row {
                Row::Value(v) => {
                    s.values.insert(path, v);
                }
                Row::Table(t) => {
                    s.tables.insert(path, t);
                }
                Row::WrittenOnce => {
                    s.written_once.insert(path);
                }
            }
        }
        s
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.next == other.next && self.live == other.live
    }
}

impl Tree {
    /// The values the tree holds (set, written internally, or restored), not the schema's
    /// defaults of parameters never written.
    pub fn stored_values(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Starts (or restarts) recording which rows change, for [`Tree::take_changes`]: what lets
    /// a large tree be persisted by its changes rather than whole.
    pub fn track_changes(&mut self) {
        self.journal = Some(BTreeSet::new());
    }

    /// The rows changed since tracking started or changes were last taken, as they are now
    /// (`None`: gone); empty when changes are not tracked.
    pub fn take_changes(&mut self) -> Changes {
        let Some(journal) = self.journal.as_mut() else { return Changes::new() };
        let touched = std::mem::take(journal);
        touched
            .into_iter()
            .map(|(part, path)| {
                let row = match part {
                    Part::Value => self.values.get(&path).cloned().map(Row::Value),
                    Part::Table => self.tables.get(&path).cloned().map(Row::Table),
                    Part::WrittenOnce => self.written_once.contains(&path).then_some(Row::WrittenOnce),
                };
                ((part, path), row)
            })
            .collect()
    }

    fn touch(&mut self, part: Part, path: &str) {
        if let Some(j) = self.journal.as_mut() {
            j.insert((part, path.to_string()));
        }
    }

    /// The state to persist.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            values: self.values.clone(),
            tables: self.tables.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            written_once: self.written_once.iter().cloned().collect(),
        }
    }

    /// Rebuilds a tree from a snapshot, checking every value against the schema (a damaged or
    /// foreign state file is refused with the path that does not fit).
    pub fn restore(schema: Arc<Schema>, snap: Snapshot) -> Result<Tree, String> {
        for (path, v) in &snap.values {
            let p = Path::parse(path).map_err(|(_, m)| m)?;
            let def = schema.param(&p.template).ok_or_else(|| format!("{path}: not in the data model"))?;
            if v.xsd_type() != def.ty {
                return Err(format!("{path}: stored as {}, defined as {}", v.xsd_type().qname(), def.ty.qname()));
            }
        }
        for table in snap.tables.keys() {
            let p = Path::parse(table).map_err(|(_, m)| m)?;
            if schema.object(&format!("{}{{i}}.", p.template)).is_none() {
                return Err(format!("{table}: not a table of the data model"));
            }
        }
        Ok(Tree {
            schema,
            values: snap.values,
            tables: snap.tables.into_iter().collect(),
            written_once: snap.written_once.into_iter().collect(),
            getters: HashMap::new(),
            journal: None,
        })
    }
}

fn last_segment(path: &str) -> &str {
    let t = path.strip_suffix('.').unwrap_or(path);
    t.rsplit('.').next().unwrap_or(t)
}

/// The segment a child object adds below its parent's template (`Pool` for `...Server.Pool.{i}.`).
fn child_name<'a>(parent_template: &str, child: &'a ObjectDef) -> &'a str {
    let rest = child.path.strip_prefix(parent_template).unwrap_or(&child.path);
    let rest = rest.strip_suffix("{i}.").unwrap_or(rest);
    rest.strip_suffix('.').unwrap_or(rest)
}

impl Handler for Tree {
    fn get(&self, path: &str) -> Result<Vec<ParameterValue>, Fault> {
        Tree::get(self, path)
    }
    fn names(&self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        Tree::names(self, path, next_level)
    }
    fn validate_set(&self, values: &[ParameterValue]) -> Result<Vec<ParameterValue>, Vec<ParameterFault>> {
        Ok(self.validate(values)?.into_iter().map(|(name, v)| ParameterValue::new(name, v)).collect())
    }
    fn apply_set(&mut self, values: &[ParameterValue]) -> Result<(), Fault> {
        self.apply(values.iter().map(|p| (p.name.clone(), p.value.clone())).collect());
        Ok(())
    }
    fn add_object(&mut self, table: &str) -> Result<u32, Fault> {
        Tree::add_object(self, table)
    }
    fn delete_object(&mut self, object: &str) -> Result<(), Fault> {
        Tree::delete_object(self, object)
    }
    fn can_deny_active(&self, path: &str) -> bool {
        Tree::can_deny_active(self, path)
    }
}
