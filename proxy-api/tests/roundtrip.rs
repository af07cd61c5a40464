//! Every parameter and result type of the contract survives the trip through XML-RPC: encoded
//! as the client encodes a call (or the server a response), decoded as the other side decodes
//! it, and equal. And what the proxy spoke before the contract existed still decodes.

use proxy_api::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use xmlrpc::{decode_call, decode_response, encode_call, encode_response, Limits, MethodResponse, Value};

/// Encodes `params` as a call of `m`, decodes it as the server does.
fn call_trip<P: Serialize + DeserializeOwned, R>(m: &Method<P, R>, params: &P) -> P {
    let list = match xmlrpc::to_value(params).expect("serialize") {
        Value::Array(a) => a,
        Value::Nil => Vec::new(),
        one => vec![one],
    };
    let xml = encode_call(m.name, &list);
    let call = decode_call(xml.as_bytes(), &Limits::default()).expect("decode call");
    assert_eq!(call.name, m.name);
    xmlrpc::from_value(Value::Array(call.params)).expect("deserialize params")
}

/// Encodes `result` as `m`'s response, decodes it as the client does.
fn result_trip<P, R: Serialize + DeserializeOwned>(_: &Method<P, R>, result: &R) -> R {
    let xml = encode_response(&MethodResponse::Success(xmlrpc::to_value(result).expect("serialize")));
    match decode_response(xml.as_bytes(), &Limits::default()).expect("decode response") {
        MethodResponse::Success(v) => xmlrpc::from_value(v).expect("deserialize result"),
        MethodResponse::Fault(f) => panic!("{f}"),
    }
}

fn values() -> Vec<WireValue> {
    let pv = |name: &str, v: cwmp::Value| WireValue::from(&cwmp::ParameterValue::new(name, v));
    vec![
        pv("Device.DHCPv4.Server.Pool.1.MinAddress", cwmp::Value::String("192.168.1.50".into())),
        pv("Device.DHCPv4.Server.Pool.1.LeaseTime", cwmp::Value::Int(7200)),
        pv("Device.DHCPv4.Server.Pool.1.Enable", cwmp::Value::Boolean(true)),
        pv("Device.DeviceInfo.UpTime", cwmp::Value::UnsignedInt(12)),
        pv("Device.X.Big", cwmp::Value::UnsignedLong(u64::MAX)),
        pv("Device.X.Blob", cwmp::Value::Base64("AAEC".into())),
        pv("Device.X.Empty", cwmp::Value::String(String::new())),
    ]
}

#[test]
fn parameters_round_trip() {
    let set = SetParams { values: values(), parameter_key: "key-1".into() };
    assert_eq!(call_trip(&SET, &set), set);
    assert_eq!(call_trip(&TRY_SET, &set), set);
    let validate = ValidateParams { values: values() };
    assert_eq!(call_trip(&VALIDATE, &validate), validate);
    let paths = Paths(vec!["Device.".into(), "Device.Hosts.Host.".into()]);
    assert_eq!(call_trip(&GET, &paths), paths);
    let names = NamesParams { path: "Device.DHCPv4.".into(), next_level: true };
    assert_eq!(call_trip(&NAMES, &names), names);
    let obj = ObjectParams { path: "Device.NAT.PortMapping.".into(), parameter_key: "pm".into() };
    assert_eq!(call_trip(&ADD_OBJECT, &obj), obj);
    assert_eq!(call_trip(&DELETE_OBJECT, &obj), obj);
}

#[test]
fn results_round_trip() {
    assert_eq!(result_trip(&GET, &values()), values());
    assert_eq!(result_trip(&SET, &0), 0);
    let faults = vec![WireFault { name: "Device.A".into(), code: 9007, reason: "too big".into() }];
    assert_eq!(result_trip(&TRY_SET, &faults), faults);
    assert_eq!(result_trip(&VALIDATE, &Vec::new()), Vec::<WireFault>::new());
    let names = vec![NameInfo { name: "Device.A.".into(), writable: false }];
    assert_eq!(result_trip(&NAMES, &names), names);
    assert_eq!(result_trip(&ADD_OBJECT, &u32::MAX), u32::MAX);
    assert_eq!(result_trip(&DELETE_OBJECT, &0), 0);
    assert!(result_trip(&FACTORY_RESET, &true));
    assert_eq!(result_trip(&ANNOUNCE, &"192.168.1.1 on lan0".to_string()), "192.168.1.1 on lan0");
    let h = Health {
        status: "ok".into(),
        version: "0.1.0".into(),
        uptime: 5,
        parameter_key: "k".into(),
        dnsmasq_running: true,
        last_error: String::new(),
        rss_kib: 3000,
    };
    assert_eq!(result_trip(&HEALTH, &h), h);
}

#[test]
fn every_value_crosses_without_loss() {
    for w in values() {
        let back: WireValue = result_trip(&GET, &vec![w.clone()]).remove(0);
        let pv = cwmp::ParameterValue::try_from(back).expect("a CWMP value again");
        assert_eq!(WireValue::from(&pv), w);
    }
}

/// The wire as the proxy spoke it before (docs/vrgw-proxy.md), as Python's xmlrpc.client sends
/// it: optional trailing parameters left out, values without a type, paths as separate
/// parameters.
#[test]
fn what_callers_sent_before_still_decodes() {
    let s = |v: &str| Value::String(v.into());
    let de = |params: Vec<Value>| Value::Array(params);
    let set: SetParams = xmlrpc::from_value(de(vec![Value::Array(vec![Value::structure([
        ("name", s("Device.DHCPv4.Server.Pool.1.LeaseTime")),
        ("value", Value::Int(600)),
    ])])]))
    .expect("set without a key or a type");
    assert_eq!(set.parameter_key, "");
    let pv = cwmp::ParameterValue::try_from(set.values[0].clone()).expect("value");
    assert_eq!(pv.value, cwmp::Value::Int(600));
    let paths: Paths = xmlrpc::from_value(de(vec![s("Device.A."), s("Device.B")])).expect("separate paths");
    assert_eq!(paths, Paths(vec!["Device.A.".into(), "Device.B".into()]));
    let names: NamesParams = xmlrpc::from_value(de(vec![])).expect("names of everything");
    assert_eq!(names, NamesParams { path: String::new(), next_level: false });
    let _: NoParams = xmlrpc::from_value(de(vec![s("ignored")])).expect("no parameters");
    assert_eq!(call_trip(&HEALTH, &NoParams), NoParams);
    assert_eq!(xmlrpc::to_value(&NoParams), Ok(Value::Nil), "sent as no parameters");
    // What the agent sends is what the docs show: {name, type, value}, the value a string.
    let sent = xmlrpc::to_value(&values()[1]).expect("value");
    assert_eq!(
        sent,
        Value::structure([
            ("name", s("Device.DHCPv4.Server.Pool.1.LeaseTime")),
            ("type", s("int")),
            ("value", s("7200")),
        ])
    );
}
