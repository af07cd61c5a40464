//! GenieACS's device query language, sort and projections, and the device JSON shape GenieACS's
//! NBI returns.
//!
//! A query is parsed once into a [`Query`] (its regular expressions compiled) and then run
//! against each device's [`Record`]. It follows GenieACS's `query.expand` and MongoDB's matching:
//! - A key whose last segment does not start with `_` names a parameter's value (`A.B` is
//!   `A.B._value`); `A.B._type` and `A.B._timestamp` name its type and read time (an object's
//!   `_timestamp`: when its children were last listed). What CPEs tell besides values
//!   ([`PathInfo`], read with [`FullRecord`]): `_object`, `_writable`, `_notification`,
//!   `_accessList` (each entry, as MongoDB matches an array) and `_attributesTimestamp`. The device's
//!   own fields are `_id`, `_tags` (each tag), `_deviceId._Manufacturer|_OUI|_ProductClass|
//!   _SerialNumber`, and the dates `_registered`, `_lastInform`, `_lastBoot`, `_lastBootstrap`.
//! - A string in a condition stands for every value GenieACS reads in it: the string, a number
//!   when it is one, a date when it is one GenieACS's `new Date` reads (ISO 8601, `2017-12-11
//!   13:16:23 +0000`, RFC 2822, JavaScript's `Date.toString`; after 1983, at least 8 bytes), a
//!   regular expression for `/re/flags`, and a glob for a string with `*`. A condition holds when
//!   one of them does (`$ne`, `$nin`: when none equals). Comparisons are within a type, as in
//!   MongoDB: a date with a date, a number with a number, text with text. Beyond GenieACS, a
//!   number compared with a date is read as milliseconds since 1970.
//! - Operators: `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`, `$regex`
//!   (with `$options` of `imsx`); `$and`, `$or`, `$nor`. Anything else is refused (400).
//! - Parameter values are typed by their xsd type: numbers, booleans, dates (`dateTime`), text.
//!
//! Bounds on outside input: `$and`/`$or`/`$nor` nest at most [`MAX_NESTING`] deep; a regular
//! expression is at most [`MAX_REGEX_BYTES`] long and compiles within [`REGEX_SIZE_LIMIT`], at
//! most [`MAX_REGEXES`] of them a query (the `regex` crate: linear-time matching, no
//! backtracking, so no pattern takes a device list hostage); the device JSON is built without
//! recursion, and a cached parameter whose name the CWMP codec would refuse today (over
//! `cwmp::MAX_NAME_BYTES` or `cwmp::MAX_NAME_SEGMENTS`; an older ACS stored such names) is left
//! out of it, so its nesting never exceeds the codec's bound.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use serde_json::{json, Map, Value as Json};

use crate::store::devices::Lifecycle;
use crate::store::{CachedParam, Device, PathInfo};

/// A query the NBI cannot run, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(pub String);

fn bad(msg: impl Into<String>) -> BadQuery {
    BadQuery(msg.into())
}

/// ISO 8601 text of Unix seconds, as GenieACS prints its dates (JavaScript's
/// `Date.toISOString`: milliseconds and `Z`, `2017-12-11T13:16:23.000Z`).
pub fn iso(secs: i64) -> String {
    iso_millis(secs.saturating_mul(1000))
}

/// ISO 8601 text of milliseconds since 1970, as JavaScript's `Date.toISOString` prints them.
pub fn iso_millis(ms: i64) -> String {
    let whole = cwmp::DateTime::from_unix(ms.div_euclid(1000));
    let text = whole.as_str();
    format!("{}.{:03}Z", text.strip_suffix('Z').unwrap_or(text), ms.rem_euclid(1000))
}

/// How deep `$and`, `$or` and `$nor` may nest in a query.
pub const MAX_NESTING: usize = 16;
/// The longest regular expression a query may hold, in bytes.
pub const MAX_REGEX_BYTES: usize = 1024;
/// The most regular expressions (`$regex`, `/re/` and glob strings) one query may hold.
pub const MAX_REGEXES: usize = 32;
/// The most memory one compiled regular expression may take (and its lazy DFA's cache).
pub const REGEX_SIZE_LIMIT: usize = 256 << 10;

// ---------------------------------------------------------------------------------------------
// Dates as GenieACS's `new Date(text)` reads them.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn month_of(name: &str) -> Option<i64> {
    let names = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let lower = name.get(..3)?.to_ascii_lowercase();
    names.iter().position(|n| *n == lower).map(|i| i as i64 + 1)
}

/// Offset in minutes east of UTC of a zone as dates write it (`Z`, `UTC`, `GMT`, `+0100`,
/// `-01:30`, `GMT+0100`); `None` for one that is not.
fn zone_minutes(z: &str) -> Option<i64> {
    let z = z.trim();
    let rest = match z.to_ascii_uppercase().as_str() {
        "" | "Z" | "UT" | "UTC" | "GMT" => return Some(0),
        u if u.starts_with("GMT") || u.starts_with("UTC") => z[3..].to_string(),
        _ => z.to_string(),
    };
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    (h <= 23 && m <= 59).then_some(sign * (h * 60 + m))
}

/// Milliseconds since 1970 of a civil time in a zone, checking each field's range.
#[allow(clippy::too_many_arguments)]
fn civil_millis(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ms: i64, zone: i64) -> Option<i64> {
    let ok = (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && (h <= 23 || (h == 24 && mi == 0 && s == 0 && ms == 0))
        && mi <= 59
        && s <= 59;
    ok.then(|| ((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000 + ms) - zone * 60_000)
}

static ISO_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([+-]\d{6}|\d{4})[-/](\d{1,2})(?:[-/](\d{1,2}))?(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*((?:Z|UTC|GMT|UT)?(?:[+-]\d{2}:?\d{2})?)$",
    )
    .expect("a valid pattern")
});

static RFC_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[A-Za-z]{3,9},?\s+)?(\d{1,2})[\s-]+([A-Za-z]{3,9})[\s-]+(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*((?:Z|UTC|GMT|UT)?(?:[+-]\d{2}:?\d{2})?)$",
    )
    .expect("a valid pattern")
});

static JS_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[A-Za-z]{3,9},?\s+)?([A-Za-z]{3,9})\s+(\d{1,2}),?\s+(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*((?:Z|UTC|GMT|UT)?(?:[+-]\d{2}:?\d{2})?)(?:\s+\([^)]*\))?$",
    )
    .expect("a valid pattern")
});

/// Milliseconds since 1970 of a date as text, in the forms GenieACS's `new Date(text)` reads:
/// ISO 8601 (`2017-12-11`, `2017-12-11T13:16:23.5Z`, `2017-12-11T13:16:23+01:00`), with a space
/// for the `T` and a zone after a space (`2017-12-11 13:16:23 +0000`), RFC 2822 (`Mon, 11 Dec
/// 2017 13:16:23 GMT`) and JavaScript's `Date.toString` (`Mon Dec 11 2017 13:16:23 GMT+0000
/// (Coordinated Universal Time)`). A time without a zone is read as UTC (JavaScript reads it
/// in the server's zone; GenieACS servers run in UTC).
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() > 100 {
        return None;
    }
    let num = |m: Option<regex::Match<'_>>| -> Option<i64> { m.map_or(Some(0), |m| m.as_str().parse().ok()) };
    if let Some(c) = ISO_DATE.captures(text) {
        let ms = c.get(7).map_or(Some(0), |f| {
            let digits = f.as_str();
            let first3: String = digits.chars().chain("000".chars()).take(3).collect();
            first3.parse().ok()
        })?;
        let day = c.get(3).map_or(Some(1), |d| d.as_str().parse().ok())?;
        return civil_millis(
            c[1].parse().ok()?,
            c[2].parse().ok()?,
            day,
            num(c.get(4))?,
            num(c.get(5))?,
            num(c.get(6))?,
            ms,
            zone_minutes(c.get(8).map_or("", |z| z.as_str()))?,
        );
    }
    let (d, mo, y, rest) = if let Some(c) = RFC_DATE.captures(text) {
        (c[1].parse().ok()?, month_of(&c[2])?, c[3].parse().ok()?, c)
    } else if let Some(c) = JS_DATE.captures(text) {
        (c[2].parse().ok()?, month_of(&c[1])?, c[3].parse().ok()?, c)
    } else {
        return None;
    };
    civil_millis(
        y,
        mo,
        d,
        num(rest.get(4))?,
        num(rest.get(5))?,
        num(rest.get(6))?,
        0,
        zone_minutes(rest.get(7).map_or("", |z| z.as_str()))?,
    )
}

/// The number in a string, as GenieACS reads it (`+s === parseFloat(s)`): decimal, optionally
/// signed, with a fraction or an exponent, blanks around it allowed.
fn js_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    if body == "Infinity" {
        return Some(if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    (!(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac) && exp_ok).then(|| t.parse().ok()).flatten()
}

// ---------------------------------------------------------------------------------------------
// Values of a device's fields, and the values a condition stands for.

/// A value of a device's field, typed as MongoDB would hold it in GenieACS's database.
#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Num(f64),
    Text(Cow<'a, str>),
    Bool(bool),
    /// Milliseconds since 1970.
    Date(i64),
}

impl Val<'_> {
    /// MongoDB's order of types in a sort: numbers, text, booleans, dates.
    fn rank(&self) -> u8 {
        match self {
            Val::Num(_) => 1,
            Val::Text(_) => 2,
            Val::Bool(_) => 3,
            Val::Date(_) => 4,
        }
    }

    /// The order of two values in a sort (types first, then values).
    fn sort_cmp(&self, other: &Val<'_>) -> Ordering {
        match (self, other) {
            (Val::Num(a), Val::Num(b)) => a.total_cmp(b),
            (Val::Text(a), Val::Text(b)) => a.cmp(b),
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (Val::Date(a), Val::Date(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

/// A cached parameter's value typed by its xsd type.
fn typed_val<'a>(p: &'a CachedParam) -> Val<'a> {
    match p.ty.as_str() {
        "int" | "long" | "unsignedInt" | "unsignedLong" => {
            p.value.trim().parse::<f64>().map(Val::Num).unwrap_or(Val::Text(Cow::Borrowed(&p.value)))
        }
        "boolean" => Val::Bool(p.value == "true" || p.value == "1"),
        "dateTime" => parse_date(&p.value).map(Val::Date).unwrap_or(Val::Text(Cow::Borrowed(&p.value))),
        _ => Val::Text(Cow::Borrowed(&p.value)),
    }
}

/// One value a condition stands for.
#[derive(Debug, Clone)]
enum Alt {
    Num(f64),
    Text(String),
    Bool(bool),
    Date(i64),
    /// `null`: the field is missing.
    Null,
    Regex(Regex),
    /// An array or an object: equal to no single value.
    Never,
}

impl Alt {
    /// Whether `v` equals this (a regular expression: matches it).
    fn eq(&self, v: &Val<'_>) -> bool {
        match (self, v) {
            (Alt::Num(a), Val::Num(b)) => a == b,
            (Alt::Text(a), Val::Text(b)) => a == b.as_ref(),
            (Alt::Bool(a), Val::Bool(b)) => a == b,
            (Alt::Date(a), Val::Date(b)) => a == b,
            // Beyond GenieACS: milliseconds stand for a date.
            (Alt::Num(a), Val::Date(b)) => *a == *b as f64,
            (Alt::Regex(r), Val::Text(t)) => r.is_match(t),
            _ => false,
        }
    }

    /// The order of `v` against this, within one type (`None` across types).
    fn cmp(&self, v: &Val<'_>) -> Option<Ordering> {
        match (v, self) {
            (Val::Num(a), Alt::Num(b)) => a.partial_cmp(b),
            (Val::Text(a), Alt::Text(b)) => Some(a.as_ref().cmp(b.as_str())),
            (Val::Bool(a), Alt::Bool(b)) => Some(a.cmp(b)),
            (Val::Date(a), Alt::Date(b)) => Some(a.cmp(b)),
            (Val::Date(a), Alt::Num(b)) => (*a as f64).partial_cmp(b),
            _ => None,
        }
    }
}

/// Compiles a regular expression within the query's bounds.
fn compile(pattern: &str, options: &str, count: &mut usize) -> Result<Regex, BadQuery> {
    *count += 1;
    if *count > MAX_REGEXES {
        return Err(bad(format!("a query holds at most {MAX_REGEXES} regular expressions")));
    }
    if pattern.len() > MAX_REGEX_BYTES {
        return Err(bad(format!("a regular expression is at most {MAX_REGEX_BYTES} bytes")));
    }
    let mut b = RegexBuilder::new(pattern);
    b.size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT);
    for o in options.chars() {
        match o {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'x' => b.ignore_whitespace(true),
            // JavaScript's flags that change nothing for a match.
            'g' | 'y' | 'u' => &mut b,
            other => return Err(bad(format!("unknown regular expression option {other:?}"))),
        };
    }
    b.build().map_err(|e| bad(format!("regular expression {pattern:?}: {e}")))
}

/// The glob of a string with `*` as GenieACS reads it: `*` any text, anchored at an end that
/// has no `*`. (GenieACS means this; its code escapes only the first special character and
/// turns only the first inner `*` into `.*`.)
fn glob(s: &str, count: &mut usize) -> Result<Regex, BadQuery> {
    let start = if s.starts_with('*') { "" } else { "^" };
    let end = if s.ends_with('*') { "" } else { "$" };
    let inner: Vec<String> = s.trim_matches('*').split('*').map(regex::escape).collect();
    compile(&format!("{start}{}{end}", inner.join(".*")), "", count)
}

static SLASHED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)^/(.*?)/([gimy]*)$").expect("a valid pattern"));

/// Every value a condition's JSON value stands for (GenieACS's `normalize`).
fn expand(v: &Json, count: &mut usize) -> Result<Vec<Alt>, BadQuery> {
    Ok(match v {
        Json::String(s) => {
            let mut alts = vec![Alt::Text(s.clone())];
            if let Some(c) = SLASHED.captures(s) {
                alts.push(Alt::Regex(compile(&c[1], &c[2], count)?));
            }
            if let Some(n) = js_number(s) {
                alts.push(Alt::Num(n));
            }
            if let Some(d) = parse_date(s).filter(|d| s.len() >= 8 && *d >= days_from_civil(1984, 1, 1) * 86_400_000) {
                alts.push(Alt::Date(d));
            }
            if s.contains('*') {
                alts.push(Alt::Regex(glob(s, count)?));
            }
            alts
        }
        Json::Number(n) => vec![n.as_f64().map_or(Alt::Never, Alt::Num)],
        Json::Bool(b) => vec![Alt::Bool(*b)],
        Json::Null => vec![Alt::Null],
        Json::Array(_) | Json::Object(_) => vec![Alt::Never],
    })
}

/// A field of a device a query or a sort names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Id,
    Tags,
    Manufacturer,
    Oui,
    ProductClass,
    SerialNumber,
    Registered,
    LastInform,
    LastBoot,
    LastBootstrap,
    /// A parameter's value.
    Value(String),
    /// A parameter's xsd type (`xsd:string`).
    Type(String),
    /// When a parameter was read; when an object's children were listed.
    Timestamp(String),
    /// Whether a path is an object (`false`: a parameter).
    Object(String),
    /// Whether a path can be set.
    Writable(String),
    /// A parameter's Notification attribute.
    Notification(String),
    /// A parameter's AccessList attribute (each entry).
    AccessList(String),
    /// When a parameter's attributes were read.
    AttributesTimestamp(String),
    /// Anything else: missing on every device.
    Missing,
}

impl Field {
    /// The field a key names, as GenieACS's `expand` reads it.
    fn of(key: &str) -> Field {
        match key {
            "_id" => return Field::Id,
            "_tags" => return Field::Tags,
            "_deviceId._Manufacturer" => return Field::Manufacturer,
            "_deviceId._OUI" => return Field::Oui,
            "_deviceId._ProductClass" => return Field::ProductClass,
            "_deviceId._SerialNumber" => return Field::SerialNumber,
            "_registered" => return Field::Registered,
            "_lastInform" => return Field::LastInform,
            "_lastBoot" => return Field::LastBoot,
            "_lastBootstrap" => return Field::LastBootstrap,
            _ => {}
        }
        let (parent, last) = key.rsplit_once('.').unwrap_or(("", key));
        if !last.starts_with('_') {
            return Field::Value(key.to_string());
        }
        match last {
            _ if parent.is_empty() || parent.starts_with('_') => Field::Missing,
            "_value" => Field::Value(parent.to_string()),
            "_type" => Field::Type(parent.to_string()),
            "_timestamp" => Field::Timestamp(parent.to_string()),
            "_object" => Field::Object(parent.to_string()),
            "_writable" => Field::Writable(parent.to_string()),
            "_notification" => Field::Notification(parent.to_string()),
            "_accessList" => Field::AccessList(parent.to_string()),
            "_attributesTimestamp" => Field::AttributesTimestamp(parent.to_string()),
            _ => Field::Missing,
        }
    }

    /// Whether reading it needs the device's parameters (values, or [`PathInfo`]).
    /// Whether it reads what GetParameterNames / GetParameterAttributes told (a timestamp may
    /// be an object's: when its children were listed).
    fn needs_path_info(&self) -> bool {
        matches!(
            self,
            Field::Timestamp(_)
                | Field::Object(_)
                | Field::Writable(_)
                | Field::Notification(_)
                | Field::AccessList(_)
                | Field::AttributesTimestamp(_)
        )
    }

    fn needs_params(&self) -> bool {
        !matches!(
            self,
            Field::Id
                | Field::Tags
                | Field::Manufacturer
                | Field::Oui
                | Field::ProductClass
                | Field::SerialNumber
                | Field::Registered
                | Field::LastInform
                | Field::LastBoot
                | Field::LastBootstrap
                | Field::Missing
        )
    }

    /// Its values on a device (none: missing; `_tags`, `_accessList`: each entry).
    fn values<'a>(&self, full: &FullRecord<'a>) -> Vec<Val<'a>> {
        let r = &full.record;
        let d = r.device;
        let date = |s: Option<i64>| s.map(|s| Val::Date(s * 1000)).into_iter().collect();
        let text = |t: &'a str| Val::Text(Cow::Borrowed(t));
        let param = |name: &str| r.params.iter().find(|p| p.name == name);
        // What is known of a path, as a leaf or as an object (`A.B.`).
        let info = |name: &str| -> Option<&'a PathInfo> {
            full.info.iter().find(|i| i.name.strip_suffix('.').unwrap_or(&i.name) == name)
        };
        match self {
            Field::Id => vec![text(&d.id)],
            Field::Tags => d.tags.iter().map(|t| text(t)).collect(),
            Field::Manufacturer => vec![text(&d.manufacturer)],
            Field::Oui => vec![text(&d.oui)],
            Field::ProductClass => vec![text(&d.product_class)],
            Field::SerialNumber => vec![text(&d.serial_number)],
            Field::Registered => date(r.life.registered),
            Field::LastInform => vec![Val::Date(d.last_inform * 1000)],
            Field::LastBoot => date(r.life.last_boot),
            Field::LastBootstrap => date(r.life.last_bootstrap),
            Field::Value(n) => param(n).map(typed_val).into_iter().collect(),
            Field::Type(n) => param(n).map(|p| Val::Text(Cow::Owned(format!("xsd:{}", p.ty)))).into_iter().collect(),
            Field::Timestamp(n) => match param(n) {
                Some(p) => vec![Val::Date(p.updated * 1000)],
                None => date(info(n).filter(|i| i.is_object()).and_then(|i| i.listed)),
            },
            Field::Object(n) => {
                // As the device JSON shows it: an object listed as one or holding cached paths; a
                // parameter read or listed.
                let below = |name: &str| {
                    name.len() > n.len() + 1 && name.starts_with(n.as_str()) && name.as_bytes()[n.len()] == b'.'
                };
                let object = info(n).is_some_and(PathInfo::is_object)
                    || r.params.iter().any(|p| below(&p.name))
                    || full.info.iter().any(|i| below(&i.name));
                if object {
                    vec![Val::Bool(true)]
                } else if param(n).is_some() || info(n).is_some() {
                    vec![Val::Bool(false)]
                } else {
                    vec![]
                }
            }
            Field::Writable(n) => info(n).and_then(|i| i.writable).map(Val::Bool).into_iter().collect(),
            Field::Notification(n) => {
                info(n).and_then(|i| i.notification).map(|c| Val::Num(f64::from(c))).into_iter().collect()
            }
            Field::AccessList(n) => info(n)
                .and_then(|i| i.access_list.as_ref())
                .map_or_else(Vec::new, |l| l.iter().map(|e| text(e)).collect()),
            Field::AttributesTimestamp(n) => date(info(n).and_then(|i| i.attributes_read)),
            Field::Missing => vec![],
        }
    }
}

/// One test of a field's values.
#[derive(Debug, Clone)]
enum Test {
    /// Equals one of the values (`null`: is missing).
    Eq(Vec<Alt>),
    Ne(Vec<Alt>),
    Cmp(Ordering, bool, Vec<Alt>),
    In(Vec<Alt>),
    Nin(Vec<Alt>),
    Exists(bool),
    Regex(Regex),
}

fn any_eq(alts: &[Alt], vals: &[Val<'_>]) -> bool {
    alts.iter().any(|a| match a {
        Alt::Null => vals.is_empty(),
        a => vals.iter().any(|v| a.eq(v)),
    })
}

impl Test {
    fn holds(&self, vals: &[Val<'_>]) -> bool {
        match self {
            Test::Eq(alts) | Test::In(alts) => any_eq(alts, vals),
            Test::Ne(alts) | Test::Nin(alts) => !any_eq(alts, vals),
            Test::Cmp(want, or_equal, alts) => vals.iter().any(|v| {
                alts.iter().any(|a| a.cmp(v).is_some_and(|o| o == *want || (*or_equal && o == Ordering::Equal)))
            }),
            Test::Exists(b) => vals.is_empty() != *b,
            Test::Regex(r) => vals.iter().any(|v| matches!(v, Val::Text(t) if r.is_match(t))),
        }
    }
}

/// A node of a parsed query.
#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Nor(Vec<Node>),
    Field(Field, Vec<Test>),
}

/// A device query parsed at the edge: run it on many devices with [`Query::matches`] (or
/// [`Query::matches_full`], which also sees [`PathInfo`]).
#[derive(Debug, Clone)]
pub struct Query(Node);

/// A device as a query, a sort and the device JSON read it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The device's Inform record.
    pub device: &'a Device,
    /// When it registered, last booted, last bootstrapped.
    pub life: &'a Lifecycle,
    /// Its cached parameters.
    pub params: &'a [CachedParam],
}

impl<'a> Record<'a> {
    /// The device with what its CPE told of its paths besides values.
    pub fn with_info(self, info: &'a [PathInfo]) -> FullRecord<'a> {
        FullRecord { record: self, info }
    }
}

/// A device with its [`PathInfo`] (GetParameterNames, GetParameterAttributes), which GenieACS's
/// `_object`, `_writable`, an object's `_timestamp`, `_notification`, `_accessList` and
/// `_attributesTimestamp` read. A [`Record`] alone is one with none known.
#[derive(Debug, Clone, Copy)]
pub struct FullRecord<'a> {
    /// The device, its lifecycle and values.
    pub record: Record<'a>,
    /// What is known of its paths besides values, by name.
    pub info: &'a [PathInfo],
}

impl<'a> From<&Record<'a>> for FullRecord<'a> {
    fn from(r: &Record<'a>) -> FullRecord<'a> {
        r.with_info(&[])
    }
}

fn truthy(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::Null => false,
        _ => true,
    }
}

impl Query {
    /// Parses a query (a JSON object).
    pub fn parse(query: &Json) -> Result<Query, BadQuery> {
        let mut regexes = 0;
        Ok(Query(parse_node(query, MAX_NESTING, &mut regexes)?))
    }

    /// Whether the device matches (none of its [`PathInfo`] known).
    pub fn matches(&self, r: &Record<'_>) -> bool {
        self.matches_full(&r.into())
    }

    /// Whether the device matches, its [`PathInfo`] seen.
    pub fn matches_full(&self, r: &FullRecord<'_>) -> bool {
        eval(&self.0, r)
    }

    /// Whether running it reads the device's parameters (else it can run without loading them).
    pub fn needs_params(&self) -> bool {
        self.0.any_field(&Field::needs_params)
    }

    /// Whether running it reads what the device told of its paths besides values
    /// ([`PathInfo`]: `_object`, `_writable`, `_notification`, ...).
    pub fn needs_path_info(&self) -> bool {
        self.0.any_field(&Field::needs_path_info)
    }

    /// What every device it matches has, in terms a store can look up by index: a tag, a
    /// cached value equal to a text. The store narrows the devices with them; the query still
    /// decides on each. Only what is certain is told (a condition under `$or` or `$nor`, or one
    /// whose value also stands for a number, a date or a pattern, is not).
    pub fn necessary(&self) -> Vec<crate::store::Need> {
        let mut out = Vec::new();
        self.0.necessary(&mut out);
        out
    }
}

/// The one text a condition's tests stand for, when they stand for nothing else.
fn only_text(tests: &[Test]) -> Option<&str> {
    match tests {
        [Test::Eq(alts)] => match alts.as_slice() {
            [Alt::Text(t)] => Some(t),
            _ => None,
        },
        _ => None,
    }
}

impl Node {
    fn necessary(&self, out: &mut Vec<crate::store::Need>) {
        match self {
            Node::And(l) => l.iter().for_each(|n| n.necessary(out)),
            Node::Or(_) | Node::Nor(_) => {}
            Node::Field(Field::Tags, tests) => {
                // A tag is text: of a string's alternatives only the text can match one.
                if let [Test::Eq(alts)] = tests.as_slice() {
                    if let (Some(Alt::Text(t)), false) =
                        (alts.first(), alts.iter().any(|a| matches!(a, Alt::Regex(_) | Alt::Null | Alt::Never)))
                    {
                        out.push(crate::store::Need::Tag(t.clone()));
                    }
                }
            }
            Node::Field(Field::Value(name), tests) => {
                if let Some(t) = only_text(tests) {
                    out.push(crate::store::Need::Value { name: name.clone(), value: t.to_string() });
                }
            }
            Node::Field(..) => {}
        }
    }

    /// Whether a field it tests is one `pick` picks.
    fn any_field(&self, pick: &dyn Fn(&Field) -> bool) -> bool {
        match self {
            Node::And(l) | Node::Or(l) | Node::Nor(l) => l.iter().any(|n| n.any_field(pick)),
            Node::Field(f, _) => pick(f),
        }
    }
}

fn eval(n: &Node, r: &FullRecord<'_>) -> bool {
    match n {
        Node::And(l) => l.iter().all(|q| eval(q, r)),
        Node::Or(l) => l.iter().any(|q| eval(q, r)),
        Node::Nor(l) => !l.iter().any(|q| eval(q, r)),
        Node::Field(f, tests) => {
            let vals = f.values(r);
            tests.iter().all(|t| t.holds(&vals))
        }
    }
}

fn parse_node(query: &Json, depth: usize, regexes: &mut usize) -> Result<Node, BadQuery> {
    let obj = query.as_object().ok_or_else(|| bad("a query is a JSON object"))?;
    let mut all = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let node = match k.as_str() {
            op @ ("$and" | "$or" | "$nor") => {
                let list = v
                    .as_array()
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| bad(format!("{op} takes a non-empty array")))?;
                let left = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad(format!("$and, $or and $nor nest at most {MAX_NESTING} deep")))?;
                let nodes = list.iter().map(|q| parse_node(q, left, regexes)).collect::<Result<Vec<_>, _>>()?;
                match op {
                    "$and" => Node::And(nodes),
                    "$or" => Node::Or(nodes),
                    _ => Node::Nor(nodes),
                }
            }
            op if op.starts_with('$') => return Err(bad(format!("unsupported operator {op}"))),
            key => Node::Field(Field::of(key), parse_tests(v, regexes)?),
        };
        all.push(node);
    }
    Ok(if all.len() == 1 { all.remove(0) } else { Node::And(all) })
}

fn parse_tests(cond: &Json, regexes: &mut usize) -> Result<Vec<Test>, BadQuery> {
    let Some(ops) = cond.as_object().filter(|o| o.keys().any(|k| k.starts_with('$'))) else {
        return Ok(vec![Test::Eq(expand(cond, regexes)?)]);
    };
    let list = |op: &str, v: &Json, regexes: &mut usize| -> Result<Vec<Alt>, BadQuery> {
        let items = v.as_array().ok_or_else(|| bad(format!("{op} takes an array")))?;
        let mut alts = Vec::new();
        for i in items {
            alts.extend(expand(i, regexes)?);
        }
        Ok(alts)
    };
    let mut tests = Vec::with_capacity(ops.len());
    for (op, v) in ops {
        tests.push(match op.as_str() {
            "$eq" => Test::Eq(expand(v, regexes)?),
            "$ne" => Test::Ne(expand(v, regexes)?),
            "$gt" => Test::Cmp(Ordering::Greater, false, expand(v, regexes)?),
            "$gte" => Test::Cmp(Ordering::Greater, true, expand(v, regexes)?),
            "$lt" => Test::Cmp(Ordering::Less, false, expand(v, regexes)?),
            "$lte" => Test::Cmp(Ordering::Less, true, expand(v, regexes)?),
            "$in" => Test::In(list("$in", v, regexes)?),
            "$nin" => Test::Nin(list("$nin", v, regexes)?),
            "$exists" => Test::Exists(truthy(v)),
            "$regex" => {
                let options = match ops.get("$options") {
                    None => "",
                    Some(Json::String(o)) => o.as_str(),
                    Some(_) => return Err(bad("$options takes a string")),
                };
                let pattern = match v {
                    Json::String(p) => match SLASHED.captures(p) {
                        // `/re/flags` as a pattern, as MongoDB's drivers give it.
                        Some(c) if options.is_empty() => compile(&c[1], &c[2], regexes)?,
                        _ => compile(p, options, regexes)?,
                    },
                    _ => return Err(bad("$regex takes a string")),
                };
                Test::Regex(pattern)
            }
            "$options" if ops.contains_key("$regex") => continue,
            "$options" => return Err(bad("$options goes with $regex")),
            other if other.starts_with('$') => return Err(bad(format!("unsupported operator {other}"))),
            other => return Err(bad(format!("{other:?} mixed with operators in one condition"))),
        });
    }
    Ok(tests)
}

/// Whether the device matches `query` (a JSON object), the device known only from its Inform
/// record (`_registered`, `_lastBoot`, `_lastBootstrap` missing): for tests and fuzzing; the
/// ACS's own routes and presets parse once with [`Query::parse`] and give the lifecycle.
pub fn matches(d: &Device, params: &[CachedParam], query: &Json) -> Result<bool, BadQuery> {
    let life = Lifecycle::default();
    Ok(Query::parse(query)?.matches(&Record { device: d, life: &life, params }))
}

// ---------------------------------------------------------------------------------------------
// Sort, as GenieACS takes `?sort=`.

/// The value of a many-valued field that sorts it: its least ascending, its greatest descending.
fn pick(vals: Vec<Val<'_>>, descending: bool) -> Option<Val<'_>> {
    if descending {
        vals.into_iter().max_by(|x, y| x.sort_cmp(y))
    } else {
        vals.into_iter().min_by(|x, y| x.sort_cmp(y))
    }
}

/// A sort of devices: fields, each ascending or descending, in the order given.
#[derive(Debug, Clone)]
pub struct Sort(Vec<(Field, bool)>);

/// The fields of a JSON object in the order written (serde_json's map sorts them).
struct Ordered(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of field: 1 or -1")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, Json>()? {
                    out.push(kv);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Sort {
    /// From `?sort=` (`{"_lastInform": -1, "InternetGatewayDevice.DeviceInfo.SoftwareVersion": 1}`):
    /// a parameter's name sorts by its value, as GenieACS appends `._value`.
    pub fn parse(text: &str) -> Result<Sort, BadQuery> {
        let Ordered(fields) = serde_json::from_str(text).map_err(|e| bad(format!("sort is not a JSON object: {e}")))?;
        let mut keys = Vec::with_capacity(fields.len());
        for (k, v) in fields {
            let descending = match &v {
                Json::Number(n) if n.as_f64() == Some(1.0) => false,
                Json::Number(n) if n.as_f64() == Some(-1.0) => true,
                Json::String(s) if s == "asc" || s == "ascending" => false,
                Json::String(s) if s == "desc" || s == "descending" => true,
                _ => return Err(bad(format!("sort of {k:?}: 1 (ascending) or -1 (descending), not {v}"))),
            };
            keys.push((Field::of(&k), descending));
        }
        Ok(Sort(keys))
    }

    /// Whether sorting reads the devices' parameters.
    pub fn needs_params(&self) -> bool {
        self.0.iter().any(|(f, _)| f.needs_params())
    }

    /// The order of two devices: MongoDB's (a missing field first when ascending; a field of
    /// many values, `_tags`, by its least value ascending and its greatest descending).
    pub fn cmp(&self, a: &Record<'_>, b: &Record<'_>) -> Ordering {
        self.cmp_full(&a.into(), &b.into())
    }

    /// The same, the devices' [`PathInfo`] seen.
    pub fn cmp_full(&self, a: &FullRecord<'_>, b: &FullRecord<'_>) -> Ordering {
        for (f, descending) in &self.0 {
            let (va, vb) = (f.values(a), f.values(b));
            // A missing field sorts first, as MongoDB's null.
            let o = match (pick(va, *descending), pick(vb, *descending)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => x.sort_cmp(&y),
            };
            let o = if *descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

// ---------------------------------------------------------------------------------------------
// Projections and the device JSON.

/// The paths a projection names (empty: everything).
struct Projection<'a>(HashSet<&'a str>);

/// A leaf's own fields, which a projection may name one by one (`A.B._value`).
const LEAF_FIELDS: [&str; 8] =
    ["_object", "_value", "_type", "_timestamp", "_writable", "_notification", "_accessList", "_attributesTimestamp"];

/// An object's own fields (`_timestamp`: when its children were listed).
const OBJECT_FIELDS: [&str; 6] =
    ["_object", "_writable", "_timestamp", "_notification", "_accessList", "_attributesTimestamp"];

impl<'a> Projection<'a> {
    fn new(paths: &'a [String]) -> Projection<'a> {
        Projection(paths.iter().map(String::as_str).collect())
    }

    /// Whether `path` is named or lies under a named path (`A.B` shows `A.B` and `A.B.C`, not
    /// `A.BC`): one look-up per segment, whatever the projection's length.
    fn wants(&self, path: &str) -> bool {
        self.0.is_empty() || self.0.contains(path) || path.match_indices('.').any(|(i, _)| self.0.contains(&path[..i]))
    }

    /// Which of the fields under `path` are named one by one (`path._value`, ...), when `path`
    /// itself is not wanted.
    fn fields_of<const N: usize>(&self, path: &str, fields: [&'static str; N]) -> Vec<&'static str> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let mut key = String::with_capacity(path.len() + 16);
        fields
            .into_iter()
            .filter(|f| {
                key.clear();
                key.push_str(path);
                key.push('.');
                key.push_str(f);
                self.0.contains(key.as_str())
            })
            .collect()
    }
}

/// Places `leaf` at the path `name` (split at dots) under `root`, creating objects on the way
/// (with GenieACS's `"_object": true` where the projection shows the object whole); a value in
/// the way is replaced by an object. A loop, not a recursion per segment. With `merge`, the
/// fields of `leaf` join those of a node already there (an object's own fields) rather than
/// replace it.
fn insert(root: &mut Map<String, Json>, name: &str, leaf: Map<String, Json>, projection: &Projection<'_>, merge: bool) {
    let mut node = root;
    let mut parts = name.match_indices('.').map(|(i, _)| i).chain([name.len()]).peekable();
    let mut start = 0;
    while let Some(end) = parts.next() {
        let part = &name[start..end];
        if parts.peek().is_none() {
            match node.get_mut(part) {
                Some(Json::Object(there)) if merge => {
                    for (k, v) in leaf {
                        there.entry(k).or_insert(v);
                    }
                }
                _ => drop(node.insert(part.to_string(), Json::Object(leaf))),
            }
            return;
        }
        let entry = node.entry(part).or_insert(Json::Null);
        if !entry.is_object() {
            let mut obj = Map::new();
            if projection.wants(&name[..end]) {
                obj.insert("_object".into(), Json::Bool(true));
            }
            *entry = Json::Object(obj);
        }
        let Some(next) = entry.as_object_mut() else { return };
        node = next;
        start = end + 1;
    }
}

/// The device as GenieACS's NBI shows it, limited to `projection` (empty: everything); the
/// device known only from its Inform record (see [`record_json`]).
pub fn device_json(d: &Device, params: &[CachedParam], projection: &[String]) -> Json {
    let life = Lifecycle::default();
    record_json(&Record { device: d, life: &life, params }, projection)
}

/// The fields of `info` among `fields`, as GenieACS shows them (what is not known is left out).
fn info_fields(info: Option<&PathInfo>, fields: &[&str], leaf: &mut Map<String, Json>) {
    let Some(i) = info else { return };
    for f in fields {
        let v = match *f {
            "_writable" => i.writable.map(Json::from),
            "_timestamp" if i.is_object() => i.listed.map(|t| json!(iso(t))),
            "_notification" => i.notification.map(Json::from),
            "_accessList" => i.access_list.as_ref().map(|l| json!(l)),
            "_attributesTimestamp" => i.attributes_read.map(|t| json!(iso(t))),
            _ => None,
        };
        if let Some(v) = v {
            leaf.insert((*f).into(), v);
        }
    }
}

/// Parameter values as GenieACS shows them: numbers and booleans typed, the rest as reported.
fn typed(ty: &str, value: &str) -> Json {
    match ty {
        "int" | "long" => value.parse::<i64>().map(Json::from).unwrap_or_else(|_| json!(value)),
        "unsignedInt" | "unsignedLong" => value.parse::<u64>().map(Json::from).unwrap_or_else(|_| json!(value)),
        "boolean" => json!(value == "true" || value == "1"),
        // GenieACS keeps dateTime values as dates and prints them as dates (milliseconds, `Z`);
        // a value that is no date stays the text the CPE sent.
        "dateTime" => parse_date(value).map_or_else(|| json!(value), |ms| json!(iso_millis(ms))),
        _ => json!(value),
    }
}

/// The device as GenieACS's NBI shows it, none of its [`PathInfo`] known (see
/// [`full_record_json`]).
pub fn record_json(r: &Record<'_>, projection: &[String]) -> Json {
    full_record_json(&r.into(), projection)
}

/// The device as GenieACS's NBI shows it, limited to `projection` (empty: everything): `_id`,
/// `_deviceId`, `_registered`, `_lastInform`, `_lastBoot`, `_lastBootstrap` (dates as ISO 8601
/// text), `_tags` (when it has any), and its parameters as a tree of objects (`"_object":
/// true`, and when known `_writable` and `_timestamp`, when their children were listed) and
/// leaves (`"_object": false`, `_value`, `_type`, `_timestamp` when read; `_writable`,
/// `_notification`, `_accessList`, `_attributesTimestamp` when known). An object listed with
/// nothing cached below it (an empty table) is shown; so is a parameter listed but never read.
///
/// Paths whose names are over the CWMP codec's limits are left out (and logged): they nest
/// deeper than any client could read, and no CPE can send them any more.
pub fn full_record_json(full: &FullRecord<'_>, projection: &[String]) -> Json {
    let r = &full.record;
    let d = r.device;
    let projection = Projection::new(projection);
    let wanted = |path: &str| projection.wants(path);
    let mut root = Map::new();
    root.insert("_id".into(), json!(d.id));
    let device_id = [
        ("_Manufacturer", &d.manufacturer),
        ("_OUI", &d.oui),
        ("_ProductClass", &d.product_class),
        ("_SerialNumber", &d.serial_number),
    ];
    let shown: Vec<&str> = if wanted("_deviceId") {
        device_id.iter().map(|(k, _)| *k).collect()
    } else {
        projection.fields_of("_deviceId", ["_Manufacturer", "_OUI", "_ProductClass", "_SerialNumber"])
    };
    if !shown.is_empty() {
        let ids: Map<String, Json> =
            device_id.iter().filter(|(k, _)| shown.contains(k)).map(|(k, v)| (k.to_string(), json!(v))).collect();
        root.insert("_deviceId".into(), Json::Object(ids));
    }
    let dates = [
        ("_registered", r.life.registered),
        ("_lastInform", Some(d.last_inform)),
        ("_lastBoot", r.life.last_boot),
        ("_lastBootstrap", r.life.last_bootstrap),
    ];
    for (k, at) in dates {
        if let Some(at) = at.filter(|_| wanted(k)) {
            root.insert(k.into(), json!(iso(at)));
        }
    }
    if wanted("_tags") && !d.tags.is_empty() {
        root.insert("_tags".into(), json!(d.tags));
    }
    let limits = cwmp::Limits::default();
    let mut left_out = 0;
    // A name over the codec's limits, or one that would land on the ACS's own fields (`_id`,
    // `_deviceId`, `_tags`, `_lastInform`: no data model's root starts with `_`).
    let refused = |name: &str| !limits.accepts_name(name) || name.starts_with('_');
    let info: std::collections::HashMap<&str, &PathInfo> = full.info.iter().map(|i| (i.name.as_str(), i)).collect();
    for p in r.params {
        if refused(&p.name) {
            left_out += 1;
            continue;
        }
        let fields = if wanted(&p.name) { LEAF_FIELDS.to_vec() } else { projection.fields_of(&p.name, LEAF_FIELDS) };
        if fields.is_empty() {
            continue;
        }
        let mut leaf = Map::new();
        for f in &fields {
            let v = match *f {
                "_object" => json!(false),
                "_value" => typed(&p.ty, &p.value),
                "_type" => json!(format!("xsd:{}", p.ty)),
                "_timestamp" => json!(iso(p.updated)),
                _ => continue,
            };
            leaf.insert((*f).into(), v);
        }
        info_fields(info.get(p.name.as_str()).copied(), &fields, &mut leaf);
        insert(&mut root, &p.name, leaf, &projection, false);
    }
    // Objects (their own fields, or themselves when nothing is cached below them) and parameters
    // listed but not read.
    let values: HashSet<&str> = r.params.iter().map(|p| p.name.as_str()).collect();
    for i in full.info {
        let path = i.name.strip_suffix('.').unwrap_or(&i.name);
        if path.is_empty() || values.contains(i.name.as_str()) {
            continue;
        }
        if refused(path) {
            left_out += 1;
            continue;
        }
        let own: &[&str] = if i.is_object() { &OBJECT_FIELDS } else { &LEAF_FIELDS };
        let fields: Vec<&str> = if wanted(path) {
            own.to_vec()
        } else if i.is_object() {
            projection.fields_of(path, OBJECT_FIELDS)
        } else {
            projection.fields_of(path, LEAF_FIELDS)
        };
        if fields.is_empty() {
            continue;
        }
        let mut node = Map::new();
        if fields.contains(&"_object") {
            node.insert("_object".into(), json!(i.is_object()));
        }
        info_fields(Some(i), &fields, &mut node);
        insert(&mut root, path, node, &projection, true);
    }
    if left_out > 0 {
        tracing::warn!(
            device = %d.id,
            "{left_out} cached parameter(s) left out of the device JSON: names over {} bytes or {} segments, or \
             starting with '_'",
            limits.max_name_bytes,
            limits.max_name_segments
        );
    }
    Json::Object(root)
}

#[cfg(test)]
mod tests {

    #[test]
    fn what_every_match_has_is_told_and_nothing_uncertain() {
        use crate::store::Need;
        let need = |q: serde_json::Value| Query::parse(&q).expect("query").necessary();
        assert_eq!(
            need(serde_json::json!({"_tags": "gold", "Device.X": "abc", "_lastInform": {"$gt": 5}})),
            [Need::Value { name: "Device.X".into(), value: "abc".into() }, Need::Tag("gold".into())]
        );
        assert_eq!(
            need(serde_json::json!({"$and": [{"Device.X._value": "abc"}, {"$or": [{"_tags": "a"}, {"_tags": "b"}]}]})),
            [Need::Value { name: "Device.X".into(), value: "abc".into() }],
            "inside $and yes, inside $or no"
        );
        // Strings that also stand for a number, a date or a pattern; other operators.
        for q in [
            serde_json::json!({"Device.X": "5"}),
            serde_json::json!({"Device.X": "2024-01-01T00:00:00Z"}),
            serde_json::json!({"Device.X": "ab*"}),
            serde_json::json!({"_tags": "g*"}),
            serde_json::json!({"Device.X": {"$ne": "abc"}}),
            serde_json::json!({"$nor": [{"_tags": "gold"}]}),
        ] {
            assert_eq!(need(q.clone()), [], "{q}");
        }
    }
    use super::*;

    fn dev() -> (Device, Vec<CachedParam>) {
        let d = Device {
            id: "00A0B1-Host-1".into(),
            manufacturer: "m".into(),
            oui: "00A0B1".into(),
            product_class: "Host".into(),
            serial_number: "1".into(),
            cr_url: String::new(),
            cr_username: String::new(),
            cr_password: String::new(),
            last_inform: 1_795_302_534,
            tags: vec!["lab".into()],
        };
        let p = vec![
            CachedParam {
                name: "Device.DeviceInfo.UpTime".into(),
                ty: "unsignedInt".into(),
                value: "300".into(),
                updated: 1,
            },
            CachedParam {
                name: "Device.DeviceInfo.SoftwareVersion".into(),
                ty: "string".into(),
                value: "0.1.0".into(),
                updated: 1,
            },
        ];
        (d, p)
    }

    #[test]
    fn queries() {
        let (d, p) = dev();
        let m = |q: Json| matches(&d, &p, &q).expect("valid query");
        assert!(m(json!({"_id": "00A0B1-Host-1"})));
        assert!(!m(json!({"_id": "other"})));
        assert!(m(json!({"_tags": "lab"})));
        assert!(m(json!({"Device.DeviceInfo.UpTime": {"$gt": 100, "$lte": 300}})));
        assert!(!m(json!({"Device.DeviceInfo.UpTime._value": {"$lt": 100}})));
        assert!(m(json!({"Device.DeviceInfo.SoftwareVersion": "0.1.0"})));
        assert!(m(json!({"_lastInform": {"$gt": "2026-11-21T00:00:00Z"}})));
        assert!(!m(json!({"_lastInform": {"$gt": "2026-11-22T00:00:00Z"}})));
        assert!(m(json!({"$or": [{"_id": "x"}, {"_deviceId._OUI": "00A0B1"}]})));
        assert!(m(json!({"Device.Nope": {"$exists": false}})));
        assert!(m(json!({"_id": {"$in": ["a", "00A0B1-Host-1"]}})));
        assert!(!m(json!({"_id": {"$regex": "x"}})));
        assert!(m(json!({"_id": {"$regex": "^00a0b1-", "$options": "i"}})));
        assert!(matches(&d, &p, &json!({"_id": {"$where": "x"}})).is_err());
        assert!(matches(&d, &p, &json!([1])).is_err());
        let j = device_json(&d, &p, &["Device.DeviceInfo.UpTime".to_string()]);
        assert_eq!(j["Device"]["DeviceInfo"]["UpTime"]["_value"], json!(300));
        assert!(j["Device"]["DeviceInfo"].get("SoftwareVersion").is_none());
        assert!(j.get("_deviceId").is_none());
        assert_eq!(device_json(&d, &p, &[])["_lastInform"], json!("2026-11-21T23:08:54.000Z"));
    }

    fn nested(levels: usize) -> Json {
        (0..levels).fold(json!({"_id": "00A0B1-Host-1"}), |q, _| json!({"$and": [q], "$or": [{"_tags": "lab"}]}))
    }

    #[test]
    fn and_or_nest_at_most_max_nesting_deep() {
        let (d, p) = dev();
        assert_eq!(matches(&d, &p, &nested(MAX_NESTING)), Ok(true));
        let err = matches(&d, &p, &nested(MAX_NESTING + 1)).expect_err("too deep");
        assert!(err.0.contains("nest at most 16 deep"), "{err}");
    }

    #[test]
    fn projections_show_named_paths_and_what_lies_under_them() {
        let (d, mut p) = dev();
        p.push(CachedParam { name: "Device.DeviceInfoX.A".into(), ty: "string".into(), value: "x".into(), updated: 1 });
        let j = device_json(&d, &p, &["Device.DeviceInfo".to_string(), "_tags".to_string()]);
        assert_eq!(j["Device"]["DeviceInfo"]["SoftwareVersion"]["_value"], json!("0.1.0"));
        assert!(j["Device"].get("DeviceInfoX").is_none(), "a prefix that is not a whole segment shows nothing");
        assert_eq!(j["_tags"], json!(["lab"]));
        assert!(j.get("_lastInform").is_none());
        let all = device_json(&d, &p, &[]);
        assert_eq!(all["Device"]["DeviceInfoX"]["A"]["_value"], json!("x"));
        assert!(device_json(&d, &p, &["Nothing.Here".to_string()]).get("Device").is_none());
    }

    fn depth(j: &Json) -> usize {
        let mut deepest = 0;
        let mut todo = vec![(j, 0)];
        while let Some((v, n)) = todo.pop() {
            deepest = deepest.max(n);
            if let Json::Object(m) = v {
                todo.extend(m.values().map(|c| (c, n + 1)));
            }
        }
        deepest
    }

    #[test]
    fn names_over_the_codec_limits_are_left_out_of_the_device_json() {
        let (d, mut p) = dev();
        let deep = "A.".repeat(19_999) + "A";
        let at_limit = vec!["B"; cwmp::MAX_NAME_SEGMENTS].join(".");
        for name in [deep.clone(), at_limit.clone(), format!("C.{}", "x".repeat(cwmp::MAX_NAME_BYTES))] {
            p.push(CachedParam { name, ty: "string".into(), value: "v".into(), updated: 1 });
        }
        for projection in [vec![], vec!["A".to_string(), "B".to_string(), "C".to_string()]] {
            let j = device_json(&d, &p, &projection);
            assert!(j.get("A").is_none() && j.get("C").is_none(), "over the limits: left out");
            let leaf = (0..cwmp::MAX_NAME_SEGMENTS).fold(&j, |v, _| &v["B"]);
            assert_eq!(leaf["_value"], json!("v"), "at the limit: shown");
            // Root, 32 segments, then the leaf's own fields.
            assert_eq!(depth(&j), cwmp::MAX_NAME_SEGMENTS + 1);
        }
        assert_eq!(device_json(&d, &p, &[])["Device"]["DeviceInfo"]["UpTime"]["_value"], json!(300));
    }

    fn ms(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
        ((days_from_civil(y, mo, d) * 86_400) + h * 3600 + mi * 60 + s) * 1000
    }

    #[test]
    fn dates_in_the_forms_genieacs_reads() {
        let t = ms(2017, 12, 11, 13, 16, 23);
        for text in [
            "2017-12-11 13:16:23 +0000",
            "2017-12-11T13:16:23Z",
            "2017-12-11T13:16:23.000Z",
            "2017-12-11T14:16:23+01:00",
            "2017-12-11T12:16:23-0100",
            "2017-12-11 13:16:23",
            "2017/12/11 13:16:23 GMT",
            "Mon, 11 Dec 2017 13:16:23 GMT",
            "11 Dec 2017 13:16:23 +0000",
            "Mon Dec 11 2017 13:16:23 GMT+0000 (Coordinated Universal Time)",
            "Mon Dec 11 2017 14:16:23 GMT+0100 (Central European Standard Time)",
        ] {
            assert_eq!(parse_date(text), Some(t), "{text}");
        }
        assert_eq!(parse_date("2017-12-11"), Some(ms(2017, 12, 11, 0, 0, 0)));
        assert_eq!(parse_date("2017-12-11T13:16:23.5Z"), Some(t + 500));
        assert_eq!(parse_date("2016-02-29"), Some(ms(2016, 2, 29, 0, 0, 0)));
        for not in
            ["2017-02-29", "2017-13-01", "2017-12-11T25:00:00Z", "hello world", "0.1.0", "12345678", "2017-12-11 +2500"]
        {
            assert_eq!(parse_date(not), None, "{not}");
        }
    }

    #[test]
    fn numbers_in_strings_as_javascript_reads_them() {
        for (s, n) in [("300", 300.0), (" 1e3 ", 1000.0), ("-2.5", -2.5), (".5", 0.5), ("5.", 5.0), ("+7", 7.0)] {
            assert_eq!(js_number(s), Some(n), "{s}");
        }
        for s in ["", "0x10", "1e", "1.2.3", "12abc", "inf", "NaN", "."] {
            assert_eq!(js_number(s), None, "{s}");
        }
    }

    fn rich() -> (Device, Lifecycle, Vec<CachedParam>) {
        let (mut d, mut p) = dev();
        d.tags = vec!["lab".into(), "west".into()];
        let life = Lifecycle { registered: Some(1_700_000_000), last_boot: Some(1_795_302_000), last_bootstrap: None };
        let param = |name: &str, ty: &str, value: &str| CachedParam {
            name: name.into(),
            ty: ty.into(),
            value: value.into(),
            updated: 1_795_302_534,
        };
        p.push(param("Device.DeviceInfo.FirstUseDate", "dateTime", "2026-11-20T10:00:00Z"));
        p.push(param("Device.Ethernet.Interface.1.MACAddress", "string", "20:2B:C1:E0:06:65"));
        p.push(param("Device.WiFi.SSID.1.Enable", "boolean", "true"));
        p.push(param("Device.Text.Number", "string", "42"));
        (d, life, p)
    }

    #[test]
    fn the_query_language_as_genieacs_expands_it() {
        let (d, life, p) = rich();
        let r = Record { device: &d, life: &life, params: &p };
        let m = |q: Json| Query::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}")).matches(&r);
        // Dates: GenieACS's example, ISO text, milliseconds; all four of the device's dates.
        assert!(m(json!({"_lastInform": {"$gt": "2017-12-11 13:16:23 +0000"}})));
        assert!(!m(json!({"_lastInform": {"$lt": "2017-12-11 13:16:23 +0000"}})));
        assert!(m(json!({"_lastInform": {"$gte": "2026-11-21T23:08:54Z", "$lte": "2026-11-21T23:08:54.000Z"}})));
        assert!(m(json!({"_lastInform": "Sat, 21 Nov 2026 23:08:54 GMT"})));
        assert!(m(json!({"_lastInform": {"$lt": 1_795_302_535_000_i64}})));
        assert!(m(json!({"_registered": {"$lt": "2024-01-01"}})));
        assert!(m(json!({"_lastBoot": {"$gt": "2026-11-21"}, "_lastBootstrap": {"$exists": false}})));
        assert!(!m(json!({"_lastBootstrap": {"$lt": "2030-01-01"}})), "a missing date compares with nothing");
        assert!(m(json!({"_lastBootstrap": null})), "null: missing");
        // A dateTime parameter compares as a date, a string as text.
        assert!(m(json!({"Device.DeviceInfo.FirstUseDate": {"$lt": "2026-11-20 11:00:00 +0000"}})));
        assert!(m(json!({"Device.DeviceInfo.FirstUseDate._value": "2026-11-20T11:00:00+01:00"})));
        // Numbers: a numeric string is also a number; text that holds digits stays text.
        assert!(m(json!({"Device.DeviceInfo.UpTime": "300"})));
        assert!(m(json!({"Device.DeviceInfo.UpTime": {"$gt": "99"}})), "a number, not text order");
        assert!(!m(json!({"Device.Text.Number": 42})), "text is not a number (MongoDB)");
        assert!(m(json!({"Device.Text.Number": "42"})));
        assert!(m(json!({"Device.WiFi.SSID.1.Enable": true})));
        assert!(!m(json!({"Device.WiFi.SSID.1.Enable": "true"})));
        // Tags: any of them; $ne none of them.
        assert!(m(json!({"_tags": "west"})));
        assert!(m(json!({"_tags": {"$in": ["x", "west"]}})));
        assert!(!m(json!({"_tags": {"$ne": "lab"}})));
        assert!(m(json!({"_tags": {"$nin": ["x", "y"]}})));
        assert!(m(json!({"_tags": {"$regex": "^we"}})));
        // Regular expressions, globs, /re/ strings.
        assert!(m(json!({"Device.Ethernet.Interface.1.MACAddress": "20:2B:C1:E0:06:65"})));
        assert!(m(json!({"Device.Ethernet.Interface.1.MACAddress": "20:2B:C1*"})));
        assert!(m(json!({"Device.Ethernet.Interface.1.MACAddress": "*06:65"})));
        assert!(m(json!({"Device.Ethernet.Interface.1.MACAddress": "20:2B*06:65"})));
        assert!(!m(json!({"Device.Ethernet.Interface.1.MACAddress": "20:2B*06"})));
        assert!(m(json!({"Device.Ethernet.Interface.1.MACAddress": "/^20:2b/i"})));
        assert!(m(json!({"_id": {"$regex": "/host/i"}})));
        assert!(!m(json!({"_id": {"$regex": "host"}})));
        assert!(m(json!({"_deviceId._SerialNumber": {"$regex": "^1$"}, "_deviceId._OUI": "00A0B1"})));
        // Types and read times of parameters.
        assert!(m(json!({"Device.DeviceInfo.UpTime._type": "xsd:unsignedInt"})));
        assert!(m(json!({"Device.DeviceInfo.SoftwareVersion._timestamp": {"$lt": "2000-01-01"}})));
        // Text before 1984 is no date to GenieACS.
        assert!(!m(json!({"Device.DeviceInfo.SoftwareVersion._timestamp": {"$lt": "1983-01-01"}})));
        // $nor, $or, $and.
        assert!(m(json!({"$nor": [{"_id": "x"}, {"_tags": "gone"}]})));
        assert!(m(json!({"$and": [{"_tags": "lab"}, {"$or": [{"_id": "x"}, {"_tags": "west"}]}]})));
        assert!(!m(json!({"$nor": [{"_tags": "lab"}]})));
    }

    #[test]
    fn bad_queries_are_refused_with_the_reason() {
        let (d, life, p) = rich();
        let _ = Record { device: &d, life: &life, params: &p };
        let refused = |q: Json| Query::parse(&q).expect_err(&q.to_string()).0;
        assert!(refused(json!({"_id": {"$where": "1"}})).contains("unsupported operator $where"));
        assert!(refused(json!({"$text": {}})).contains("unsupported operator $text"));
        assert!(refused(json!({"$and": []})).contains("non-empty array"));
        assert!(refused(json!({"_id": {"$in": "x"}})).contains("$in takes an array"));
        assert!(refused(json!({"_id": {"$regex": "("}})).contains("regular expression"));
        assert!(refused(json!({"_id": {"$regex": "a", "$options": "q"}})).contains("option"));
        assert!(refused(json!({"_id": {"$options": "i"}})).contains("$options goes with $regex"));
        assert!(refused(json!({"_id": {"$eq": "a", "b": 1}})).contains("mixed with operators"));
        let long = "a".repeat(MAX_REGEX_BYTES + 1);
        assert!(refused(json!({"_id": {"$regex": long}})).contains("at most 1024 bytes"));
        // A pattern short enough whose automaton is too big.
        assert!(refused(json!({"_id": {"$regex": "\\w{200}\\w{200}\\w{200}"}})).contains("regular expression"));
        let many: Vec<Json> = (0..=MAX_REGEXES).map(|i| json!({"_id": format!("a{i}*")})).collect();
        assert!(refused(json!({"$or": many})).contains("at most 32 regular expressions"));
    }

    #[test]
    fn sorts_as_mongodb_orders() {
        let (d, life, p) = rich();
        let mut d2 = d.clone();
        d2.id = "b".into();
        d2.last_inform -= 10;
        d2.tags = vec![];
        let p2: Vec<CachedParam> = p.iter().filter(|x| !x.name.ends_with("UpTime")).cloned().collect();
        let life2 = Lifecycle::default();
        let a = Record { device: &d, life: &life, params: &p };
        let b = Record { device: &d2, life: &life2, params: &p2 };
        let sort = |s: &str| Sort::parse(s).expect(s);
        assert_eq!(sort(r#"{"_lastInform": 1}"#).cmp(&a, &b), Ordering::Greater);
        assert_eq!(sort(r#"{"_lastInform": -1}"#).cmp(&a, &b), Ordering::Less);
        assert_eq!(sort(r#"{"Device.DeviceInfo.UpTime": 1}"#).cmp(&a, &b), Ordering::Greater, "missing first");
        assert_eq!(sort(r#"{"_registered": "desc"}"#).cmp(&a, &b), Ordering::Less);
        // Keys in the order written: the first decides.
        assert_eq!(sort(r#"{"_deviceId._OUI": 1, "_id": -1}"#).cmp(&a, &b), Ordering::Greater);
        assert_eq!(sort(r#"{"_tags": 1}"#).cmp(&a, &b), Ordering::Greater);
        assert!(sort(r#"{"Device.DeviceInfo.UpTime": 1}"#).needs_params());
        assert!(!sort(r#"{"_id": 1}"#).needs_params());
        for bad in [r#"{"_id": 2}"#, r#"[1]"#, r#"{"_id": "up"}"#, "{"] {
            assert!(Sort::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_device_json_has_genieacs_fields_objects_and_leaf_projections() {
        let (d, life, p) = rich();
        let r = Record { device: &d, life: &life, params: &p };
        let all = record_json(&r, &[]);
        assert_eq!(all["_registered"], json!("2023-11-14T22:13:20.000Z"));
        assert_eq!(all["_lastBoot"], json!(iso(1_795_302_000)));
        assert!(all.get("_lastBootstrap").is_none(), "never bootstrapped: no field");
        assert_eq!(all["Device"]["_object"], json!(true));
        assert_eq!(all["Device"]["DeviceInfo"]["_object"], json!(true));
        assert_eq!(all["Device"]["DeviceInfo"]["UpTime"]["_type"], json!("xsd:unsignedInt"));
        // Dates as GenieACS prints them: milliseconds and `Z`, also a dateTime parameter's value.
        let first_use = &all["Device"]["DeviceInfo"]["FirstUseDate"];
        assert_eq!(first_use["_value"], json!("2026-11-20T10:00:00.000Z"));
        assert_eq!(first_use["_timestamp"], json!("2026-11-21T23:08:54.000Z"));
        assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(typed("dateTime", "0001-01-01T00:00:00Z"), json!("0001-01-01T00:00:00.000Z"), "the unknown time");
        assert_eq!(typed("dateTime", "soon"), json!("soon"), "no date: the text as sent");
        // An object projected: its subtree, its ancestors bare.
        let info = record_json(&r, &["Device.DeviceInfo".to_string()]);
        assert!(info["Device"].get("_object").is_none());
        assert_eq!(info["Device"]["DeviceInfo"]["_object"], json!(true));
        assert_eq!(info["Device"]["DeviceInfo"]["UpTime"]["_value"], json!(300));
        assert!(info.get("_registered").is_none() && info.get("_deviceId").is_none());
        // A leaf's field projected alone.
        let v =
            record_json(&r, &["Device.DeviceInfo.UpTime._value".to_string(), "_deviceId._SerialNumber".to_string()]);
        assert_eq!(v["Device"]["DeviceInfo"]["UpTime"], json!({"_value": 300}));
        assert_eq!(v["_deviceId"], json!({"_SerialNumber": "1"}));
    }

    /// What GetParameterNames and GetParameterAttributes told of `rich()`'s device.
    fn told() -> Vec<PathInfo> {
        let info = |name: &str, writable: Option<bool>, listed: Option<i64>| PathInfo {
            name: name.into(),
            writable,
            listed,
            ..PathInfo::default()
        };
        let attrs = |name: &str, notification: u32, access_list: &[&str]| PathInfo {
            name: name.into(),
            writable: Some(false),
            notification: Some(notification),
            access_list: Some(access_list.iter().map(|s| s.to_string()).collect()),
            attributes_read: Some(1_795_302_600),
            ..PathInfo::default()
        };
        let mut v = vec![
            info("Device.DeviceInfo.", Some(false), Some(1_795_302_500)),
            attrs("Device.DeviceInfo.UpTime", 2, &[]),
            info("Device.DeviceInfo.ProvisioningCode", Some(true), None),
            info("Device.NAT.", Some(false), None),
            info("Device.NAT.PortMapping.", Some(true), Some(1_795_302_510)),
            info("Device.WiFi.SSID.1.Enable", Some(true), None),
            attrs("Device.ManagementServer.URL", 0, &["Subscriber"]),
        ];
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    #[test]
    fn what_cpes_tell_besides_values_is_shown_as_genieacs_shows_it() {
        let (d, life, p) = rich();
        let info = told();
        let full = Record { device: &d, life: &life, params: &p }.with_info(&info);
        let all = full_record_json(&full, &[]);
        let dev = &all["Device"];
        // An object listed: `_object`, `_writable`, `_timestamp` (when its children were listed).
        assert_eq!(dev["DeviceInfo"]["_object"], json!(true));
        assert_eq!(dev["DeviceInfo"]["_writable"], json!(false));
        assert_eq!(dev["DeviceInfo"]["_timestamp"], json!(iso(1_795_302_500)));
        // A leaf read and its attributes read.
        assert_eq!(
            dev["DeviceInfo"]["UpTime"],
            json!({"_object": false, "_value": 300, "_type": "xsd:unsignedInt", "_timestamp": iso(1),
                   "_writable": false, "_notification": 2, "_accessList": [],
                   "_attributesTimestamp": iso(1_795_302_600)})
        );
        assert_eq!(dev["WiFi"]["SSID"]["1"]["Enable"]["_writable"], json!(true));
        // Listed, never read: shown with what is known; an empty table listed: shown.
        assert_eq!(dev["DeviceInfo"]["ProvisioningCode"], json!({"_object": false, "_writable": true}));
        assert_eq!(
            dev["NAT"],
            json!({"_object": true, "_writable": false,
                   "PortMapping": {"_object": true, "_writable": true, "_timestamp": iso(1_795_302_510)}})
        );
        assert_eq!(
            dev["ManagementServer"]["URL"],
            json!({"_object": false, "_writable": false, "_notification": 0, "_accessList": ["Subscriber"],
                   "_attributesTimestamp": iso(1_795_302_600)})
        );
        // Unknown stays unknown: no `_writable` where nothing was listed, none at all without info.
        assert!(dev["DeviceInfo"]["SoftwareVersion"].get("_writable").is_none());
        assert!(dev.get("_writable").is_none() && dev.get("_timestamp").is_none());
        let bare = record_json(&Record { device: &d, life: &life, params: &p }, &[]);
        assert_eq!(bare["Device"]["DeviceInfo"]["UpTime"]["_object"], json!(false));
        assert!(bare["Device"]["DeviceInfo"]["UpTime"].get("_writable").is_none());
        assert!(bare["Device"].get("NAT").is_none());

        // Projections: each field alone, an object's fields alone, a subtree whole.
        let j = |paths: &[&str]| full_record_json(&full, &paths.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            j(&["Device.DeviceInfo.UpTime._writable", "Device.DeviceInfo.UpTime._notification"]),
            json!({"_id": d.id, "Device": {"DeviceInfo": {"UpTime": {"_writable": false, "_notification": 2}}}})
        );
        assert_eq!(
            j(&["Device.NAT.PortMapping._timestamp", "Device.DeviceInfo._writable", "Device.DeviceInfo._object"]),
            json!({"_id": d.id, "Device": {"NAT": {"PortMapping": {"_timestamp": iso(1_795_302_510)}},
                                            "DeviceInfo": {"_writable": false, "_object": true}}})
        );
        assert_eq!(
            j(&["Device.ManagementServer.URL._accessList"])["Device"]["ManagementServer"]["URL"],
            json!({"_accessList": ["Subscriber"]})
        );
        let nat = j(&["Device.NAT"]);
        assert_eq!(nat["Device"]["NAT"], dev["NAT"]);
        assert!(nat["Device"].get("_object").is_none(), "an ancestor of what is projected is bare");
    }

    #[test]
    fn what_cpes_tell_besides_values_is_queried_as_genieacs_queries_it() {
        let (d, life, p) = rich();
        let info = told();
        let r = Record { device: &d, life: &life, params: &p };
        let full = r.with_info(&info);
        let m = |q: Json| Query::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}")).matches_full(&full);
        assert!(m(json!({"Device.WiFi.SSID.1.Enable._writable": true})));
        assert!(!m(json!({"Device.DeviceInfo.UpTime._writable": true})));
        assert!(m(json!({"Device.DeviceInfo.UpTime._writable": false})));
        assert!(m(json!({"Device.NAT.PortMapping._writable": true, "Device.NAT._writable": false})));
        assert!(m(json!({"Device.DeviceInfo.SoftwareVersion._writable": {"$exists": false}})), "never listed");
        assert!(!m(json!({"Device.DeviceInfo.SoftwareVersion._writable": false})), "unknown is not false");
        // `_object`: listed as one, or holding cached paths; a parameter read or listed is none.
        assert!(m(json!({"Device.NAT.PortMapping._object": true, "Device._object": true})));
        assert!(m(json!({"Device.WiFi.SSID._object": true})), "an object by what lies below it");
        assert!(m(json!({"Device.DeviceInfo.UpTime._object": false})));
        assert!(m(json!({"Device.DeviceInfo.ProvisioningCode._object": false})));
        assert!(m(json!({"Device.Nothing._object": {"$exists": false}})));
        assert!(!m(json!({"Device.Device._object": true})), "a path prefix is not an object below");
        // Attributes: numbers, each entry of the access list, the time they were read.
        assert!(m(json!({"Device.DeviceInfo.UpTime._notification": 2})));
        assert!(m(json!({"Device.DeviceInfo.UpTime._notification": {"$gte": "1"}})));
        assert!(m(json!({"Device.ManagementServer.URL._notification": {"$ne": 2}})));
        assert!(m(json!({"Device.ManagementServer.URL._accessList": "Subscriber"})));
        assert!(!m(json!({"Device.ManagementServer.URL._accessList": "Other"})));
        assert!(m(json!({"Device.DeviceInfo.UpTime._attributesTimestamp": {"$gt": "2026-11-21"}})));
        // An object's `_timestamp`: when its children were listed; a leaf's: when it was read.
        assert!(m(json!({"Device.NAT.PortMapping._timestamp": {"$lt": "2026-11-21T23:08:31Z"}})));
        assert!(m(json!({"Device.DeviceInfo.FirstUseDate._timestamp": iso(1_795_302_534)})));
        assert!(!m(json!({"Device.NAT._timestamp": {"$exists": true}})), "named by its parent only");
        // Queries reading these load the cache; without the info nothing of it is known.
        assert!(Query::parse(&json!({"A.B._writable": true})).expect("query").needs_params());
        assert!(!Query::parse(&json!({"Device.WiFi.SSID.1.Enable._writable": true})).expect("query").matches(&r));
        // A sort by writability: unknown first, then false, then true.
        let none: Vec<PathInfo> = vec![];
        let sort = Sort::parse(r#"{"Device.DeviceInfo.UpTime._writable": 1}"#).expect("sort");
        assert_eq!(sort.cmp_full(&r.with_info(&none), &full), Ordering::Less);
    }
}
