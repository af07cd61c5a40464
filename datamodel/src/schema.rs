//! Object and parameter definitions loaded from the generated `data/device2.dm`, grouped into the
//! two profiles the stack serves: the host's data model and each vRGW's own data model; and from
//! `data/tr098.dm`, the TR-098 (`InternetGatewayDevice.`) gateway the simulated CPE can be.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cwmp::{FaultCode, Value, XsdType};

use crate::types;

/// The generated facts file (see `dm-gen`), compiled in so the crate builds without `../shared`.
pub const DM_FACTS: &str = include_str!("../data/device2.dm");

/// The generated facts file of the TR-098 gateway (`dm-gen extract-tr098`).
pub const TR098_FACTS: &str = include_str!("../data/tr098.dm");

/// The root object of a TR-098 (`InternetGatewayDevice:1`) data model.
pub const TR098_ROOT: &str = "InternetGatewayDevice.";

/// Vendor prefix of our extension (TR-106 3.3, domain vrgw.org).
pub const VENDOR_PREFIX: &str = "X_VRGW-ORG_";

/// Path of the virtualization object in the host's data model.
pub const VIRTUALIZATION: &str = crate::virtualization::Virtualization::OBJECT;

/// Template path where each vRGW's own data model is mounted in the host's.
pub const INSTANCE_MOUNT: &str = crate::virtualization::InstanceDevice::OBJECT;

/// Who may write a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only.
    ReadOnly,
    /// Read-write.
    ReadWrite,
    /// Writable once (Alias), read-only after.
    WriteOnce,
}

/// Whether a CPE may refuse active notification (`activeNotify` in the BBF XML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyPolicy {
    /// Any notification may be set.
    Normal,
    /// Active notification may be refused (fault 9009); we refuse it.
    CanDeny,
    /// Active notification is on by default.
    ForceDefaultEnabled,
    /// Active notification is always on.
    ForceEnabled,
}

/// A list-valued parameter's facets (comma-separated items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFacet {
    /// Fewest items.
    pub min_items: Option<u64>,
    /// Most items.
    pub max_items: Option<u64>,
    /// Longest whole value.
    pub max_length: Option<u64>,
}

/// A parameter definition.
#[derive(Debug, Clone)]
pub struct ParamDef {
    /// Template path (`Device.DHCPv4.Server.Pool.{i}.MinAddress`).
    pub path: String,
    /// Last segment.
    pub name: String,
    /// Access.
    pub access: Access,
    /// Primitive type.
    pub ty: XsdType,
    /// Named BBF data type (`IPv4Address`, `MACAddress`, `Alias`...), if any.
    pub data_type: Option<String>,
    /// List facets, for comma-separated lists.
    pub list: Option<ListFacet>,
    /// String length bounds (per item for lists).
    pub size: Option<(Option<u64>, Option<u64>)>,
    /// Numeric ranges (any may match).
    pub ranges: Vec<(Option<i128>, Option<i128>)>,
    /// Allowed string values.
    pub enums: Vec<String>,
    /// Default lexical value.
    pub default: Option<String>,
    /// Active-notification policy.
    pub notify: NotifyPolicy,
    /// Reads return an empty string whatever the value (passwords, keys: TR-106 `hidden`/`secured`).
    pub hidden: bool,
    /// Index of the owning object.
    pub object: usize,
}

/// A unique key of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// Functional keys identify the row's meaning (BBF `functional="true"`).
    pub functional: bool,
    /// Parameter names.
    pub params: Vec<String>,
}

/// An object definition.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    /// Template path ending in a dot (`Device.NAT.PortMapping.{i}.`).
    pub path: String,
    /// AddObject/DeleteObject allowed.
    pub writable: bool,
    /// A table row (`{i}.` at the end).
    pub multi: bool,
    /// Most rows.
    pub max_entries: Option<u32>,
    /// Full template path of the NumberOfEntries parameter counting the rows.
    pub entries_param: Option<String>,
    /// Unique keys.
    pub keys: Vec<UniqueKey>,
    /// Parameter indexes.
    pub params: Vec<usize>,
    /// Parent object index (None for the root).
    pub parent: Option<usize>,
    /// Child object indexes.
    pub children: Vec<usize>,
    /// Served by a mounted handler, not by the tree (the vRGW mount point).
    pub mount: bool,
}

impl ObjectDef {
    /// For a table row `X.{i}.`, the table path `X.`.
    pub fn table_path(&self) -> Option<&str> {
        self.path.strip_suffix("{i}.")
    }
}

/// A compiled data model definition.
#[derive(Debug)]
pub struct Schema {
    /// Objects, parents before children.
    pub objects: Vec<ObjectDef>,
    /// Parameters.
    pub params: Vec<ParamDef>,
    objects_by_path: HashMap<String, usize>,
    params_by_path: HashMap<String, usize>,
    /// NumberOfEntries parameter template -> table row object.
    entries_of: HashMap<String, usize>,
}

#[derive(Debug)]
struct RawObject {
    path: String,
    writable: bool,
    max: Option<u32>,
    entries: Option<String>,
    keys: Vec<UniqueKey>,
    params: Vec<ParamDef>,
}

fn parse_range(s: &str) -> (Option<i128>, Option<i128>) {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    (a.parse().ok(), b.parse().ok())
}

fn unesc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn xsd(prim: &str) -> XsdType {
    XsdType::from_local(prim).unwrap_or(XsdType::String)
}

/// Parses the facts file. The file is ours and generated, so a malformed line is a build bug:
/// it is reported with its line number.
fn parse_facts(text: &str) -> Result<Vec<RawObject>, String> {
    let mut out: Vec<RawObject> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut f = line.split('\t');
        let kind = f.next().unwrap_or("");
        let path = f.next().ok_or(format!("line {}: no name", n + 1))?;
        let access = f.next().ok_or(format!("line {}: no access", n + 1))?;
        match kind {
            "O" => {
                let mut o = RawObject {
                    path: path.to_string(),
                    writable: access == "w",
                    max: None,
                    entries: None,
                    keys: Vec::new(),
                    params: Vec::new(),
                };
                for kv in f {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    match k {
                        "max" => o.max = v.parse().ok(),
                        "entries" => o.entries = Some(v.to_string()),
                        "key" | "fkey" => o.keys.push(UniqueKey {
                            functional: k == "fkey",
                            params: v.split('+').map(str::to_string).collect(),
                        }),
                        _ => {}
                    }
                }
                out.push(o);
            }
            "P" => {
                let obj = out.last_mut().ok_or(format!("line {}: parameter before object", n + 1))?;
                let prim = f.next().ok_or(format!("line {}: no type", n + 1))?;
                let mut p = ParamDef {
                    path: format!("{}{path}", obj.path),
                    name: path.to_string(),
                    access: match access {
                        "w" => Access::ReadWrite,
                        "w1" => Access::WriteOnce,
                        _ => Access::ReadOnly,
                    },
                    ty: xsd(prim),
                    data_type: None,
                    list: None,
                    size: None,
                    ranges: Vec::new(),
                    enums: Vec::new(),
                    default: None,
                    notify: NotifyPolicy::Normal,
                    hidden: false,
                    object: 0,
                };
                for kv in f {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    match k {
                        "dt" => p.data_type = Some(v.to_string()),
                        "list" => {
                            let (items, len) = v.split_once(',').unwrap_or((v, ""));
                            let (a, b) = items.split_once("..").unwrap_or(("", ""));
                            p.list = Some(ListFacet {
                                min_items: a.parse().ok(),
                                max_items: b.parse().ok(),
                                max_length: len.parse().ok(),
                            });
                        }
                        "size" => {
                            let (a, b) = parse_range(v);
                            p.size = Some((a.map(|x| x as u64), b.map(|x| x as u64)));
                        }
                        "range" => p.ranges = v.split(',').map(parse_range).collect(),
                        "enum" => p.enums = unesc(v).split('|').map(str::to_string).collect(),
                        "default" => p.default = Some(unesc(v)),
                        "hidden" => p.hidden = true,
                        "notify" => {
                            p.notify = match v {
                                "canDeny" => NotifyPolicy::CanDeny,
                                "forceEnabled" => NotifyPolicy::ForceEnabled,
                                "forceDefaultEnabled" => NotifyPolicy::ForceDefaultEnabled,
                                _ => NotifyPolicy::Normal,
                            }
                        }
                        _ => {}
                    }
                }
                obj.params.push(p);
            }
            other => return Err(format!("line {}: unknown record {other:?}", n + 1)),
        }
    }
    Ok(out)
}

fn facts() -> &'static [RawObject] {
    static FACTS: OnceLock<Vec<RawObject>> = OnceLock::new();
    FACTS.get_or_init(|| match parse_facts(DM_FACTS) {
        Ok(v) => v,
        Err(e) => panic!("data/device2.dm is malformed (regenerate it with dm-gen): {e}"),
    })
}

fn tr098_facts() -> &'static [RawObject] {
    static FACTS: OnceLock<Vec<RawObject>> = OnceLock::new();
    FACTS.get_or_init(|| match parse_facts(TR098_FACTS) {
        Ok(v) => v,
        Err(e) => panic!("data/tr098.dm is malformed (regenerate it with dm-gen extract-tr098): {e}"),
    })
}

/// Object prefixes of each vRGW's own data model.
const VRGW_OBJECTS: &[&str] = &[
    "Device.",
    "Device.DeviceInfo.",
    "Device.DeviceInfo.MemoryStatus.",
    "Device.DeviceInfo.ProxierInfo.",
    "Device.IP.",
    "Device.DHCPv4.",
    "Device.WiFi.",
    "Device.NAT.",
    "Device.Firewall.",
    "Device.DNS.",
    "Device.Hosts.",
];

/// Object prefixes of the host's data model.
const HOST_OBJECTS: &[&str] = &[
    "Device.",
    "Device.DeviceInfo.",
    "Device.DeviceInfo.MemoryStatus.",
    "Device.ManagementServer.",
    "Device.Ethernet.",
    VIRTUALIZATION,
];

impl Schema {
    /// The data model each vRGW serves (through its proxy): DeviceInfo, IP, DHCPv4, WiFi, NAT,
    /// Firewall, DNS, Hosts.
    pub fn vrgw() -> Arc<Schema> {
        static S: OnceLock<Arc<Schema>> = OnceLock::new();
        S.get_or_init(|| Arc::new(Schema::profile(VRGW_OBJECTS))).clone()
    }

    /// The data model of a physical TR-181 residential gateway (what `cwmp-sim` plays beside
    /// vRGWs): the vRGW's objects, without ProxierInfo (nothing proxies it), with its own
    /// ManagementServer.
    pub fn gateway() -> Arc<Schema> {
        static S: OnceLock<Arc<Schema>> = OnceLock::new();
        S.get_or_init(|| {
            let objects: Vec<&str> = VRGW_OBJECTS.iter().copied().chain(["Device.ManagementServer."]).collect();
            Arc::new(Schema::profile_without(&objects, "Device.DeviceInfo.ProxierInfo."))
        })
        .clone()
    }

    /// The data model of a virtualization host: DeviceInfo, ManagementServer (EmbeddedDevice,
    /// VirtualDevice), Ethernet (Interface, VLANTermination) and our virtualization extension,
    /// with each instance's `Device.` as a mount point.
    pub fn host() -> Arc<Schema> {
        static S: OnceLock<Arc<Schema>> = OnceLock::new();
        S.get_or_init(|| Arc::new(Schema::profile(HOST_OBJECTS))).clone()
    }

    /// The data model of a TR-098 residential gateway (`InternetGatewayDevice.`): DeviceInfo,
    /// ManagementServer, Time, Layer3Forwarding, LANDevice (LANHostConfigManagement,
    /// WLANConfiguration with PreSharedKey, Hosts) and WANDevice (WANCommonInterfaceConfig,
    /// WANConnectionDevice with WANIPConnection and WANPPPConnection).
    pub fn tr098() -> Arc<Schema> {
        static S: OnceLock<Arc<Schema>> = OnceLock::new();
        S.get_or_init(|| Arc::new(Schema::build(tr098_facts().iter().collect()))).clone()
    }

    fn profile(prefixes: &[&str]) -> Schema {
        Schema::profile_without(prefixes, "\0")
    }

    /// [`Schema::profile`] without the objects under `excluded`.
    fn profile_without(prefixes: &[&str], excluded: &str) -> Schema {
        let included =
            |path: &str| prefixes.iter().any(|p| if *p == "Device." { path == "Device." } else { path.starts_with(p) });
        Schema::build(facts().iter().filter(|o| included(&o.path) && !o.path.starts_with(excluded)).collect())
    }

    /// The schema of `raw` (parents before children).
    fn build(raw: Vec<&RawObject>) -> Schema {
        // NumberOfEntries parameters of tables this profile has.
        let mut entries_params = HashMap::new();
        for o in &raw {
            if let (Some(table), Some(e)) = (o.path.strip_suffix("{i}."), &o.entries) {
                let parent = parent_path(table);
                entries_params.insert(format!("{parent}{e}"), o.path.clone());
            }
        }
        let mut s = Schema {
            objects: Vec::new(),
            params: Vec::new(),
            objects_by_path: HashMap::new(),
            params_by_path: HashMap::new(),
            entries_of: HashMap::new(),
        };
        for o in raw {
            let idx = s.objects.len();
            let parent = s.objects_by_path.get(&parent_of_object(&o.path)).copied();
            let mut def = ObjectDef {
                path: o.path.clone(),
                writable: o.writable,
                multi: o.path.ends_with("{i}."),
                max_entries: o.max,
                entries_param: None,
                keys: o.keys.clone(),
                params: Vec::new(),
                parent,
                children: Vec::new(),
                mount: o.path == INSTANCE_MOUNT,
            };
            if let Some(p) = parent {
                s.objects[p].children.push(idx);
            }
            for p in &o.params {
                if p.name.ends_with("NumberOfEntries") && !entries_params.contains_key(&p.path) {
                    continue;
                }
                let pi = s.params.len();
                let mut pd = p.clone();
                pd.object = idx;
                s.params_by_path.insert(pd.path.clone(), pi);
                s.params.push(pd);
                def.params.push(pi);
            }
            s.objects_by_path.insert(def.path.clone(), idx);
            s.objects.push(def);
        }
        for (param, table) in entries_params {
            if let (Some(&t), true) = (s.objects_by_path.get(&table), s.params_by_path.contains_key(&param)) {
                s.objects[t].entries_param = Some(param.clone());
                s.entries_of.insert(param, t);
            }
        }
        s
    }

    /// The object with this template path.
    pub fn object(&self, template: &str) -> Option<&ObjectDef> {
        self.objects_by_path.get(template).map(|&i| &self.objects[i])
    }
    /// Index of the object with this template path.
    pub fn object_index(&self, template: &str) -> Option<usize> {
        self.objects_by_path.get(template).copied()
    }
    /// The parameter with this template path.
    pub fn param(&self, template: &str) -> Option<&ParamDef> {
        self.params_by_path.get(template).map(|&i| &self.params[i])
    }
    /// For a NumberOfEntries parameter, the table row object it counts.
    pub fn entries_table(&self, param_template: &str) -> Option<&ObjectDef> {
        self.entries_of.get(param_template).map(|&i| &self.objects[i])
    }
    /// The root object's path (`Device.`).
    pub fn root(&self) -> &str {
        self.objects.first().map_or("Device.", |o| o.path.as_str())
    }
}

/// `A.B.C.` -> `A.B.`; `A.B.{i}.` -> `A.` (the parent object of a table row is above the table).
fn parent_of_object(path: &str) -> String {
    let trimmed = path.strip_suffix("{i}.").unwrap_or(path);
    parent_path(trimmed)
}

/// `A.B.C.` -> `A.B.`
fn parent_path(path: &str) -> String {
    let t = path.strip_suffix('.').unwrap_or(path);
    match t.rfind('.') {
        Some(i) => t[..=i].to_string(),
        None => String::new(),
    }
}

impl ParamDef {
    /// The value a new object starts with.
    pub fn default_value(&self) -> Value {
        if let Some(v) = self.default.as_deref().and_then(|d| Value::parse(self.ty, d).ok()) {
            return v;
        }
        let low = self.ranges.iter().filter_map(|r| r.0).min().unwrap_or(0).max(0);
        match self.ty {
            XsdType::String => Value::String(String::new()),
            XsdType::Int => Value::Int(low as i32),
            XsdType::UnsignedInt => Value::UnsignedInt(low as u32),
            XsdType::Long => Value::Long(low as i64),
            XsdType::UnsignedLong => Value::UnsignedLong(low as u64),
            XsdType::Boolean => Value::Boolean(false),
            XsdType::DateTime => Value::DateTime(cwmp::DateTime::unknown()),
            XsdType::Base64 => Value::Base64(String::new()),
            XsdType::HexBinary => Value::HexBinary(String::new()),
            XsdType::Decimal => Value::Decimal("0".into()),
        }
    }

    /// Checks a value sent for this parameter and returns it in the parameter's own type.
    /// A string whose text is a valid lexical form is accepted (many ACSs send only strings);
    /// integers of another width are accepted when they fit. Errors: 9006 (wrong type), 9007.
    pub fn check(&self, v: &Value) -> Result<Value, (FaultCode, String)> {
        let typed = self.coerce(v)?;
        self.check_facets(&typed)?;
        Ok(typed)
    }

    fn coerce(&self, v: &Value) -> Result<Value, (FaultCode, String)> {
        if v.xsd_type() == self.ty {
            return Ok(v.clone());
        }
        let wrong = || {
            (
                FaultCode::InvalidParameterType,
                format!("{} expects {}, got {}", self.name, self.ty.qname(), v.xsd_type().qname()),
            )
        };
        let as_int: Option<i128> = match v {
            Value::Int(i) => Some(i128::from(*i)),
            Value::UnsignedInt(i) => Some(i128::from(*i)),
            Value::Long(i) => Some(i128::from(*i)),
            Value::UnsignedLong(i) => Some(i128::from(*i)),
            _ => None,
        };
        if let Some(i) = as_int {
            let out_of_range = || (FaultCode::InvalidParameterValue, format!("{i} does not fit {}", self.ty.qname()));
            return match self.ty {
                XsdType::Int => i32::try_from(i).map(Value::Int).map_err(|_| out_of_range()),
                XsdType::UnsignedInt => u32::try_from(i).map(Value::UnsignedInt).map_err(|_| out_of_range()),
                XsdType::Long => i64::try_from(i).map(Value::Long).map_err(|_| out_of_range()),
                XsdType::UnsignedLong => u64::try_from(i).map(Value::UnsignedLong).map_err(|_| out_of_range()),
                _ => Err(wrong()),
            };
        }
        if let Value::String(s) = v {
            return Value::parse(self.ty, s)
                .map_err(|e| (FaultCode::InvalidParameterValue, format!("{}: {e}", self.name)));
        }
        Err(wrong())
    }

    fn check_facets(&self, v: &Value) -> Result<(), (FaultCode, String)> {
        let bad = |why: String| Err((FaultCode::InvalidParameterValue, format!("{}: {why}", self.name)));
        let n: Option<i128> = match v {
            Value::Int(i) => Some(i128::from(*i)),
            Value::UnsignedInt(i) => Some(i128::from(*i)),
            Value::Long(i) => Some(i128::from(*i)),
            Value::UnsignedLong(i) => Some(i128::from(*i)),
            _ => None,
        };
        if let Some(n) = n {
            let ok = self.ranges.is_empty()
                || self.ranges.iter().any(|(lo, hi)| lo.is_none_or(|l| n >= l) && hi.is_none_or(|h| n <= h));
            if !ok {
                let rs: Vec<String> = self
                    .ranges
                    .iter()
                    .map(|(a, b)| {
                        format!(
                            "{}..{}",
                            a.map_or(String::new(), |x| x.to_string()),
                            b.map_or(String::new(), |x| x.to_string())
                        )
                    })
                    .collect();
                return bad(format!("{n} is outside {}", rs.join(" or ")));
            }
            return Ok(());
        }
        let text = v.to_lexical();
        let items: Vec<&str> = match &self.list {
            Some(l) => {
                if let Some(max) = l.max_length {
                    if text.chars().count() as u64 > max {
                        return bad(format!("list longer than {max} characters"));
                    }
                }
                let items: Vec<&str> =
                    if text.trim().is_empty() { Vec::new() } else { text.split(',').map(str::trim).collect() };
                if l.max_items.is_some_and(|m| items.len() as u64 > m) {
                    return bad(format!("{} items, at most {} allowed", items.len(), l.max_items.unwrap_or(0)));
                }
                if l.min_items.is_some_and(|m| (items.len() as u64) < m) {
                    return bad(format!("{} items, at least {} needed", items.len(), l.min_items.unwrap_or(0)));
                }
                items
            }
            None => vec![&text],
        };
        for item in items {
            if let Some((lo, hi)) = self.size {
                let len = if matches!(self.ty, XsdType::HexBinary) {
                    item.len() as u64 / 2
                } else {
                    item.chars().count() as u64
                };
                let lo = lo.unwrap_or(0);
                if len < lo || hi.is_some_and(|h| len > h) {
                    return bad(match hi {
                        Some(h) if lo == 0 => format!("{len} characters, at most {h} allowed"),
                        Some(h) => format!("{len} characters, {lo} to {h} needed"),
                        None => format!("{len} characters, at least {lo} needed"),
                    });
                }
            }
            if !self.enums.is_empty() && !self.enums.iter().any(|e| e == item) {
                return bad(format!("{item:?} is not one of {}", self.enums.join(", ")));
            }
            if let Some(dt) = &self.data_type {
                if let Err(why) = types::check(dt, item) {
                    return bad(why);
                }
            }
        }
        Ok(())
    }
}
