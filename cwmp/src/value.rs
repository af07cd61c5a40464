//! Typed parameter values (the xsd types of TR-069 A.2.1) and the dateTime lexical form.

use serde::{Deserialize, Serialize};

/// A parameter value with its xsd type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase")]
pub enum Value {
    /// `xsd:string`, also any value sent without `xsi:type` or with a type we do not know.
    String(String),
    /// `xsd:int`
    Int(i32),
    /// `xsd:unsignedInt`
    UnsignedInt(u32),
    /// `xsd:long`
    Long(i64),
    /// `xsd:unsignedLong`
    UnsignedLong(u64),
    /// `xsd:boolean`
    Boolean(bool),
    /// `xsd:dateTime`
    DateTime(DateTime),
    /// `xsd:base64Binary`, kept in its (validated) lexical form.
    Base64(String),
    /// `xsd:hexBinary`, kept in its (validated) lexical form.
    HexBinary(String),
    /// `xsd:decimal`, kept in its (validated) lexical form.
    Decimal(String),
}

/// The xsd type names [`Value`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum XsdType {
    /// string
    String,
    /// int
    Int,
    /// unsignedInt
    UnsignedInt,
    /// long
    Long,
    /// unsignedLong
    UnsignedLong,
    /// boolean
    Boolean,
    /// dateTime
    DateTime,
    /// base64Binary
    Base64,
    /// hexBinary
    HexBinary,
    /// decimal
    Decimal,
}

impl XsdType {
    /// The `xsi:type` value we write.
    pub fn qname(self) -> &'static str {
        match self {
            XsdType::String => "xsd:string",
            XsdType::Int => "xsd:int",
            XsdType::UnsignedInt => "xsd:unsignedInt",
            XsdType::Long => "xsd:long",
            XsdType::UnsignedLong => "xsd:unsignedLong",
            XsdType::Boolean => "xsd:boolean",
            XsdType::DateTime => "xsd:dateTime",
            XsdType::Base64 => "xsd:base64Binary",
            XsdType::HexBinary => "xsd:hexBinary",
            XsdType::Decimal => "xsd:decimal",
        }
    }
    /// Recognises the local part of an `xsi:type` (tolerates `base64`, the soap-enc name).
    pub fn from_local(name: &str) -> Option<XsdType> {
        Some(match name {
            "string" => XsdType::String,
            "int" => XsdType::Int,
            "unsignedInt" => XsdType::UnsignedInt,
            "long" => XsdType::Long,
            "unsignedLong" => XsdType::UnsignedLong,
            "boolean" => XsdType::Boolean,
            "dateTime" => XsdType::DateTime,
            "base64Binary" | "base64" => XsdType::Base64,
            "hexBinary" => XsdType::HexBinary,
            "decimal" => XsdType::Decimal,
            _ => return None,
        })
    }
}

/// Why a lexical form was refused for a type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {ty:?}")]
pub struct ValueError {
    /// The type asked for.
    pub ty: XsdType,
    /// The text refused (shortened).
    pub value: String,
}

impl Value {
    /// The value's xsd type.
    pub fn xsd_type(&self) -> XsdType {
        match self {
            Value::String(_) => XsdType::String,
            Value::Int(_) => XsdType::Int,
            Value::UnsignedInt(_) => XsdType::UnsignedInt,
            Value::Long(_) => XsdType::Long,
            Value::UnsignedLong(_) => XsdType::UnsignedLong,
            Value::Boolean(_) => XsdType::Boolean,
            Value::DateTime(_) => XsdType::DateTime,
            Value::Base64(_) => XsdType::Base64,
            Value::HexBinary(_) => XsdType::HexBinary,
            Value::Decimal(_) => XsdType::Decimal,
        }
    }

    /// Parses `text` as a value of type `ty`. Strings are kept exactly; other types are trimmed.
    pub fn parse(ty: XsdType, text: &str) -> Result<Value, ValueError> {
        let t = text.trim();
        let err = || ValueError { ty, value: t.chars().take(64).collect() };
        Ok(match ty {
            XsdType::String => Value::String(text.to_string()),
            XsdType::Int => Value::Int(t.parse().map_err(|_| err())?),
            XsdType::UnsignedInt => Value::UnsignedInt(t.parse().map_err(|_| err())?),
            XsdType::Long => Value::Long(t.parse().map_err(|_| err())?),
            XsdType::UnsignedLong => Value::UnsignedLong(t.parse().map_err(|_| err())?),
            XsdType::Boolean => Value::Boolean(crate::xml::parse_bool(t).ok_or_else(err)?),
            XsdType::DateTime => Value::DateTime(DateTime::parse(t).ok_or_else(err)?),
            XsdType::Base64 => {
                if !is_base64(t) {
                    return Err(err());
                }
                Value::Base64(t.to_string())
            }
            XsdType::HexBinary => {
                if t.len() % 2 != 0 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err());
                }
                Value::HexBinary(t.to_string())
            }
            XsdType::Decimal => {
                if !is_decimal(t) {
                    return Err(err());
                }
                Value::Decimal(t.to_string())
            }
        })
    }

    /// The lexical form written on the wire.
    pub fn to_lexical(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Value::String(s) | Value::Base64(s) | Value::HexBinary(s) | Value::Decimal(s) => Cow::Borrowed(s),
            Value::DateTime(d) => Cow::Borrowed(d.as_str()),
            Value::Int(v) => Cow::Owned(v.to_string()),
            Value::UnsignedInt(v) => Cow::Owned(v.to_string()),
            Value::Long(v) => Cow::Owned(v.to_string()),
            Value::UnsignedLong(v) => Cow::Owned(v.to_string()),
            Value::Boolean(v) => Cow::Borrowed(if *v { "true" } else { "false" }),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_lexical())
    }
}

fn is_base64(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.len() % 4 != 0 {
        return false;
    }
    let pad = compact.iter().rev().take_while(|&&b| b == b'=').count();
    pad <= 2 && compact[..compact.len() - pad].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    (!int.is_empty() || !frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// An `xsd:dateTime` in its validated lexical form (TR-069 allows a missing time zone, and uses
/// `0001-01-01T00:00:00Z` for "unknown").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct DateTime(String);

impl From<DateTime> for String {
    fn from(d: DateTime) -> String {
        d.0
    }
}

impl TryFrom<String> for DateTime {
    type Error = String;
    fn try_from(s: String) -> Result<DateTime, String> {
        DateTime::parse(&s).ok_or_else(|| format!("{s:?} is not an xsd:dateTime"))
    }
}

impl DateTime {
    /// The "unknown time" value.
    pub fn unknown() -> DateTime {
        DateTime("0001-01-01T00:00:00Z".to_string())
    }

    /// Validates `YYYY-MM-DDThh:mm:ss[.f+][Z|(+|-)hh:mm]`.
    pub fn parse(s: &str) -> Option<DateTime> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
        if b.len() < 19
            || !digits(0..4)
            || b[4] != b'-'
            || !digits(5..7)
            || b[7] != b'-'
            || !digits(8..10)
            || b[10] != b'T'
            || !digits(11..13)
            || b[13] != b':'
            || !digits(14..16)
            || b[16] != b':'
            || !digits(17..19)
        {
            return None;
        }
        let (month, day) = (num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 24 || min > 59 || sec > 60 {
            return None;
        }
        let mut rest = &s[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        let tz_ok = match rest {
            "" | "Z" => true,
            tz => {
                let t = tz.as_bytes();
                t.len() == 6
                    && (t[0] == b'+' || t[0] == b'-')
                    && t[1..3].iter().all(u8::is_ascii_digit)
                    && t[3] == b':'
                    && t[4..6].iter().all(u8::is_ascii_digit)
            }
        };
        tz_ok.then(|| DateTime(s.to_string()))
    }

    /// The UTC time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        DateTime(format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60))
    }

    /// The lexical form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Seconds since the Unix epoch (fractions dropped, the offset applied); `None` for the
    /// "unknown time" (year 1) and for times TR-069 uses as relative (before 1971).
    pub fn to_unix(&self) -> Option<i64> {
        let s = self.0.as_str();
        let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
        let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        if y < 1971 {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let yy = if m <= 2 { y - 1 } else { y };
        let era = yy.div_euclid(400);
        let yoe = yy - era * 400;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let mut secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
        let tail = s.get(19..).unwrap_or("");
        let tz = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
        if let Some(sign) = tz.chars().next().filter(|c| *c == '+' || *c == '-') {
            let oh: i64 = tz.get(1..3)?.parse().ok()?;
            let om: i64 = tz.get(4..6)?.parse().ok()?;
            let off = oh * 3600 + om * 60;
            secs += if sign == '+' { -off } else { off };
        }
        Some(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_to_unix_and_back() {
        for secs in [31_536_000, 1_700_000_000, 1_795_312_066, 4_102_444_800] {
            assert_eq!(DateTime::from_unix(secs).to_unix(), Some(secs));
        }
        let t = DateTime::parse("2026-11-22T03:00:00.250+01:00").expect("parse");
        assert_eq!(t.to_unix(), DateTime::parse("2026-11-22T02:00:00Z").and_then(|d| d.to_unix()));
        assert_eq!(DateTime::unknown().to_unix(), None);
    }

    #[test]
    fn lexical_forms() {
        assert_eq!(Value::parse(XsdType::Int, " -5 ").ok(), Some(Value::Int(-5)));
        assert!(Value::parse(XsdType::UnsignedInt, "-1").is_err());
        assert_eq!(
            Value::parse(XsdType::UnsignedLong, "18446744073709551615").ok(),
            Some(Value::UnsignedLong(u64::MAX))
        );
        assert_eq!(Value::parse(XsdType::Boolean, "1").ok(), Some(Value::Boolean(true)));
        assert!(Value::parse(XsdType::Boolean, "yes").is_err());
        assert!(Value::parse(XsdType::Base64, "aGVsbG8=").is_ok());
        assert!(Value::parse(XsdType::Base64, "aGVsbG8").is_err());
        assert!(Value::parse(XsdType::HexBinary, "0aFf").is_ok());
        assert!(Value::parse(XsdType::HexBinary, "0aF").is_err());
        assert!(Value::parse(XsdType::Decimal, "-12.50").is_ok());
        assert!(Value::parse(XsdType::Decimal, "1e5").is_err());
        assert_eq!(Value::parse(XsdType::String, " keep ").ok(), Some(Value::String(" keep ".into())));
    }

    #[test]
    fn datetimes() {
        assert!(DateTime::parse("2026-11-21T23:08:54Z").is_some());
        assert!(DateTime::parse("2026-11-21T23:08:54.123+01:00").is_some());
        assert!(DateTime::parse("2026-11-21T23:08:54").is_some());
        assert!(DateTime::parse("2026-13-21T23:08:54Z").is_none());
        assert!(DateTime::parse("2026-11-21 23:08:54Z").is_none());
        assert!(DateTime::parse("2026-11-21T23:08:54+0100").is_none());
        assert_eq!(DateTime::from_unix(0).as_str(), "1970-01-01T00:00:00Z");
        assert_eq!(DateTime::from_unix(1_795_302_534).as_str(), "2026-11-21T23:08:54Z");
        assert_eq!(DateTime::from_unix(951_782_400).as_str(), "2000-02-29T00:00:00Z");
    }
}
