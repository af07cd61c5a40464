//! A CWMP parameter value as it crosses the wire: `{name, type, value}`, the type named as in
//! xsd without its prefix and the value in its lexical form, so nothing is lost between CWMP and
//! the proxy. The one place that knows the wire's type names.

use std::fmt;

use cwmp::{FaultCode, ParameterValue, Value as CwmpValue, XsdType};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fault::ProxyFault;

/// The wire's name of an xsd type: its local name (`unsignedInt`, `base64Binary`).
pub fn wire_type(t: XsdType) -> &'static str {
    match t {
        XsdType::String => "string",
        XsdType::Int => "int",
        XsdType::UnsignedInt => "unsignedInt",
        XsdType::Long => "long",
        XsdType::UnsignedLong => "unsignedLong",
        XsdType::Boolean => "boolean",
        XsdType::DateTime => "dateTime",
        XsdType::Base64 => "base64Binary",
        XsdType::HexBinary => "hexBinary",
        XsdType::Decimal => "decimal",
    }
}

/// The xsd type a wire type name names (`base64` is accepted for `base64Binary`).
pub fn xsd_type(name: &str) -> Option<XsdType> {
    XsdType::from_local(name)
}

/// A value as a caller sent it: the agent sends the lexical form as a string (with the type
/// beside it); other callers may send an XML-RPC int, i8, boolean or double instead.
#[derive(Debug, Clone, PartialEq)]
pub enum Lexical {
    /// A string: the lexical form.
    String(String),
    /// An `int` or `i8`.
    Int(i64),
    /// A `boolean`.
    Bool(bool),
    /// A `double`.
    Double(f64),
}

impl Lexical {
    /// The lexical form, and the type a value of this kind has when no type was sent.
    fn parts(&self) -> (String, XsdType) {
        match self {
            Lexical::String(s) => (s.clone(), XsdType::String),
            Lexical::Int(i) => (i.to_string(), if i32::try_from(*i).is_ok() { XsdType::Int } else { XsdType::Long }),
            Lexical::Bool(b) => (b.to_string(), XsdType::Boolean),
            Lexical::Double(d) => (d.to_string(), XsdType::String),
        }
    }
}

impl Serialize for Lexical {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Lexical::String(v) => s.serialize_str(v),
            Lexical::Int(v) => s.serialize_i64(*v),
            Lexical::Bool(v) => s.serialize_bool(*v),
            Lexical::Double(v) => s.serialize_f64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for Lexical {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lexical, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Lexical;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a parameter value (a string, int, i8, boolean or double)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lexical, E> {
                Ok(Lexical::String(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Lexical, E> {
                Ok(Lexical::String(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lexical, E> {
                Ok(Lexical::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lexical, E> {
                i64::try_from(v).map(Lexical::Int).map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Lexical, E> {
                Ok(Lexical::Bool(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lexical, E> {
                Ok(Lexical::Double(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `{name, type, value}`: a parameter value on the wire. `type` is optional from callers other
/// than the agent; the proxy always sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireValue {
    /// The parameter path.
    pub name: String,
    /// The wire type name ([`wire_type`]).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// The value.
    pub value: Lexical,
}

impl From<&ParameterValue> for WireValue {
    fn from(p: &ParameterValue) -> WireValue {
        WireValue {
            name: p.name.clone(),
            ty: Some(wire_type(p.value.xsd_type()).to_string()),
            value: Lexical::String(p.value.to_lexical().into_owned()),
        }
    }
}

impl TryFrom<WireValue> for ParameterValue {
    type Error = ProxyFault;

    /// The CWMP value: the type sent (else the one the XML-RPC type implies) applied to the
    /// lexical form. An unknown type or a form the type refuses is 9006.
    fn try_from(w: WireValue) -> Result<ParameterValue, ProxyFault> {
        let (lexical, implied) = w.value.parts();
        let name = w.name;
        let ty = match w.ty.as_deref() {
            Some(t) => xsd_type(t).ok_or_else(|| {
                ProxyFault::Cwmp(FaultCode::InvalidParameterType, format!("{name}: unknown type {t:?}"))
            })?,
            None => implied,
        };
        let value = CwmpValue::parse(ty, &lexical)
            .map_err(|e| ProxyFault::Cwmp(FaultCode::InvalidParameterType, format!("{name}: {e}")))?;
        Ok(ParameterValue::new(name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [XsdType; 10] = [
        XsdType::String,
        XsdType::Int,
        XsdType::UnsignedInt,
        XsdType::Long,
        XsdType::UnsignedLong,
        XsdType::Boolean,
        XsdType::DateTime,
        XsdType::Base64,
        XsdType::HexBinary,
        XsdType::Decimal,
    ];

    #[test]
    fn wire_type_names_are_the_xsd_local_names() {
        for t in ALL {
            assert_eq!(format!("xsd:{}", wire_type(t)), t.qname());
            assert_eq!(xsd_type(wire_type(t)), Some(t));
        }
        assert_eq!(xsd_type("base64"), Some(XsdType::Base64));
        assert_eq!(xsd_type("xsd:string"), None);
    }

    #[test]
    fn values_without_a_type_take_the_xml_rpc_one() {
        let pv = |value| ParameterValue::try_from(WireValue { name: "N".into(), ty: None, value });
        assert_eq!(pv(Lexical::Int(7)).map(|p| p.value), Ok(CwmpValue::Int(7)));
        assert_eq!(pv(Lexical::Int(1 << 40)).map(|p| p.value), Ok(CwmpValue::Long(1 << 40)));
        assert_eq!(pv(Lexical::Bool(true)).map(|p| p.value), Ok(CwmpValue::Boolean(true)));
        assert_eq!(pv(Lexical::String("x".into())).map(|p| p.value), Ok(CwmpValue::String("x".into())));
        let typed = WireValue { name: "N".into(), ty: Some("unsignedInt".into()), value: Lexical::String("12".into()) };
        assert_eq!(ParameterValue::try_from(typed).map(|p| p.value), Ok(CwmpValue::UnsignedInt(12)));
        let bad = WireValue { name: "N".into(), ty: Some("unsignedInt".into()), value: Lexical::String("-1".into()) };
        assert!(matches!(ParameterValue::try_from(bad), Err(ProxyFault::Cwmp(FaultCode::InvalidParameterType, _))));
        let unknown = WireValue { name: "N".into(), ty: Some("float".into()), value: Lexical::String("1".into()) };
        assert!(matches!(
            ParameterValue::try_from(unknown),
            Err(ProxyFault::Cwmp(FaultCode::InvalidParameterType, s)) if s.contains("unknown type")
        ));
    }
}
