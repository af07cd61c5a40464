//! [`DataModel`]: the CWMP-facing data model of a device. A root [`Tree`] plus subtrees mounted
//! from other [`Handler`]s, with attributes (notification, access list), value-change tracking
//! for "4 VALUE CHANGE", the ParameterKey, and all-or-nothing SetParameterValues across mounts:
//! validated once into a [`SetPlan`], which the apply step consumes.

use std::collections::{BTreeMap, HashMap, HashSet};

use cwmp::{
    Fault, FaultCode, Notification, ParameterAttribute, ParameterFault, ParameterInfo, ParameterValue,
    SetParameterAttribute, Value,
};

use crate::handler::Handler;
use crate::path::Path;
use crate::tree::Tree;

/// Where the ParameterKey is, below the root object (`Device.` or `InternetGatewayDevice.`).
const PARAMETER_KEY: &str = "ManagementServer.ParameterKey";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Attr {
    notification: Notification,
    access_list: Vec<String>,
}

/// Parameters whose values changed since they were last reported, for the next Inform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueChanges {
    /// A changed parameter has active notification: open a session with "4 VALUE CHANGE" now.
    pub active: bool,
    /// The changed parameters with their current values (passive ones included).
    pub changed: Vec<ParameterValue>,
}

/// A SetParameterValues validated everywhere: the root's values in their parameters' types and
/// each mount's part as its handler validated it. Made by [`DataModel::plan_set`] only and
/// consumed by [`DataModel::apply_set`] (or [`DataModel::apply_set_with`]), so a set is validated
/// once and cannot be applied without it.
#[derive(Debug)]
#[must_use = "a plan changes nothing until it is applied"]
pub struct SetPlan {
    root: Vec<(String, Value)>,
    mounts: Vec<MountPart>,
    names: Vec<String>,
    parameter_key: String,
}

impl SetPlan {
    /// Each mount's part, in mount order.
    pub fn mount_parts(&self) -> &[MountPart] {
        &self.mounts
    }

    /// The fault for refused values (9003, every refused parameter listed, in the data model's
    /// paths): what a refusal of the whole set looks like.
    pub fn refused(&self, faults: Vec<ParameterFault>) -> Fault {
        refused(faults, self.names.len())
    }
}

/// One mount's part of a [`SetPlan`].
#[derive(Debug, Clone, PartialEq)]
pub struct MountPart {
    /// Where the handler is mounted (ending in `Device.`).
    pub prefix: String,
    /// The values in the handler's own paths, as its [`Handler::validate_set`] returned them:
    /// what its [`Handler::apply_set`] takes.
    pub values: Vec<ParameterValue>,
}

impl MountPart {
    /// A path of the handler's (`Device.…`) as the data model names it.
    pub fn outer(&self, path: &str) -> String {
        outer(&self.prefix, path)
    }
}

fn refused(faults: Vec<ParameterFault>, of: usize) -> Fault {
    Fault {
        code: FaultCode::InvalidArguments,
        string: format!("{} of {} parameters refused; nothing was changed", faults.len(), of),
        set_parameter_values_faults: faults,
    }
}

/// A device's data model as CWMP sees it.
pub struct DataModel {
    root: Tree,
    mounts: BTreeMap<String, Box<dyn Handler>>,
    attrs: HashMap<String, Attr>,
    reported: HashMap<String, Value>,
    parameter_key: String,
}

impl std::fmt::Debug for DataModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataModel")
            .field("root", &self.root)
            .field("mounts", &self.mounts.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where a path is served.
enum Route<'a> {
    Root,
    Mount(&'a str),
}

fn inner(prefix: &str, path: &str) -> String {
    format!("Device.{}", &path[prefix.len()..])
}

fn outer(prefix: &str, path: &str) -> String {
    format!("{prefix}{}", path.strip_prefix("Device.").unwrap_or(path))
}

impl DataModel {
    /// A data model served by `root` alone.
    pub fn new(root: Tree) -> DataModel {
        DataModel {
            root,
            mounts: BTreeMap::new(),
            attrs: HashMap::new(),
            reported: HashMap::new(),
            parameter_key: String::new(),
        }
    }

    /// The root tree (for the host's own updates: status, counters).
    pub fn root(&self) -> &Tree {
        &self.root
    }
    /// The root tree, mutable.
    pub fn root_mut(&mut self) -> &mut Tree {
        &mut self.root
    }

    /// Serves everything below `prefix` (ending in `Device.`) from `handler`, whose own paths
    /// start with `Device.`. Replaces an earlier mount at the same place.
    pub fn mount(&mut self, prefix: &str, handler: Box<dyn Handler>) {
        self.mounts.insert(prefix.to_string(), handler);
    }

    /// Removes a mount; its attributes go with it.
    pub fn unmount(&mut self, prefix: &str) -> Option<Box<dyn Handler>> {
        self.attrs.retain(|k, _| !k.starts_with(prefix));
        self.reported.retain(|k, _| !k.starts_with(prefix));
        self.mounts.remove(prefix)
    }

    /// Mount prefixes in use.
    pub fn mounts(&self) -> impl Iterator<Item = &str> {
        self.mounts.keys().map(String::as_str)
    }

    /// The current ParameterKey.
    pub fn parameter_key(&self) -> &str {
        &self.parameter_key
    }

    fn route<'a>(&'a self, path: &str) -> Route<'a> {
        for prefix in self.mounts.keys() {
            if path.starts_with(prefix.as_str()) {
                return Route::Mount(prefix);
            }
        }
        Route::Root
    }

    fn mounts_below<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a String, &'a Box<dyn Handler>)> + 'a {
        self.mounts.iter().filter(move |(p, _)| p.starts_with(path))
    }

    fn get_one(&self, name: &str) -> Result<Vec<ParameterValue>, Fault> {
        match self.route(name) {
            Route::Mount(prefix) => {
                let h = &self.mounts[prefix];
                let mut v = h.get(&inner(prefix, name))?;
                for pv in &mut v {
                    pv.name = outer(prefix, &pv.name);
                }
                Ok(v)
            }
            Route::Root => {
                let mut v = self.root.get(name)?;
                if name.is_empty() || name.ends_with('.') {
                    let path = if name.is_empty() { self.root.schema().root() } else { name };
                    for (prefix, h) in self.mounts_below(path) {
                        for mut pv in h.get("Device.")? {
                            pv.name = outer(prefix, &pv.name);
                            v.push(pv);
                        }
                    }
                }
                Ok(v)
            }
        }
    }

    /// GetParameterValues over full and partial paths.
    pub fn get_parameter_values(&self, names: &[String]) -> Result<Vec<ParameterValue>, Fault> {
        let mut out = Vec::new();
        for n in names {
            out.extend(self.get_one(n)?);
        }
        Ok(out)
    }

    /// GetParameterNames.
    pub fn get_parameter_names(&self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        match self.route(path) {
            Route::Mount(prefix) => {
                let h = &self.mounts[prefix];
                let mut v = h.names(&inner(prefix, path), next_level)?;
                for pi in &mut v {
                    pi.name = outer(prefix, &pi.name);
                }
                Ok(v)
            }
            Route::Root => {
                let mut v = self.root.names(path, next_level)?;
                if !next_level && (path.is_empty() || path.ends_with('.')) {
                    let path = if path.is_empty() { self.root.schema().root() } else { path };
                    for (prefix, h) in self.mounts_below(path) {
                        for mut pi in h.names("Device.", false)? {
                            if pi.name == "Device." {
                                continue; // the mount point is listed by the root tree
                            }
                            pi.name = outer(prefix, &pi.name);
                            v.push(pi);
                        }
                    }
                }
                Ok(v)
            }
        }
    }

    /// Checks a SetParameterValues everywhere without applying it.
    pub fn validate_set_parameter_values(&self, values: &[ParameterValue]) -> Result<(), Fault> {
        self.plan_set(values, "").map(|_| ())
    }

    /// Validates every part of a SetParameterValues (the root's values, and each mount's part
    /// by its handler) and returns what to apply, or every refused parameter (9003).
    pub fn plan_set(&self, values: &[ParameterValue], parameter_key: &str) -> Result<SetPlan, Fault> {
        let mut faults = Vec::new();
        let mut seen = HashSet::new();
        let mut root_part = Vec::new();
        let mut mount_parts: BTreeMap<&str, Vec<ParameterValue>> = BTreeMap::new();
        for pv in values {
            if !seen.insert(pv.name.as_str()) {
                faults.push(ParameterFault {
                    parameter_name: pv.name.clone(),
                    code: FaultCode::InvalidArguments,
                    string: "parameter named twice".into(),
                });
                continue;
            }
            match self.route(&pv.name) {
                Route::Root => root_part.push(pv.clone()),
                Route::Mount(p) => {
                    mount_parts.entry(p).or_default().push(ParameterValue::new(inner(p, &pv.name), pv.value.clone()))
                }
            }
        }
        let coerced = match self.root.validate(&root_part) {
            Ok(c) => c,
            Err(f) => {
                faults.extend(f);
                Vec::new()
            }
        };
        let mut mounts = Vec::with_capacity(mount_parts.len());
        for (prefix, part) in &mount_parts {
            match self.mounts[*prefix].validate_set(part) {
                Ok(values) => mounts.push(MountPart { prefix: prefix.to_string(), values }),
                Err(f) => faults.extend(f.into_iter().map(|mut pf| {
                    pf.parameter_name = outer(prefix, &pf.parameter_name);
                    pf
                })),
            }
        }
        if !faults.is_empty() {
            return Err(refused(faults, values.len()));
        }
        Ok(SetPlan {
            root: coerced,
            mounts,
            names: values.iter().map(|p| p.name.clone()).collect(),
            parameter_key: parameter_key.to_string(),
        })
    }

    /// Applies a plan: each mount's part through its handler, one after the other (a failing
    /// part stops the set there; the root's values are applied only when every part was), then
    /// the root's values and the ParameterKey.
    pub fn apply_set(&mut self, plan: SetPlan) -> Result<u8, Fault> {
        for part in plan.mount_parts() {
            if let Some(h) = self.mounts.get_mut(&part.prefix) {
                h.apply_set(&part.values).map_err(|mut f| {
                    for pf in &mut f.set_parameter_values_faults {
                        pf.parameter_name = part.outer(&pf.parameter_name);
                    }
                    f
                })?;
            }
        }
        self.apply_set_with(plan, |_| Ok(()))
    }

    /// Applies a plan whose mounts' parts `apply_mounts` applies (a caller whose handlers do
    /// I/O can apply them at once), all or nothing: when it fails, nothing else is applied and
    /// its fault is the answer. Then the root's values and the ParameterKey. Values set by the
    /// ACS are not reported back as value changes.
    pub fn apply_set_with(
        &mut self,
        plan: SetPlan,
        apply_mounts: impl FnOnce(&SetPlan) -> Result<(), Fault>,
    ) -> Result<u8, Fault> {
        if !plan.mounts.is_empty() {
            apply_mounts(&plan)?;
        }
        let SetPlan { root, names, parameter_key, .. } = plan;
        self.root.apply(root);
        for name in names {
            if self.attrs.contains_key(&name) {
                if let Ok(mut now) = self.get_one(&name) {
                    if let Some(v) = now.pop() {
                        self.reported.insert(name, v.value);
                    }
                }
            }
        }
        self.set_key(&parameter_key);
        Ok(0)
    }

    /// SetParameterValues: validated everywhere first ([`DataModel::plan_set`]), applied only
    /// when every value is good ([`DataModel::apply_set`]).
    pub fn set_parameter_values(&mut self, values: &[ParameterValue], parameter_key: &str) -> Result<u8, Fault> {
        let plan = self.plan_set(values, parameter_key)?;
        self.apply_set(plan)
    }

    fn set_key(&mut self, key: &str) {
        self.parameter_key = key.to_string();
        let path = format!("{}{PARAMETER_KEY}", self.root.schema().root());
        if self.root.value(&path).is_some() {
            let _ = self.root.set_internal(&path, Value::String(key.to_string()));
        }
    }

    /// AddObject.
    pub fn add_object(&mut self, table: &str, parameter_key: &str) -> Result<u32, Fault> {
        let n = match self.route(table) {
            Route::Mount(prefix) => {
                let prefix = prefix.to_string();
                let inner_path = inner(&prefix, table);
                self.mounts
                    .get_mut(&prefix)
                    .ok_or_else(|| Fault::new(FaultCode::InternalError))?
                    .add_object(&inner_path)?
            }
            Route::Root => self.root.add_object(table)?,
        };
        self.set_key(parameter_key);
        Ok(n)
    }

    /// DeleteObject. Mounts below the deleted instance are removed with it.
    pub fn delete_object(&mut self, object: &str, parameter_key: &str) -> Result<(), Fault> {
        match self.route(object) {
            Route::Mount(prefix) => {
                let prefix = prefix.to_string();
                let inner_path = inner(&prefix, object);
                self.mounts
                    .get_mut(&prefix)
                    .ok_or_else(|| Fault::new(FaultCode::InternalError))?
                    .delete_object(&inner_path)?;
            }
            Route::Root => {
                self.root.delete_object(object)?;
                let gone: Vec<String> = self.mounts.keys().filter(|p| p.starts_with(object)).cloned().collect();
                for p in gone {
                    self.unmount(&p);
                }
            }
        }
        self.attrs.retain(|k, _| !k.starts_with(object));
        self.reported.retain(|k, _| !k.starts_with(object));
        self.set_key(parameter_key);
        Ok(())
    }

    /// Parameter names (not objects) at or below `path`.
    fn params_under(&self, path: &str) -> Result<Vec<String>, Fault> {
        Ok(self
            .get_parameter_names(path, false)?
            .into_iter()
            .filter(|p| !p.name.ends_with('.'))
            .map(|p| p.name)
            .collect())
    }

    fn can_deny_active(&self, path: &str) -> bool {
        match self.route(path) {
            Route::Mount(prefix) => self.mounts[prefix].can_deny_active(&inner(prefix, path)),
            Route::Root => self.root.can_deny_active(path),
        }
    }

    /// Every parameter with attributes set (notification other than off, or an access list),
    /// sorted by name: what a device persists to set again after a restart.
    pub fn attributes(&self) -> Vec<(String, Notification, Vec<String>)> {
        let mut v: Vec<(String, Notification, Vec<String>)> =
            self.attrs.iter().map(|(k, a)| (k.clone(), a.notification, a.access_list.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// SetParameterAttributes, all or nothing. Active notification on parameters that may deny
    /// it (statistics, uptime) is refused with 9009.
    pub fn set_parameter_attributes(&mut self, list: &[SetParameterAttribute]) -> Result<(), Fault> {
        let mut plan: Vec<(String, &SetParameterAttribute)> = Vec::new();
        for s in list {
            if s.access_list.iter().any(|a| a != "Subscriber") {
                return Err(Fault::with_string(
                    FaultCode::InvalidArguments,
                    "the access list may hold only \"Subscriber\"",
                ));
            }
            let path = if s.name.is_empty() { self.root.schema().root().to_string() } else { s.name.clone() };
            if path.ends_with('.') {
                Path::parse(&path).map_err(|(c, m)| Fault::with_string(c, m))?;
            }
            for p in self.params_under(&path)? {
                if s.notification_change && s.notification == Notification::Active && self.can_deny_active(&p) {
                    if path == p {
                        return Err(Fault::with_string(
                            FaultCode::NotificationRequestRejected,
                            format!("active notification is not available for {p}"),
                        ));
                    }
                    continue; // a partial path skips the parameters that deny it
                }
                plan.push((p, s));
            }
        }
        for (p, s) in plan {
            let a = self.attrs.entry(p.clone()).or_default();
            if s.notification_change {
                a.notification = s.notification;
            }
            if s.access_list_change {
                a.access_list = s.access_list.clone();
            }
            if a.notification == Notification::Off {
                self.reported.remove(&p);
                if a.access_list.is_empty() {
                    self.attrs.remove(&p);
                }
            } else if !self.reported.contains_key(&p) {
                if let Ok(mut v) = self.get_one(&p) {
                    if let Some(v) = v.pop() {
                        self.reported.insert(p, v.value);
                    }
                }
            }
        }
        Ok(())
    }

    /// GetParameterAttributes.
    pub fn get_parameter_attributes(&self, names: &[String]) -> Result<Vec<ParameterAttribute>, Fault> {
        let mut out = Vec::new();
        for n in names {
            let n = if n.is_empty() { self.root.schema().root().to_string() } else { n.clone() };
            for p in self.params_under(&n)? {
                let a = self.attrs.get(&p).cloned().unwrap_or_default();
                out.push(ParameterAttribute { name: p, notification: a.notification, access_list: a.access_list });
            }
        }
        Ok(out)
    }

    /// Compares every parameter with notification on against its last reported value; returns
    /// the changed ones and remembers them as reported.
    pub fn poll_value_changes(&mut self) -> ValueChanges {
        let mut out = ValueChanges::default();
        let watched: Vec<(String, Notification)> = self
            .attrs
            .iter()
            .filter(|(_, a)| a.notification != Notification::Off)
            .map(|(k, a)| (k.clone(), a.notification))
            .collect();
        for (p, n) in watched {
            let Ok(mut now) = self.get_one(&p) else { continue };
            let Some(now) = now.pop() else { continue };
            if self.reported.get(&p) != Some(&now.value) {
                self.reported.insert(p.clone(), now.value.clone());
                if matches!(
                    n,
                    Notification::Active | Notification::ActiveLightweight | Notification::PassiveActiveLightweight
                ) {
                    out.active = true;
                }
                out.changed.push(now);
            }
        }
        out.changed.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
