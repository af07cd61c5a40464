//! Rust types to XML-RPC values and back.

use serde::{Deserialize, Serialize};
use xmlrpc::{from_value, to_value, Value};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Mode {
    Open,
    Wpa2 { passphrase: String },
    Pair(u8, u8),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Settings {
    ssid: String,
    channel: u8,
    enabled: bool,
    lease: i64,
    big: u64,
    ratio: f64,
    dns: Vec<String>,
    note: Option<String>,
    missing: Option<u32>,
    #[serde(with = "bytes")]
    key: Vec<u8>,
    mode: Mode,
    modes: Vec<Mode>,
    unit: (),
}

mod bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[test]
fn structs_enums_options_bytes_round_trip() {
    let s = Settings {
        ssid: "Zoë's Wi-Fi".into(),
        channel: 11,
        enabled: true,
        lease: -1,
        big: 1 << 40,
        ratio: 0.5,
        dns: vec!["192.168.1.1".into(), "9.9.9.9".into()],
        note: Some("n".into()),
        missing: None,
        key: vec![0, 255],
        mode: Mode::Wpa2 { passphrase: "correct horse".into() },
        modes: vec![Mode::Open, Mode::Pair(1, 2)],
        unit: (),
    };
    let v = to_value(&s).expect("serialize");
    assert_eq!(v.get("big"), Some(&Value::I8(1 << 40)));
    assert_eq!(v.get("channel"), Some(&Value::Int(11)));
    assert_eq!(v.get("missing"), Some(&Value::Nil));
    assert_eq!(v.get("key"), Some(&Value::Base64(vec![0, 255])));
    assert_eq!(v.get("modes").and_then(Value::as_array).map(|a| a[0].clone()), Some(Value::String("Open".into())));
    // Through the wire format too.
    let xml = xmlrpc::encode_call("m", std::slice::from_ref(&v));
    let back = xmlrpc::decode_call(xml.as_bytes(), &xmlrpc::Limits::default()).expect("decode");
    let s2: Settings = from_value(back.params[0].clone()).expect("deserialize");
    assert_eq!(s2, s);
}

#[test]
fn type_mismatches_are_errors() {
    let e = from_value::<u8>(Value::Int(300)).expect_err("too big");
    assert!(e.to_string().contains("300"), "{e}");
    assert!(from_value::<String>(Value::Int(1)).is_err());
    assert!(from_value::<(i32, i32)>(Value::Array(vec![Value::Int(1)])).is_err());
    assert!(to_value(&std::collections::HashMap::from([((1, 2), 3)])).is_err(), "struct keys are strings");
    assert!(to_value(&u64::MAX).is_err());
}
