//! The generator behind `dm-gen rust`: writes the vendor extension's typed paths and
//! enumerations as a Rust module (`src/virtualization.rs`), from the same parse as the facts file.
//!
//! Names: an object's type is its last name segment without the vendor prefix
//! (`X_VRGW-ORG_Virtualization` → `Virtualization`, `Instance.{i}.` → `Instance`), its parent's
//! prefixed when that name is taken (`Instance.{i}.Device.` → `InstanceDevice`). A parameter is a
//! method in snake case (`MigrationURI` → `migration_uri`, `VCPUs` → `vcpus`, `MemoryKiB` →
//! `memory_kib`). An enumeration is named after its parameter, prefixed with its object's type
//! unless the object is a table row and no other parameter of that name is enumerated
//! (`Template.{i}.Flavor` → `Flavor`, `Migration.Mode` → `MigrationMode`, `Pool.{i}.Status` →
//! `PoolStatus`). Everything is written in the XML's order, so the output is deterministic.

use std::collections::HashMap;
use std::fmt::Write;

use super::{param_facets, Doc, Facets, GenError};

/// rustfmt's `max_width` (rustfmt.toml): lists that fit are written on one line, as it would.
const WIDTH: usize = 120;

/// One object of the extension, as the module names it.
struct Obj {
    /// Index into the document's objects.
    at: usize,
    /// The Rust type.
    ty: String,
    /// The method on the parent that leads here (`instance`, `migration`).
    method: String,
    /// The path segment below the parent (`Instance.{i}.`, `Migration.`).
    segment: String,
    /// Ends in `{i}.`.
    row: bool,
    /// How many `{i}` the path holds.
    indices: usize,
    /// The parent, if it is an object of the extension.
    parent: Option<usize>,
}

/// One enumerated parameter.
struct Enum {
    ty: String,
    param: String,
    values: Vec<String>,
    default: Option<String>,
}

/// `X_VRGW-ORG_Virtualization` → `Virtualization`; other names unchanged.
fn without_vendor_prefix(segment: &str) -> &str {
    match segment.strip_prefix("X_").and_then(|r| r.split_once('_')) {
        Some((_, name)) => name,
        None => segment,
    }
}

/// `Cold-image value` → `ColdImageValue`; an all-capitals word is capitalized (`VM` → `Vm`).
fn camel(text: &str) -> String {
    let mut out = String::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let caps = word.len() > 1 && word.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars.map(|c| if caps { c.to_ascii_lowercase() } else { c }));
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out == "Self" {
        out.insert(0, 'V');
    }
    out
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
    "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// `MigrationURI` → `migration_uri`, `CPUTime` → `cpu_time`, `VCPUs` → `vcpus`, `MemoryKiB` →
/// `memory_kib`: a word starts at a capital after a small letter or digit, and at the last capital
/// of a run that a small letter follows, except a plural `s` or a unit's last capital (`KiB`).
fn snake(name: &str) -> String {
    let c: Vec<char> = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let mut out = String::new();
    for (i, &ch) in c.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| c[p]);
        let next = c.get(i + 1).copied();
        let after_small = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
        let ends_run = prev.is_some_and(|p| p.is_ascii_uppercase()) && next.is_some_and(|n| n.is_ascii_lowercase());
        let plural = next == Some('s') && i + 2 == c.len();
        let unit_end = next.is_none() && i >= 2 && c[i - 2].is_ascii_uppercase();
        if ch.is_ascii_uppercase() && ((after_small && !unit_end) || (ends_run && !plural)) && !out.ends_with('_') {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// Names the extension's objects; see the module's doc.
fn objects(doc: &Doc) -> Result<Vec<Obj>, GenError> {
    let mut out: Vec<Obj> = Vec::new();
    for (at, o) in doc.objects.iter().enumerate() {
        let body = o.name.trim_end_matches('.');
        let row = body.ends_with(".{i}");
        let named = body.strip_suffix(".{i}").unwrap_or(body);
        let (parent_path, name) = match named.rfind('.') {
            Some(i) => (&o.name[..=i], &named[i + 1..]),
            None => ("", named),
        };
        let parent = out.iter().position(|p| doc.objects[p.at].name == parent_path);
        let short = camel(without_vendor_prefix(name));
        let taken = short == "Device" || out.iter().any(|p| p.ty == short);
        let ty = match parent {
            Some(p) if taken => format!("{}{short}", out[p].ty),
            _ => short,
        };
        if out.iter().any(|p| p.ty == ty) {
            return Err(GenError::NameClash { object: o.name.clone(), name: ty });
        }
        out.push(Obj {
            at,
            ty,
            method: snake(without_vendor_prefix(name)),
            segment: o.name[parent_path.len()..].to_string(),
            row,
            indices: o.name.matches("{i}").count(),
            parent,
        });
    }
    Ok(out)
}

/// The enumerated parameters, named; see the module's doc.
fn enums(doc: &Doc, objs: &[Obj], types: &HashMap<String, Facets>) -> Result<Vec<Enum>, GenError> {
    let mut found = Vec::new();
    for ob in objs {
        let o = &doc.objects[ob.at];
        for p in &o.params {
            let facets = param_facets(o, p, types)?;
            if !facets.enums.is_empty() {
                found.push((ob, p, facets.enums));
            }
        }
    }
    let mut out: Vec<Enum> = Vec::new();
    for (ob, p, values) in &found {
        let shared = found.iter().filter(|(_, q, _)| q.name == p.name).count() > 1;
        let ty = if ob.row && !shared { camel(&p.name) } else { format!("{}{}", ob.ty, camel(&p.name)) };
        if out.iter().any(|e| e.ty == ty) || objs.iter().any(|o| o.ty == ty) {
            return Err(GenError::NameClash { object: doc.objects[ob.at].name.clone(), name: ty });
        }
        out.push(Enum {
            ty,
            param: format!("{}{}", doc.objects[ob.at].name, p.name),
            values: values.clone(),
            default: p.default.clone().or_else(|| p.factory_default.clone()),
        });
    }
    Ok(out)
}

const PRELUDE: &str = r#"use std::fmt;
use std::str::FromStr;

/// A value that is not in its parameter's enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a value of {parameter} (one of {expected})")]
pub struct UnknownValue {
    /// The parameter's path template.
    pub parameter: &'static str,
    /// Its values, comma-separated.
    pub expected: &'static str,
    /// The value given.
    pub value: String,
}

/// The instance number of the row of `table` that `path` is in (or refers to, without the
/// trailing dot, as a path reference does), and the rest of `path` after the number's dot.
fn split_row<'a>(table: &str, path: &'a str) -> Option<(u32, &'a str)> {
    let below = path.strip_prefix(table)?;
    let (n, rest) = below.split_once('.').unwrap_or((below, ""));
    if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((n.parse().ok()?, rest))
}
"#;

fn write_struct(out: &mut String, doc: &Doc, objs: &[Obj], ob: &Obj, enums: &[Enum]) -> Result<(), GenError> {
    let o = &doc.objects[ob.at];
    let ty = &ob.ty;
    let what = match (ob.row, o.access == "readWrite") {
        (true, true) => "a row of a writable table",
        (true, false) => "a row of a read-only table",
        (false, _) => "a single object",
    };
    let _ = writeln!(out, "\n/// `{}`: {what}.", o.name);
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq, Eq, Hash)]");
    let _ = writeln!(out, "pub struct {ty}(String);\n");
    let _ = writeln!(out, "impl {ty} {{");
    let _ = writeln!(out, "    /// The object's path template.");
    let _ = writeln!(out, "    pub const OBJECT: &'static str = \"{}\";", o.name);
    let table = ob.row && ob.indices == 1;
    if table {
        let _ = writeln!(out, "    /// The table (AddObject's object name).");
        let _ = writeln!(out, "    pub const TABLE: &'static str = \"{}\";", o.name.trim_end_matches("{i}."));
    }
    let args: Vec<String> = match ob.indices {
        1 => vec!["i".into()],
        n => (1..=n).map(|k| format!("i{k}")).collect(),
    };
    let mut path = String::new();
    let mut rest = o.name.as_str();
    for a in &args {
        if let Some((before, after)) = rest.split_once("{i}") {
            let _ = write!(path, "{before}{{{a}}}");
            rest = after;
        }
    }
    path.push_str(rest);
    let params: Vec<String> = args.iter().map(|a| format!("{a}: u32")).collect();
    let _ = writeln!(out);
    match ob.indices {
        0 => {
            let _ = writeln!(out, "    /// The object.");
            let _ = writeln!(out, "    pub fn at() -> {ty} {{\n        {ty}(Self::OBJECT.to_string())\n    }}");
        }
        1 if ob.row => {
            let _ = writeln!(out, "    /// Row `i`.");
            let _ = writeln!(out, "    pub fn at(i: u32) -> {ty} {{\n        {ty}(format!(\"{path}\"))\n    }}");
        }
        n => {
            let rows = if n == 1 { "row `i`" } else { "these rows" };
            let _ = writeln!(out, "    /// The object in {rows}.");
            let _ = writeln!(
                out,
                "    pub fn at({}) -> {ty} {{\n        {ty}(format!(\"{path}\"))\n    }}",
                params.join(", ")
            );
        }
    }
    if ob.row {
        let _ = writeln!(out, "\n    /// Names relative to a row, as AddObject's parameter values give them.");
        let _ = writeln!(out, "    pub fn relative() -> {ty} {{\n        {ty}(String::new())\n    }}");
    }
    if table {
        let _ =
            writeln!(out, "\n    /// The row number and the rest of `path`, when `path` is in a row of this table or");
        let seg = ob.segment.trim_end_matches("{i}.");
        let _ = writeln!(out, "    /// refers to one (a path reference, `...{seg}3`, has an empty rest).");
        let _ = writeln!(
            out,
            "    pub fn split(path: &str) -> Option<(u32, &str)> {{\n        split_row(Self::TABLE, path)\n    }}"
        );
    }
    let _ = writeln!(out, "\n    /// The object's path, ending in a dot.");
    let _ = writeln!(out, "    pub fn path(&self) -> &str {{\n        &self.0\n    }}");
    let mut methods: Vec<String> = vec!["at".into(), "relative".into(), "split".into(), "path".into()];
    let mut claim = |name: &str| -> Result<(), GenError> {
        if methods.iter().any(|m| m == name) {
            return Err(GenError::NameClash { object: o.name.clone(), name: name.to_string() });
        }
        methods.push(name.to_string());
        Ok(())
    };
    for p in &o.params {
        let m = snake(&p.name);
        claim(&m)?;
        let full = format!("{}{}", o.name, p.name);
        let kind = match enums.iter().find(|e| e.param == full) {
            Some(e) => format!("[`{}`]", e.ty),
            None => p.facets.prim.clone().or_else(|| p.data_type.clone()).unwrap_or_else(|| "string".into()),
        };
        let _ = writeln!(out, "\n    /// `{}`: {kind}, {}.", p.name, p.access);
        let _ =
            writeln!(out, "    pub fn {m}(&self) -> String {{\n        format!(\"{{}}{}\", self.0)\n    }}", p.name);
    }
    for child in objs.iter().filter(|c| c.parent.is_some_and(|p| objs[p].at == ob.at)) {
        claim(&child.method)?;
        let cty = &child.ty;
        if child.row {
            let seg = child.segment.trim_end_matches("{i}.");
            let _ = writeln!(out, "\n    /// Row `i` of `{seg}{{i}}.`.");
            let _ = writeln!(
                out,
                "    pub fn {}(&self, i: u32) -> {cty} {{\n        {cty}(format!(\"{{}}{seg}{{i}}.\", self.0))\n    }}",
                child.method
            );
        } else {
            let seg = &child.segment;
            let _ = writeln!(out, "\n    /// `{seg}`.");
            let _ = writeln!(
                out,
                "    pub fn {}(&self) -> {cty} {{\n        {cty}(format!(\"{{}}{seg}\", self.0))\n    }}",
                child.method
            );
        }
    }
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(out, "impl fmt::Display for {ty} {{");
    let _ = writeln!(
        out,
        "    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        f.write_str(&self.0)\n    }}"
    );
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(out, "impl From<{ty}> for String {{");
    let _ = writeln!(out, "    fn from(o: {ty}) -> String {{\n        o.0\n    }}");
    let _ = writeln!(out, "}}");
    Ok(())
}

fn write_enum(out: &mut String, e: &Enum) {
    let ty = &e.ty;
    let variants: Vec<String> = e.values.iter().map(|v| camel(v)).collect();
    let has_default = e.default.as_ref().is_some_and(|d| e.values.contains(d));
    let _ = writeln!(out, "\n/// The values of `{}`.", e.param);
    let derives = if has_default { "Debug, Clone, Copy, Default," } else { "Debug, Clone, Copy," };
    let _ = writeln!(out, "#[derive({derives} PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]");
    let _ = writeln!(out, "pub enum {ty} {{");
    for (v, name) in e.values.iter().zip(&variants) {
        let default = e.default.as_ref() == Some(v);
        let _ = writeln!(out, "    /// `{v}`{}.", if default { " (the default)" } else { "" });
        if default {
            let _ = writeln!(out, "    #[default]");
        }
        if name != v {
            let _ = writeln!(out, "    #[serde(rename = \"{v}\")]");
        }
        let _ = writeln!(out, "    {name},");
    }
    let _ = writeln!(out, "}}\n");
    let all: Vec<String> = variants.iter().map(|v| format!("{ty}::{v}")).collect();
    let _ = writeln!(out, "impl {ty} {{");
    let _ = writeln!(out, "    /// The parameter's path template.");
    let _ = writeln!(out, "    pub const PARAMETER: &'static str = \"{}\";", e.param);
    let _ = writeln!(out, "    /// Every value, in the XML's order.");
    // Laid out as rustfmt lays it out (max_width 120): on one line, after the `=`, or one a line.
    let decl = format!("    pub const ALL: [{ty}; {}] =", all.len());
    let list = format!("[{}];", all.join(", "));
    if decl.len() + 1 + list.len() <= WIDTH {
        let _ = writeln!(out, "{decl} {list}");
    } else if 8 + list.len() <= WIDTH {
        let _ = writeln!(out, "{decl}\n        {list}");
    } else {
        let _ = writeln!(out, "{decl} [");
        for a in &all {
            let _ = writeln!(out, "        {a},");
        }
        let _ = writeln!(out, "    ];");
    }
    let _ = writeln!(out, "\n    /// The value as the data model spells it.");
    let _ = writeln!(out, "    pub const fn as_str(self) -> &'static str {{\n        match self {{");
    for (v, name) in e.values.iter().zip(&variants) {
        let _ = writeln!(out, "            {ty}::{name} => \"{v}\",");
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
    let _ = writeln!(out, "impl FromStr for {ty} {{");
    let _ = writeln!(out, "    type Err = UnknownValue;\n");
    let _ = writeln!(out, "    fn from_str(s: &str) -> Result<{ty}, UnknownValue> {{\n        match s {{");
    for (v, name) in e.values.iter().zip(&variants) {
        let _ = writeln!(out, "            \"{v}\" => Ok({ty}::{name}),");
    }
    let expected = e.values.join(", ");
    let one_line = format!(
        "            _ => Err(UnknownValue {{ parameter: Self::PARAMETER, expected: \"{expected}\", value: s.to_string() }}),"
    );
    if one_line.len() <= WIDTH {
        let _ = writeln!(out, "{one_line}");
    } else {
        let _ = writeln!(out, "            _ => Err(UnknownValue {{");
        let _ = writeln!(out, "                parameter: Self::PARAMETER,");
        let _ = writeln!(out, "                expected: \"{expected}\",");
        let _ = writeln!(out, "                value: s.to_string(),");
        let _ = writeln!(out, "            }}),");
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
    let _ = writeln!(out, "impl fmt::Display for {ty} {{");
    let _ = writeln!(
        out,
        "    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        f.write_str(self.as_str())\n    }}"
    );
    let _ = writeln!(out, "}}");
}

/// The module's text from the parsed vendor document.
pub(super) fn module(doc: &Doc, types: &HashMap<String, Facets>, vendor_name: &str) -> Result<String, GenError> {
    let objs = objects(doc)?;
    let enums = enums(doc, &objs, types)?;
    let root = doc.objects.first().map_or("Device.", |o| o.name.as_str());
    // The example: a parameter of a sub-object of a row (`Instance::at(3).migration().mode()`).
    let example = objs.iter().find_map(|c| {
        let row = &objs[c.parent?];
        let param = doc.objects[c.at].params.first()?;
        (row.row && row.indices == 1 && !c.row).then_some((row, c, param))
    });
    let mut out = String::new();
    let _ = writeln!(out, "//! Typed paths and enumerations of the vendor extension `{root}`.");
    let _ = writeln!(out, "//!");
    let _ =
        writeln!(out, "//! Generated by `dm-gen rust` from {vendor_name}; do not edit (datamodel/tests/spec.rs fails");
    let _ = writeln!(out, "//! when it differs from what the XML gives). Each object is a type holding its path, each");
    let _ =
        writeln!(out, "//! parameter a method giving the parameter's path, each enumerated parameter an enum spelled");
    let _ = writeln!(out, "//! as the XML spells it (`as_str`, `FromStr`, `Display`, serde, `ALL`).");
    if let Some((row, sub, p)) = example {
        let (path, rel) = (format!("{}().{}()", sub.method, snake(&p.name)), format!("{}{}", sub.segment, p.name));
        let full = format!("{}{rel}", doc.objects[row.at].name.replace("{i}", "3"));
        let _ = writeln!(out, "//!");
        let _ = writeln!(out, "//! `{}::at(3).{path}` is `{full}`;", row.ty);
        let _ = writeln!(out, "//! `{}::relative().{path}` is `{rel}`, the name inside a row.", row.ty);
    }
    let _ = writeln!(out);
    out.push_str(PRELUDE);
    for ob in &objs {
        write_struct(&mut out, doc, &objs, ob, &enums)?;
    }
    for e in &enums {
        write_enum(&mut out, e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases = [
            ("MigrationURI", "migration_uri"),
            ("CPUTime", "cpu_time"),
            ("VCPUs", "vcpus"),
            ("MemoryKiB", "memory_kib"),
            ("SVLAN", "svlan"),
            ("TemplateNumberOfEntries", "template_number_of_entries"),
            ("Type", "type_"),
        ];
        for (xml, rust) in cases {
            assert_eq!(snake(xml), rust, "{xml}");
        }
        assert_eq!(camel("VM"), "Vm");
        assert_eq!(camel("ColdImage"), "ColdImage");
        assert_eq!(camel("cold-image"), "ColdImage");
        assert_eq!(camel("2G"), "V2g");
        assert_eq!(without_vendor_prefix("X_VRGW-ORG_Virtualization"), "Virtualization");
        assert_eq!(without_vendor_prefix("Instance"), "Instance");
    }

    const DOC: &str = r#"<dm:document xmlns:dm="x"><model name="X:1">
        <object name="Device.X_A-B_Thing." access="readOnly">
          <parameter name="Kind" access="readWrite"><syntax><string><enumeration value="VM"/>
            <enumeration value="cold-image"/></string><default type="object" value="cold-image"/></syntax></parameter>
        </object>
        <object name="Device.X_A-B_Thing.Row.{i}." access="readWrite"/>
        <object name="Device.X_A-B_Thing.Row.{i}.Cell.{i}." access="readOnly">
          <parameter name="Kind" access="readOnly"><syntax><string><enumeration value="A"/></string></syntax></parameter>
        </object>
    </model></dm:document>"#;

    #[test]
    fn nested_rows_and_shared_enumeration_names() {
        let doc = super::super::parse(DOC, "v.xml").expect("parses");
        let text = module(&doc, &HashMap::new(), "v.xml").expect("generates");
        for want in [
            "pub struct Thing(String);",
            "    pub fn row(&self, i: u32) -> Row {",
            "    pub const TABLE: &'static str = \"Device.X_A-B_Thing.Row.\";",
            "    pub fn cell(&self, i: u32) -> Cell {",
            "    pub fn at(i1: u32, i2: u32) -> Cell {\n        Cell(format!(\"Device.X_A-B_Thing.Row.{i1}.Cell.{i2}.\"))",
            "pub enum ThingKind {",
            "pub enum CellKind {",
            "    #[default]\n    #[serde(rename = \"cold-image\")]\n    ColdImage,",
            "            \"VM\" => Ok(ThingKind::Vm),",
        ] {
            assert!(text.contains(want), "{want}\nnot in\n{text}");
        }
        // A nested table has no TABLE of its own (its path has two numbers).
        assert_eq!(text.matches("pub const TABLE").count(), 1);
    }

    #[test]
    fn clashing_names_are_refused() {
        let xml = r#"<dm:document xmlns:dm="x"><model name="X:1"><object name="Device.X_A-B_Thing." access="readOnly">
            <parameter name="Path" access="readOnly"><syntax><string/></syntax></parameter></object></model></dm:document>"#;
        let doc = super::super::parse(xml, "v.xml").expect("parses");
        let err = module(&doc, &HashMap::new(), "v.xml").expect_err("path() is the object's own");
        assert!(matches!(&err, GenError::NameClash { name, .. } if name == "path"), "{err}");
    }
}
