//! XML-RPC values: the specification's types plus the common `i8` and `nil` extensions.

use std::fmt;

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<int>` / `<i4>`: 32-bit signed.
    Int(i32),
    /// `<i8>` / `<ex:i8>`: 64-bit signed (extension).
    I8(i64),
    /// `<boolean>`: 0 or 1.
    Bool(bool),
    /// `<string>`, or a value with no type element.
    String(String),
    /// `<double>`.
    Double(f64),
    /// `<dateTime.iso8601>`.
    DateTime(DateTime),
    /// `<base64>`.
    Base64(Vec<u8>),
    /// `<struct>`: members in the order sent.
    Struct(Vec<(String, Value)>),
    /// `<array>`.
    Array(Vec<Value>),
    /// `<nil/>` / `<ex:nil/>` (extension).
    Nil,
}

impl Value {
    /// A struct member by name (the last one if a name repeats).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Struct(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The integer, if this is an `int` or `i8`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(i64::from(*i)),
            Value::I8(i) => Some(*i),
            _ => None,
        }
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The type's element name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::I8(_) => "i8",
            Value::Bool(_) => "boolean",
            Value::String(_) => "string",
            Value::Double(_) => "double",
            Value::DateTime(_) => "dateTime.iso8601",
            Value::Base64(_) => "base64",
            Value::Struct(_) => "struct",
            Value::Array(_) => "array",
            Value::Nil => "nil",
        }
    }
    /// A struct from name and value pairs.
    pub fn structure<K: Into<String>>(members: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Struct(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        match i32::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::I8(v),
        }
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

/// An `dateTime.iso8601` value. The specification shows `19980717T14:08:55`; peers also send
/// `1998-07-17T14:08:55`, `19980717T140855`, fractions and time zones, all accepted here. It is
/// written back as `YYYYMMDDTHH:MM:SS`, with the zone when one was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime {
    /// Year (0 to 9999).
    pub year: u16,
    /// Month (1 to 12).
    pub month: u8,
    /// Day (1 to 31).
    pub day: u8,
    /// Hour (0 to 23).
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second (0 to 60).
    pub second: u8,
    /// Offset from UTC in minutes when the value carried a zone (`Z` is 0).
    pub offset_minutes: Option<i16>,
}

impl DateTime {
    /// Parses the forms listed on the type.
    pub fn parse(s: &str) -> Option<DateTime> {
        let s = s.trim();
        let (date, rest) = s.split_once('T')?;
        let date: String = date.chars().filter(|c| *c != '-').collect();
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
        let (time, zone) = rest.split_at(zone_at);
        let time = time.split('.').next()?;
        let time: String = time.chars().filter(|c| *c != ':').collect();
        if time.len() != 6 || !time.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = |s: &str, a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<u16>().ok());
        let offset_minutes = match zone {
            "" => None,
            "Z" => Some(0),
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
                if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let h = n(&digits, 0, 2)? as i16;
                let m = n(&digits, 2, 4)? as i16;
                if h > 23 || m > 59 {
                    return None;
                }
                Some(sign * (h * 60 + m))
            }
        };
        let dt = DateTime {
            year: n(&date, 0, 4)?,
            month: n(&date, 4, 6)? as u8,
            day: n(&date, 6, 8)? as u8,
            hour: n(&time, 0, 2)? as u8,
            minute: n(&time, 2, 4)? as u8,
            second: n(&time, 4, 6)? as u8,
            offset_minutes,
        };
        let ok = (1..=12).contains(&dt.month)
            && (1..=31).contains(&dt.day)
            && dt.hour < 24
            && dt.minute < 60
            && dt.second <= 60;
        ok.then_some(dt)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        match self.offset_minutes {
            None => Ok(()),
            Some(0) => f.write_str("Z"),
            Some(m) => write!(f, "{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_forms() {
        let base = DateTime::parse("19980717T14:08:55").expect("spec form");
        assert_eq!(base.to_string(), "19980717T14:08:55");
        assert_eq!(DateTime::parse("1998-07-17T14:08:55"), Some(base));
        assert_eq!(DateTime::parse("19980717T140855"), Some(base));
        assert_eq!(DateTime::parse("1998-07-17T14:08:55.250"), Some(base));
        let z = DateTime::parse("1998-07-17T14:08:55Z").expect("zulu");
        assert_eq!(z.to_string(), "19980717T14:08:55Z");
        let off = DateTime::parse("19980717T14:08:55-05:30").expect("offset");
        assert_eq!(off.offset_minutes, Some(-330));
        assert_eq!(off.to_string(), "19980717T14:08:55-05:30");
        for bad in [
            "",
            "19981317T14:08:55",
            "19980717 14:08:55",
            "1998717T14:08:55",
            "19980717T25:08:55",
            "19980717T14:08:55+2",
        ] {
            assert_eq!(DateTime::parse(bad), None, "{bad}");
        }
    }
}
