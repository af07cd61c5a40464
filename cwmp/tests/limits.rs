//! Limits on what a peer may send: names longer than `MAX_NAME_BYTES` or deeper than
//! `MAX_NAME_SEGMENTS` in every field that carries one, arrays over `MAX_ITEMS` (declared or
//! held), the faults each maps to by role, both session roles answering them, and the
//! name-depth bound measured against the data models `datamodel/` generates.

use std::time::Instant;

use cwmp::session::*;
use cwmp::*;

mod common;

fn decode(xml: &str) -> Result<Envelope, DecodeError> {
    Envelope::decode(xml.as_bytes(), &Limits::default())
}

fn wrap(body: Body) -> String {
    Envelope::new(CwmpNs::V1_2, Some("id-1".into()), body).encode()
}

fn inform_with(name: &str) -> Inform {
    Inform { parameter_list: vec![ParameterValue::new(name, Value::String("x".into()))], ..common::inform(1) }
}

/// Every message field that carries a parameter or object name, holding `name`.
fn every_name_field(name: &str) -> Vec<Body> {
    let n = || name.to_string();
    vec![
        Body::Inform(inform_with(name)),
        Body::SetParameterValues(SetParameterValues {
            parameter_list: vec![ParameterValue::new(n(), Value::Int(1))],
            parameter_key: String::new(),
        }),
        Body::GetParameterValues(GetParameterValues { parameter_names: vec!["Device.".into(), n()] }),
        Body::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: vec![ParameterValue::new(n(), Value::Boolean(true))],
        }),
        Body::GetParameterNames(GetParameterNames { parameter_path: n(), next_level: true }),
        Body::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: vec![ParameterInfo { name: n(), writable: false }],
        }),
        Body::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![SetParameterAttribute {
                name: n(),
                notification_change: true,
                notification: Notification::Active,
                access_list_change: false,
                access_list: vec![],
            }],
        }),
        Body::GetParameterAttributes(GetParameterAttributes { parameter_names: vec![n()] }),
        Body::GetParameterAttributesResponse(GetParameterAttributesResponse {
            parameter_list: vec![ParameterAttribute {
                name: n(),
                notification: Notification::Off,
                access_list: vec![],
            }],
        }),
        Body::AddObject(AddObject { object_name: n(), parameter_key: String::new() }),
        Body::DeleteObject(DeleteObject { object_name: n(), parameter_key: String::new() }),
        Body::Fault(Fault {
            code: FaultCode::InvalidArguments,
            string: "refused".into(),
            set_parameter_values_faults: vec![ParameterFault {
                parameter_name: n(),
                code: FaultCode::InvalidParameterValue,
                string: "bad".into(),
            }],
        }),
    ]
}

/// `segments` segments, `bytes` bytes long in all (the last segment pads).
fn name_of(segments: usize, bytes: usize) -> String {
    let mut s = "Device.".repeat(segments - 1);
    let pad = bytes.checked_sub(s.len()).expect("room for the last segment");
    assert!(pad > 0, "the last segment needs a byte");
    s.push_str(&"x".repeat(pad));
    assert_eq!((name_segments(&s), s.len()), (segments, bytes));
    s
}

#[test]
fn names_at_the_limits_decode_in_every_field() {
    for name in [name_of(MAX_NAME_SEGMENTS, 300), name_of(2, MAX_NAME_BYTES)] {
        for body in every_name_field(&name) {
            let xml = wrap(body.clone());
            let env = decode(&xml).unwrap_or_else(|e| panic!("{}: {e}", body.method_name()));
            assert_eq!(env.body, body);
        }
    }
    // A partial path's trailing dot is not a segment.
    let partial = format!("{}.", name_of(MAX_NAME_SEGMENTS, 300));
    assert!(decode(&wrap(Body::GetParameterNames(GetParameterNames { parameter_path: partial, next_level: false })))
        .is_ok());
}

#[test]
fn a_name_over_1024_bytes_is_refused_in_every_field() {
    let name = name_of(2, MAX_NAME_BYTES + 1);
    for body in every_name_field(&name) {
        let err = decode(&wrap(body.clone())).expect_err(body.method_name());
        let DecodeErrorKind::NameTooLong { len, limit, ref name, .. } = err.kind else {
            panic!("{}: {err}", body.method_name())
        };
        assert_eq!((len, limit), (MAX_NAME_BYTES + 1, 1024), "{}", body.method_name());
        assert!(name.len() < 80, "the error shows the name shortened: {name}");
        assert_eq!(err.fault_code(Role::Cpe), FaultCode::InvalidArguments);
        assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsInvalidArguments);
        assert!(err.line > 0, "the error says where: {err}");
    }
}

#[test]
fn a_name_over_the_segment_limit_is_refused_in_every_field() {
    let name = name_of(MAX_NAME_SEGMENTS + 1, 300);
    for body in every_name_field(&name) {
        let err = decode(&wrap(body.clone())).expect_err(body.method_name());
        assert!(
            matches!(err.kind, DecodeErrorKind::NameTooDeep { segments: 33, limit: 32, .. }),
            "{}: {err}",
            body.method_name()
        );
        assert_eq!(err.fault_code(Role::Cpe), FaultCode::InvalidArguments);
        assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsInvalidArguments);
    }
}

#[test]
fn a_20000_segment_name_is_refused() {
    let name = "a.".repeat(19_999) + "a";
    assert_eq!(name_segments(&name), 20_000);
    let err = decode(&wrap(Body::Inform(inform_with(&name)))).expect_err("refused");
    assert!(matches!(err.kind, DecodeErrorKind::NameTooLong { len: 39_999, .. }), "{err}");
    let tighter = Limits { max_name_bytes: usize::MAX, ..Limits::default() };
    let err = Envelope::decode(wrap(Body::Inform(inform_with(&name))).as_bytes(), &tighter).expect_err("refused");
    assert!(matches!(err.kind, DecodeErrorKind::NameTooDeep { segments: 20_000, .. }), "{err}");
    assert!(!Limits::default().accepts_name(&name));
    assert!(Limits::default().accepts_name("Device.DeviceInfo.UpTime"));
}

fn gpv_response(n: usize) -> String {
    wrap(Body::GetParameterValuesResponse(GetParameterValuesResponse {
        parameter_list: (0..n).map(|i| ParameterValue::new(format!("Device.P.{i}"), Value::Int(1))).collect(),
    }))
}

#[test]
fn arrays_over_the_item_limit_are_refused_whether_held_or_declared() {
    let limits = Limits { max_items: 100, ..Limits::default() };
    assert!(Envelope::decode(gpv_response(100).as_bytes(), &limits).is_ok());
    let err = Envelope::decode(gpv_response(101).as_bytes(), &limits).expect_err("101 declared");
    assert!(matches!(err.kind, DecodeErrorKind::ArrayTooLarge { limit: 100, .. }), "{err}");
    // Members are counted whatever the array declares.
    let understated = gpv_response(101).replace("ParameterValueStruct[101]", "ParameterValueStruct[1]");
    let err = Envelope::decode(understated.as_bytes(), &limits).expect_err("101 members");
    assert_eq!(err.kind, DecodeErrorKind::TooManyItems { element: "ParameterList".into(), limit: 100 });
    assert_eq!(err.fault_code(Role::Cpe), FaultCode::ResourcesExceeded);
    assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsResourcesExceeded);

    // A declared size over the limit is refused even when few members follow; a size that does
    // not match the members, or none at all, is tolerated as before.
    let two = gpv_response(2);
    assert!(two.contains("ParameterValueStruct[2]"), "{two}");
    for (declared, refused) in [
        ("[65536]", false),
        ("[65537]", true),
        ("[99999999999999999999999999]", true),
        ("[300,300]", true),
        ("[5]", false),
        ("[]", false),
        ("[x]", false),
    ] {
        let xml = two.replace("ParameterValueStruct[2]", &format!("ParameterValueStruct{declared}"));
        match decode(&xml) {
            Ok(env) => assert!(!refused, "{declared} accepted: {env:?}"),
            Err(e) => {
                assert!(refused, "{declared}: {e}");
                assert!(matches!(e.kind, DecodeErrorKind::ArrayTooLarge { limit: MAX_ITEMS, .. }), "{e}");
                assert_eq!(e.fault_code(Role::Acs), FaultCode::AcsResourcesExceeded);
            }
        }
    }
}

#[test]
fn the_default_item_limit_holds_a_large_host_answer() {
    // 6,024 values is a full GetParameterValues of a host with 30 vRGWs (acs/tests/limits.rs
    // measures it from the real model); ten times as many still fit.
    let xml = gpv_response(60_240);
    assert!(xml.len() > Limits::default().max_body, "the body limit binds first at this size");
    let roomy = Limits { max_body: usize::MAX, ..Limits::default() };
    let env = Envelope::decode(xml.as_bytes(), &roomy).expect("decodes");
    let Body::GetParameterValuesResponse(r) = env.body else { panic!("not a GPV response") };
    assert_eq!(r.parameter_list.len(), 60_240);
    assert!(Envelope::decode(gpv_response(MAX_ITEMS + 1).as_bytes(), &roomy).is_err());
}

#[test]
fn the_acs_session_refuses_such_an_inform_with_8003_and_reports_no_inform() {
    let now = Instant::now();
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    let name = name_of(MAX_NAME_SEGMENTS + 1, 300);
    acs.handle_post(wrap(Body::Inform(inform_with(&name))).as_bytes(), now);
    let events: Vec<_> = std::iter::from_fn(|| acs.poll_event()).collect();
    assert!(
        matches!(events.as_slice(), [AcsEvent::Failed { error: SessionError::Decode(e), .. }]
            if matches!(e.kind, DecodeErrorKind::NameTooDeep { .. })),
        "{events:?}"
    );
    let Some(Reply::Envelope(reply)) = acs.poll_reply() else { panic!("no fault sent") };
    let Body::Fault(f) = decode(&reply).expect("fault decodes").body else { panic!("not a fault: {reply}") };
    assert_eq!(f.code, FaultCode::AcsInvalidArguments);
    assert!(f.string.contains("33 segments, more than 32"), "the reason goes back: {}", f.string);
    assert!(acs.is_done());
}

#[test]
fn the_cpe_session_answers_such_a_request_with_9003_and_goes_on() {
    let now = Instant::now();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform_with("Device.DeviceInfo.UpTime"), vec![], now);
    let _ = cpe.poll_transmit();
    let resp =
        Envelope::new(CwmpNs::V1_2, Some("cpe-1".into()), Body::InformResponse(InformResponse { max_envelopes: 1 }));
    cpe.handle_response(200, resp.encode().as_bytes(), now);
    assert_eq!(cpe.poll_transmit(), Some(Transmit::Empty));
    let gpv = GetParameterValues { parameter_names: vec![name_of(2, MAX_NAME_BYTES + 1)] };
    cpe.handle_response(200, wrap(Body::GetParameterValues(gpv)).as_bytes(), now);
    let Some(Transmit::Envelope(fault)) = cpe.poll_transmit() else { panic!("no fault sent") };
    let Body::Fault(f) = decode(&fault).expect("fault decodes").body else { panic!("not a fault: {fault}") };
    assert_eq!(f.code, FaultCode::InvalidArguments);
    assert!(!cpe.is_done(), "the session goes on after the fault");
    let events: Vec<_> = std::iter::from_fn(|| cpe.poll_event()).collect();
    assert!(!events.iter().any(|e| matches!(e, CpeEvent::Request(_))), "nothing reaches the host: {events:?}");
}

/// The data models' facts file: object paths (`O` lines) and their parameters (`P` lines).
fn data_model_paths() -> Vec<String> {
    let dm = include_str!("../../datamodel/data/device2.dm");
    let mut object = "";
    let mut paths = Vec::new();
    for line in dm.lines() {
        let mut cols = line.split('\t');
        match (cols.next(), cols.next()) {
            (Some("O"), Some(path)) => {
                object = path;
                paths.push(path.to_string());
            }
            (Some("P"), Some(name)) => paths.push(format!("{object}{name}")),
            _ => {}
        }
    }
    paths
}

#[test]
fn the_name_limits_leave_room_over_the_generated_data_models() {
    let paths = data_model_paths();
    assert!(paths.len() > 300, "{} paths read", paths.len());
    // The host embeds each vRGW's `Device.` at its instance (TR-069 Annex J).
    let mount = paths
        .iter()
        .find(|p| p.starts_with("Device.X_VRGW-ORG_Virtualization.Instance.{i}.") && p.ends_with(".Device."))
        .expect("the embedding mount");
    let embedded = |p: &str| format!("{mount}{}", p.strip_prefix("Device.").unwrap_or(p));
    // Instance numbers are unsignedInt: at most 10 digits.
    let widest = |p: &str| embedded(p).replace("{i}", "4294967295");
    let deepest = paths.iter().map(|p| name_segments(&embedded(p))).max().unwrap_or(0);
    let longest = paths.iter().map(|p| widest(p).len()).max().unwrap_or(0);
    // Device.X_VRGW-ORG_Virtualization.Instance.{i}.Device.DHCPv4.Server.Pool.{i}.StaticAddress.{i}.Enable
    assert_eq!(deepest, 12, "the deepest path changed: update the comments at MAX_NAME_SEGMENTS and docs");
    assert!(deepest * 2 <= MAX_NAME_SEGMENTS, "deepest path {deepest} segments: raise MAX_NAME_SEGMENTS");
    assert!(longest * 4 <= MAX_NAME_BYTES, "longest path {longest} bytes: raise MAX_NAME_BYTES");
}
