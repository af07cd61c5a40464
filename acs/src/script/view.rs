//! What a script sees of a device: the ACS's cache of its parameters and of what
//! GetParameterNames told (which objects were listed, when; what is writable), its tags, its
//! `DeviceID.*`, with GenieACS's path patterns (`*`, `[Key:value,...]`) matched against it and
//! each attribute's freshness (GenieACS's timestamps, in ms) checked.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value as Json};

use crate::store::{Store, StoreError};

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A name (or instance number).
    Name(String),
    /// `*`: every instance.
    Any,
    /// `[Key:value,...]`: the instances whose keys hold those values (`[]`: every instance).
    Alias(Vec<(String, String)>),
}

/// A parameter path with GenieACS's wildcards and aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Its segments.
    pub segs: Vec<Seg>,
}

impl Pattern {
    /// From GenieACS's text (`A.*.B`, `A.[K:v,L:w].B`; alias values may hold dots).
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let text = text.trim_end_matches('.');
        if text.is_empty() {
            return Err("a path is not empty".into());
        }
        if text.len() > 1024 {
            return Err("a path is at most 1024 bytes".into());
        }
        let mut segs = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (seg, next) = if let Some(inner) = rest.strip_prefix('[') {
                let end = inner.find(']').ok_or_else(|| format!("an alias is not closed in {text:?}"))?;
                let body = &inner[..end];
                let mut keys = Vec::new();
                for pair in body.split(',').filter(|p| !p.trim().is_empty()) {
                    let (k, v) =
                        pair.split_once(':').ok_or_else(|| format!("an alias is [Key:value,...], not [{body}]"))?;
                    let k = k.trim();
                    if k.is_empty() || k.contains(['*', '[', ']']) {
                        return Err(format!("an alias key is a parameter name, not {k:?}"));
                    }
                    keys.push((k.to_string(), v.trim().trim_matches('"').to_string()));
                }
                let after = &inner[end + 1..];
                (Seg::Alias(keys), after)
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                let name = &rest[..end];
                if name.contains(['[', ']']) {
                    return Err(format!("an alias is a whole segment in {text:?}"));
                }
                let seg = match name {
                    "*" => Seg::Any,
                    "" => return Err(format!("an empty segment in {text:?}")),
                    n if n.contains('*') => return Err(format!("a wildcard is a whole segment in {text:?}")),
                    n => Seg::Name(n.to_string()),
                };
                (seg, &rest[end..])
            };
            segs.push(seg);
            rest = match next.strip_prefix('.') {
                Some(r) if !r.is_empty() => r,
                Some(_) | None if next.is_empty() || next == "." => "",
                _ => return Err(format!("segments are separated by dots in {text:?}")),
            };
        }
        Ok(Pattern { segs })
    }

    /// Whether it names one path (no wildcard, no alias).
    pub fn is_concrete(&self) -> bool {
        self.segs.iter().all(|s| matches!(s, Seg::Name(_)))
    }

    /// Whether `path` (no trailing dot) is one it could match (aliases taken as wildcards).
    pub fn could_match(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.trim_end_matches('.').split('.').collect();
        // A path below a match, or a match below the path (a table the pattern counts).
        self.segs.iter().zip(parts.iter()).all(|(s, p)| match s {
            Seg::Name(n) => n == p,
            Seg::Any | Seg::Alias(_) => true,
        })
    }

    /// The first segment.
    pub fn root(&self) -> &str {
        match self.segs.first() {
            Some(Seg::Name(n)) => n,
            _ => "",
        }
    }
}

/// A cached leaf.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// xsd type without prefix.
    pub ty: String,
    /// Lexical value.
    pub value: String,
    /// Unix ms when read.
    pub at: i64,
}

/// What the session must fetch before a declaration is known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// GetParameterNames of this object (dotted) with NextLevel false: its whole subtree.
    Names(String),
    /// GetParameterNames of this object (dotted) with NextLevel true: its children.
    Level(String),
    /// GetParameterValues of this parameter.
    Value(String),
    /// The script of this virtual parameter run.
    Virtual(String),
}

/// The device as the session knows it.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Leaves by path.
    pub leaves: BTreeMap<String, Leaf>,
    /// Every path known to exist (objects with their trailing dot).
    known: BTreeSet<String>,
    /// Objects (dotted): when their children were listed (ms).
    listed: BTreeMap<String, i64>,
    /// What GetParameterNames told writable.
    writable: BTreeMap<String, bool>,
    /// The device's tags.
    pub tags: Vec<String>,
    /// `DeviceID.*`.
    device_id: BTreeMap<&'static str, String>,
    /// The virtual parameters' names (their scripts stored).
    virtuals: BTreeSet<String>,
}

/// JavaScript's value of a cached leaf: booleans and numbers typed, dateTime in ms.
pub fn js_value(leaf: &Leaf) -> Json {
    let v = &leaf.value;
    let typed = match leaf.ty.as_str() {
        "boolean" => Some(json!(v == "true" || v == "1")),
        "int" | "unsignedInt" | "long" | "unsignedLong" => v.parse::<i64>().ok().map(Json::from),
        "dateTime" => cwmp::DateTime::parse(v).and_then(|d| d.to_unix()).map(|s| json!(s * 1000)),
        _ => None,
    };
    json!([typed.unwrap_or_else(|| json!(v)), format!("xsd:{}", leaf.ty)])
}

impl View {
    /// The device `device` as the store holds it.
    pub fn load(store: &dyn Store, device: &str) -> Result<View, StoreError> {
        let mut v = View::default();
        for p in store.params(device)? {
            v.add_known(&p.name);
            v.leaves.insert(p.name, Leaf { ty: p.ty, value: p.value, at: p.updated.saturating_mul(1000) });
        }
        for i in store.path_info(device)? {
            v.add_known(&i.name);
            if let Some(w) = i.writable {
                v.writable.insert(i.name.clone(), w);
            }
            if let Some(l) = i.listed {
                v.listed.insert(i.name.clone(), l.saturating_mul(1000));
            }
        }
        v.virtuals = store.scripts(crate::store::ScriptKind::VirtualParameter)?.into_iter().map(|(n, _)| n).collect();
        if let Some(d) = store.device(device)? {
            v.tags = d.tags.clone();
            v.device_id = BTreeMap::from([
                ("ID", d.id.clone()),
                ("SerialNumber", d.serial_number.clone()),
                ("ProductClass", d.product_class.clone()),
                ("OUI", d.oui.clone()),
                ("Manufacturer", d.manufacturer.clone()),
            ]);
        }
        Ok(v)
    }

    fn add_known(&mut self, name: &str) {
        // Every object above it exists too.
        let mut end = 0;
        while let Some(i) = name[end..].find('.') {
            end += i + 1;
            if end < name.len() || name.ends_with('.') {
                self.known.insert(name[..end].to_string());
            }
        }
        self.known.insert(name.to_string());
    }

    /// The names directly below `prefix` (dotted; `""`: the roots).
    fn children(&self, prefix: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for k in self.known.range(prefix.to_string()..) {
            let Some(rest) = k.strip_prefix(prefix) else { break };
            if let Some(seg) = rest.split('.').next().filter(|s| !s.is_empty()) {
                out.insert(seg.to_string());
            }
        }
        out
    }

    fn exists(&self, path: &str) -> bool {
        self.known.contains(path) || self.known.contains(&format!("{path}."))
    }

    /// Whether `object`'s children were listed at `ts` or later (a listing of a whole subtree,
    /// NextLevel false, marks every object in it listed).
    fn listed_since(&self, object: &str, ts: i64) -> bool {
        self.listed.get(object).is_some_and(|at| *at >= ts)
    }

    /// The paths `pattern` matches (no trailing dots), and what must be fetched first when the
    /// instances it names are not known as recently as `path_ts` (ms).
    pub fn unpack(&self, pattern: &Pattern, path_ts: i64) -> (Vec<String>, Vec<Need>) {
        let mut matches = Vec::new();
        let mut needs = Vec::new();
        match pattern.root() {
            "DeviceID" => {
                if let [_, Seg::Name(n)] = &pattern.segs[..] {
                    if self.device_id.contains_key(n.as_str()) {
                        matches.push(format!("DeviceID.{n}"));
                    }
                } else if let [_, Seg::Any] = &pattern.segs[..] {
                    matches.extend(self.device_id.keys().map(|k| format!("DeviceID.{k}")));
                }
                return (matches, needs);
            }
            "Tags" => {
                match &pattern.segs[..] {
                    [_, Seg::Name(t)] => matches.push(format!("Tags.{t}")),
                    [_, Seg::Any] => matches.extend(self.tags.iter().map(|t| format!("Tags.{t}"))),
                    _ => {}
                }
                return (matches, needs);
            }
            "VirtualParameters" => {
                match &pattern.segs[..] {
                    [_, Seg::Name(n)] if self.virtuals.contains(n) => matches.push(format!("VirtualParameters.{n}")),
                    [_, Seg::Any] => matches.extend(self.virtuals.iter().map(|n| format!("VirtualParameters.{n}"))),
                    _ => {}
                }
                return (matches, needs);
            }
            "Reboot" | "FactoryReset" if pattern.segs.len() == 1 => {
                matches.push(pattern.root().to_string());
                return (matches, needs);
            }
            _ => {}
        }
        // A data model root the device does not report is not there.
        if !self.known.is_empty() && !self.exists(pattern.root()) {
            return (matches, needs);
        }
        self.walk(&pattern.segs, String::new(), path_ts, &mut matches, &mut needs);
        (matches, needs)
    }

    fn walk(&self, segs: &[Seg], prefix: String, ts: i64, matches: &mut Vec<String>, needs: &mut Vec<Need>) {
        let Some((seg, rest)) = segs.split_first() else {
            matches.push(prefix.trim_end_matches('.').to_string());
            return;
        };
        let next = |name: &str| if rest.is_empty() { format!("{prefix}{name}") } else { format!("{prefix}{name}.") };
        match seg {
            Seg::Name(n) => {
                let path = format!("{prefix}{n}");
                if self.exists(&path) {
                    self.walk(rest, next(n), ts, matches, needs);
                } else if prefix.is_empty() || self.listed_since(&prefix, ts) {
                    // Known not to be there.
                } else if prefix.matches('.').count() >= 2 {
                    // Below a root object: its whole subtree in one request rather than one
                    // level per round (what the rest of the path needs is likely in it).
                    needs.push(Need::Names(prefix));
                } else {
                    needs.push(Need::Level(prefix));
                }
            }
            Seg::Any | Seg::Alias(_) => {
                if !self.listed_since(&prefix, ts) {
                    needs.push(Need::Names(prefix));
                    return;
                }
                for c in self.children(&prefix) {
                    if let Seg::Alias(keys) = seg {
                        let mut all = true;
                        for (k, want) in keys {
                            let key = format!("{prefix}{c}.{k}");
                            match self.leaves.get(&key) {
                                Some(l) if l.at >= ts => all &= l.value == *want,
                                _ if self.exists(&key) => {
                                    needs.push(Need::Value(key));
                                    all = false;
                                }
                                _ => all = false,
                            }
                        }
                        if !all {
                            continue;
                        }
                    }
                    self.walk(rest, next(&c), ts, matches, needs);
                }
            }
        }
    }

    /// The listed objects a `clear()` makes unknown: those the patterns match, listed before
    /// their timestamp, and the parents of the leaves it forgets.
    pub fn listed_before(&self, clears: &[(Pattern, i64)], forgotten: &[String]) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for (o, at) in &self.listed {
            let name = o.trim_end_matches('.');
            if clears.iter().any(|(p, ts)| *at < *ts && p.could_match(name) && name.split('.').count() >= p.segs.len())
            {
                out.insert(o.clone());
            }
        }
        for leaf in forgotten {
            if let Some(i) = leaf.rfind('.') {
                let parent = &leaf[..=i];
                if self.listed.contains_key(parent) {
                    out.insert(parent.to_string());
                }
            }
        }
        out.into_iter().collect()
    }

    /// What a refresh of everything below `object` (dotted) needs: the subtree listed since
    /// `path_ts`, then every leaf in it read since `ts`.
    pub fn subtree_needs(&self, object: &str, path_ts: i64, ts: i64) -> Vec<Need> {
        let below: Vec<&String> =
            self.known.range(object.to_string()..).take_while(|k| k.starts_with(object)).collect();
        let listed = below.iter().filter(|k| k.ends_with('.')).all(|o| self.listed_since(o, path_ts));
        if !listed {
            return vec![Need::Names(object.to_string())];
        }
        below
            .into_iter()
            .filter(|k| !k.ends_with('.') && self.leaves.get(k.as_str()).is_none_or(|l| l.at < ts))
            .map(|k| Need::Value(k.clone()))
            .collect()
    }

    /// An attribute of `path` (a match of [`View::unpack`]) if known as recently as `ts`
    /// (ms): `Ok(None)` undefined, `Err` what to fetch first.
    pub fn attribute(&self, path: &str, attr: &str, ts: i64) -> Result<Option<Json>, Need> {
        if let Some(k) = path.strip_prefix("DeviceID.") {
            return Ok(match attr {
                "value" => self.device_id.get(k).map(|v| json!([v, "xsd:string"])),
                "writable" => Some(json!(false)),
                "object" => Some(json!(false)),
                _ => None,
            });
        }
        if let Some(t) = path.strip_prefix("Tags.") {
            return Ok(match attr {
                "value" => Some(json!([self.tags.iter().any(|x| x == t), "xsd:boolean"])),
                "writable" => Some(json!(true)),
                "object" => Some(json!(false)),
                _ => None,
            });
        }
        if let Some(name) = path.strip_prefix("VirtualParameters.") {
            return match (attr, self.leaves.get(path)) {
                ("object", _) => Ok(Some(json!(false))),
                ("value", Some(l)) if l.at >= ts => Ok(Some(js_value(l))),
                ("writable", Some(l)) if l.at >= ts => {
                    Ok(Some(json!(self.writable.get(path).copied().unwrap_or(false))))
                }
                ("value" | "writable", _) => Err(Need::Virtual(name.to_string())),
                _ => Ok(None),
            };
        }
        let object = self.known.contains(&format!("{path}."));
        match attr {
            "object" => Ok(Some(json!(object))),
            "value" if object => Ok(None),
            // Reboot and FactoryReset are the ACS's own: never fetched, as old as they are.
            "value" if path == "Reboot" || path == "FactoryReset" => Ok(self.leaves.get(path).map(js_value)),
            "value" => match self.leaves.get(path) {
                Some(l) if l.at >= ts => Ok(Some(js_value(l))),
                _ if !self.exists(path) && ts <= 1 => Ok(None),
                _ => Err(Need::Value(path.to_string())),
            },
            "writable" => {
                let key = if object { format!("{path}.") } else { path.to_string() };
                let parent = path.rfind('.').map_or(String::new(), |i| path[..=i].to_string());
                match self.writable.get(&key) {
                    Some(w) if ts <= 1 || self.listed_since(&parent, ts) => Ok(Some(json!(w))),
                    // A root's writability is known from any listing of it (nothing lists "").
                    Some(w) if parent.is_empty() => Ok(Some(json!(w))),
                    None if parent.is_empty() => Ok(None),
                    _ => Err(Need::Level(parent)),
                }
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_read_as_genieacs_writes_them() {
        let p = Pattern::parse("A.[SourceIPAddress:192.168.1.0,SourceNetMask:255.255.255.0].B").expect("alias");
        assert_eq!(
            p.segs,
            vec![
                Seg::Name("A".into()),
                Seg::Alias(vec![
                    ("SourceIPAddress".into(), "192.168.1.0".into()),
                    ("SourceNetMask".into(), "255.255.255.0".into())
                ]),
                Seg::Name("B".into()),
            ]
        );
        assert_eq!(Pattern::parse("A.[]").expect("every instance").segs[1], Seg::Alias(vec![]));
        assert_eq!(
            Pattern::parse("A.*.B.").expect("wildcard").segs,
            [Seg::Name("A".into()), Seg::Any, Seg::Name("B".into())]
        );
        assert!(Pattern::parse("A.B*").is_err());
        assert!(Pattern::parse("A..B").is_err());
        assert!(Pattern::parse("A.[K:v").is_err());
        assert!(Pattern::parse("").is_err());
        assert!(Pattern::parse("A.*.B").expect("p").could_match("A.3.B"));
        assert!(!Pattern::parse("A.*.B").expect("p").could_match("A.3.C"));
    }

    fn view(names: &[(&str, &str)], listed: &[(&str, i64)]) -> View {
        let mut v = View::default();
        for (n, val) in names {
            v.add_known(n);
            v.leaves.insert(n.to_string(), Leaf { ty: "string".into(), value: val.to_string(), at: 5000 });
        }
        for (o, at) in listed {
            v.listed.insert(o.to_string(), *at);
        }
        v
    }

    #[test]
    fn wildcards_and_aliases_need_their_table_listed() {
        let v = view(
            &[("D.T.1.K", "a"), ("D.T.1.V", "1"), ("D.T.2.K", "b"), ("D.T.2.V", "2"), ("D.X", "x")],
            &[("D.T.", 5000)],
        );
        let p = |s: &str| Pattern::parse(s).expect("pattern");
        assert_eq!(v.unpack(&p("D.T.*.V"), 1), (vec!["D.T.1.V".into(), "D.T.2.V".into()], vec![]));
        assert_eq!(v.unpack(&p("D.T.[K:b].V"), 1), (vec!["D.T.2.V".into()], vec![]));
        // Listed before the timestamp asked for: listed again (a dotted object).
        assert_eq!(v.unpack(&p("D.T.*.V"), 6000), (vec![], vec![Need::Names("D.T.".into())]));
        assert_eq!(v.unpack(&p("D.U.*"), 1), (vec![], vec![Need::Level("D.".into())]), "D. never listed");
        assert_eq!(v.unpack(&p("D.T.3.V"), 1), (vec![], vec![]), "known not there");
        assert_eq!(v.unpack(&p("Other.X"), 1), (vec![], vec![]), "a root the device has not");
        assert_eq!(v.attribute("D.X", "value", 1), Ok(Some(json!(["x", "xsd:string"]))));
        assert_eq!(v.attribute("D.X", "value", 9000), Err(Need::Value("D.X".into())));
        assert_eq!(v.attribute("D.T.1", "object", 1), Ok(Some(json!(true))));
    }
}
