//! Whole CWMP sessions in memory: a CPE session and an ACS session linked back to back.

use std::time::{Duration, Instant};

use cwmp::session::*;
use cwmp::*;

fn inform(events: &[&str]) -> Inform {
    Inform {
        device_id: DeviceId {
            manufacturer: "vRGW".into(),
            oui: "00A0B1".into(),
            product_class: "Host".into(),
            serial_number: "SN1".into(),
        },
        events: events.iter().map(|e| Event::new(e)).collect(),
        max_envelopes: 1,
        current_time: DateTime::from_unix(1_795_302_534),
        retry_count: 0,
        parameter_list: vec![ParameterValue::new(
            "Device.ManagementServer.ConnectionRequestURL",
            Value::String("http://127.0.0.1:7547/cr".into()),
        )],
    }
}

fn transfer_complete() -> Body {
    Body::TransferComplete(TransferComplete {
        command_key: "dl-1".into(),
        fault: TransferFault::none(),
        start_time: DateTime::from_unix(1),
        complete_time: DateTime::from_unix(2),
    })
}

/// What each side saw.
#[derive(Default, Debug)]
struct Log {
    cpe: Vec<CpeEvent>,
    acs: Vec<AcsEvent>,
    posts: Vec<String>,
}

/// Runs the session until both sides are done. `on_inform` queues ACS requests; the CPE host
/// answers every request with `answer`.
fn run(
    cpe: &mut CpeSession,
    acs: &mut AcsSession,
    on_inform: impl Fn(&mut AcsSession),
    answer: impl Fn(&Body) -> Body,
) -> Log {
    let now = Instant::now();
    let mut log = Log::default();
    for _ in 0..100 {
        let Some(tx) = cpe.poll_transmit() else { break };
        let body = match &tx {
            Transmit::Envelope(s) => s.clone(),
            Transmit::Empty => String::new(),
        };
        log.posts.push(if body.is_empty() { "(empty)".into() } else { method_of(&body) });
        acs.handle_post(body.as_bytes(), now);
        while let Some(ev) = acs.poll_event() {
            if let AcsEvent::Inform { .. } = ev {
                on_inform(acs);
            }
            log.acs.push(ev);
        }
        let reply = acs.poll_reply().expect("the ACS always replies to a POST");
        // Choosing the reply can end the session (the 204): its event comes now.
        while let Some(ev) = acs.poll_event() {
            log.acs.push(ev);
        }
        match reply {
            Reply::Envelope(s) => cpe.handle_response(200, s.as_bytes(), now),
            Reply::NoContent => cpe.handle_response(204, b"", now),
        }
        while let Some(ev) = cpe.poll_event() {
            if let CpeEvent::Request(req) = &ev {
                cpe.respond(answer(req), now).expect("respond");
            }
            log.cpe.push(ev);
        }
    }
    log
}

fn method_of(xml: &str) -> String {
    Envelope::decode(xml.as_bytes(), &Limits::default())
        .map(|e| e.body.method_name().to_string())
        .unwrap_or_else(|e| format!("undecodable: {e}"))
}

fn answer(req: &Body) -> Body {
    match req {
        Body::GetParameterValues(g) => Body::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: g
                .parameter_names
                .iter()
                .map(|n| ParameterValue::new(n.clone(), Value::String("x".into())))
                .collect(),
        }),
        Body::SetParameterValues(_) => Body::SetParameterValuesResponse(SetParameterValuesResponse { status: 0 }),
        _ => Body::Fault(Fault::new(FaultCode::MethodNotSupported)),
    }
}

#[test]
fn full_session_with_cpe_and_acs_requests() {
    let now = Instant::now();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform(&["1 BOOT"]), vec![transfer_complete()], now);
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    let log = run(
        &mut cpe,
        &mut acs,
        |acs| {
            acs.queue_request(Body::GetParameterValues(GetParameterValues {
                parameter_names: vec!["Device.DeviceInfo.UpTime".into()],
            }));
            acs.queue_request(Body::Reboot(Reboot { command_key: "r".into() }));
        },
        answer,
    );
    assert_eq!(
        log.posts,
        ["Inform", "TransferComplete", "(empty)", "GetParameterValuesResponse", "Fault"],
        "the CPE said it had nothing more with its empty POST, so the ACS's 204 ends the session"
    );
    assert!(cpe.is_done() && acs.is_done());
    assert_eq!(acs.version(), CwmpVersion::V1_4);
    assert!(matches!(log.acs[0], AcsEvent::Inform { version: CwmpVersion::V1_4, .. }));
    assert!(matches!(&log.acs[1], AcsEvent::CpeRequest(Body::TransferComplete(t)) if t.command_key == "dl-1"));
    assert!(
        matches!(&log.acs[2], AcsEvent::Response { response: Body::GetParameterValuesResponse(r), .. } if r.parameter_list.len() == 1)
    );
    assert!(
        matches!(&log.acs[3], AcsEvent::Response { request: Body::Reboot(_), response: Body::Fault(f) } if f.code == FaultCode::MethodNotSupported)
    );
    assert_eq!(log.acs[4], AcsEvent::Ended);
    assert_eq!(log.cpe[0], CpeEvent::InformAccepted { version: CwmpVersion::V1_4 });
    assert!(matches!(&log.cpe[1], CpeEvent::RequestAnswered { response: Body::TransferCompleteResponse(_), .. }));
    assert_eq!(log.cpe.last(), Some(&CpeEvent::Ended { unsent: vec![] }));
}

#[test]
fn hold_requests_keeps_cpe_requests_back() {
    let now = Instant::now();
    let mut cpe =
        CpeSession::new(CpeConfig::default(), inform(&["7 TRANSFER COMPLETE"]), vec![transfer_complete()], now);
    let mut acs = AcsSession::new(AcsConfig { hold_requests: true, ..AcsConfig::default() }, now);
    let log = run(&mut cpe, &mut acs, |_| {}, answer);
    assert_eq!(log.posts, ["Inform", "(empty)"]);
    assert_eq!(log.cpe.last(), Some(&CpeEvent::Ended { unsent: vec![transfer_complete()] }));
}

#[test]
fn version_negotiation() {
    let now = Instant::now();
    // ACS only up to 1.2: the session runs 1.2 in the cwmp-1-2 namespace.
    let mut cpe = CpeSession::new(CpeConfig::default(), inform(&["2 PERIODIC"]), vec![], now);
    let acs_cfg = AcsConfig {
        supported_versions: vec![CwmpVersion::V1_0, CwmpVersion::V1_1, CwmpVersion::V1_2],
        ..AcsConfig::default()
    };
    let mut acs = AcsSession::new(acs_cfg, now);
    run(&mut cpe, &mut acs, |_| {}, answer);
    assert_eq!(acs.version(), CwmpVersion::V1_2);
    assert_eq!(cpe.version(), CwmpVersion::V1_2);

    // A CWMP 1.0 CPE (no SupportedCWMPVersions header) gets a 1.0 session.
    let cfg = CpeConfig { supported_versions: vec![CwmpVersion::V1_0], ..CpeConfig::default() };
    let mut cpe = CpeSession::new(cfg, inform(&["2 PERIODIC"]), vec![], now);
    let Some(Transmit::Envelope(first)) = cpe.poll_transmit() else { panic!("no inform") };
    assert!(first.contains("urn:dslforum-org:cwmp-1-0") && !first.contains("SupportedCWMPVersions"));
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    acs.handle_post(first.as_bytes(), now);
    assert_eq!(acs.version(), CwmpVersion::V1_0);
    let Some(Reply::Envelope(resp)) = acs.poll_reply() else { panic!("no reply") };
    assert!(resp.contains("urn:dslforum-org:cwmp-1-0") && !resp.contains("UseCWMPVersion"));

    // Nothing in common: fault 8006 and both sides fail.
    let cfg = CpeConfig { supported_versions: vec![CwmpVersion::V1_4], ..CpeConfig::default() };
    let mut cpe = CpeSession::new(cfg, inform(&["2 PERIODIC"]), vec![], now);
    let acs_cfg = AcsConfig { supported_versions: vec![CwmpVersion::V1_0], ..AcsConfig::default() };
    let mut acs = AcsSession::new(acs_cfg, now);
    let log = run(&mut cpe, &mut acs, |_| {}, answer);
    assert!(matches!(&log.acs[0], AcsEvent::Failed { error: SessionError::VersionIncompatible, .. }));
    assert!(
        matches!(&log.cpe[0], CpeEvent::Failed(SessionError::Fault(f)) if f.code == FaultCode::AcsVersionIncompatible)
    );
}

#[test]
fn acs_session_times_out_and_returns_the_outstanding_request() {
    let now = Instant::now();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform(&["6 CONNECTION REQUEST"]), vec![], now);
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    let Some(Transmit::Envelope(i)) = cpe.poll_transmit() else { panic!() };
    acs.handle_post(i.as_bytes(), now);
    while acs.poll_event().is_some() {}
    let req = Body::FactoryReset(FactoryReset {});
    acs.queue_request(req.clone());
    assert!(matches!(acs.poll_reply(), Some(Reply::Envelope(_))));
    acs.handle_post(b"", now);
    assert!(matches!(acs.poll_reply(), Some(Reply::Envelope(s)) if s.contains("FactoryReset")));
    let deadline = acs.deadline().expect("deadline while waiting");
    assert_eq!(deadline, now + Duration::from_secs(30));
    acs.handle_timeout(now + Duration::from_secs(29));
    assert!(!acs.is_done());
    acs.handle_timeout(deadline);
    assert!(acs.is_done());
    assert_eq!(acs.poll_event(), Some(AcsEvent::Failed { error: SessionError::Timeout, outstanding: Some(req) }));
}

#[test]
fn cpe_answers_unknown_and_malformed_requests_with_faults() {
    let now = Instant::now();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform(&["1 BOOT"]), vec![], now);
    let _ = cpe.poll_transmit();
    let resp =
        Envelope::new(CwmpNs::V1_2, Some("cpe-1".into()), Body::InformResponse(InformResponse { max_envelopes: 1 }));
    cpe.handle_response(200, resp.encode().as_bytes(), now);
    assert_eq!(cpe.poll_transmit(), Some(Transmit::Empty));
    let unknown = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap:Body><cwmp:Frobnicate/></soap:Body></soap:Envelope>"#;
    cpe.handle_response(200, unknown.as_bytes(), now);
    let Some(Transmit::Envelope(fault)) = cpe.poll_transmit() else { panic!("no fault sent") };
    let env = Envelope::decode(fault.as_bytes(), &Limits::default()).expect("fault decodes");
    assert!(matches!(env.body, Body::Fault(f) if f.code == FaultCode::MethodNotSupported));
    let bad_arg = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap:Body><cwmp:AddObject/></soap:Body></soap:Envelope>"#;
    cpe.handle_response(200, bad_arg.as_bytes(), now);
    let Some(Transmit::Envelope(fault)) = cpe.poll_transmit() else { panic!("no fault sent") };
    let env = Envelope::decode(fault.as_bytes(), &Limits::default()).expect("fault decodes");
    assert!(matches!(env.body, Body::Fault(f) if f.code == FaultCode::InvalidArguments));
    cpe.handle_response(204, b"", now);
    assert!(cpe.is_done(), "the empty POST was sent earlier, so the 204 ends the session");
    assert_eq!(cpe.poll_transmit(), None);
    let events: Vec<_> = std::iter::from_fn(|| cpe.poll_event()).collect();
    assert_eq!(events.last(), Some(&CpeEvent::Ended { unsent: vec![] }));
}

#[test]
fn acs_answers_garbage_with_a_fault() {
    let now = Instant::now();
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    acs.handle_post(b"<not-xml", now);
    let Some(Reply::Envelope(reply)) = acs.poll_reply() else { panic!("no reply") };
    let env = Envelope::decode(reply.as_bytes(), &Limits::default()).expect("fault decodes");
    assert!(matches!(env.body, Body::Fault(f) if f.code == FaultCode::AcsInvalidArguments));
    assert!(matches!(acs.poll_event(), Some(AcsEvent::Failed { error: SessionError::Decode(_), .. })));
}

#[test]
fn cpe_fails_on_http_error_and_retry_fault() {
    let now = Instant::now();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform(&["2 PERIODIC"]), vec![], now);
    let _ = cpe.poll_transmit();
    cpe.handle_response(503, b"", now);
    assert_eq!(cpe.poll_event(), Some(CpeEvent::Failed(SessionError::HttpStatus(503))));

    let mut cpe = CpeSession::new(CpeConfig::default(), inform(&["2 PERIODIC"]), vec![], now);
    let _ = cpe.poll_transmit();
    let f = Envelope::new(CwmpNs::V1_2, None, Body::Fault(Fault::new(FaultCode::AcsRetryRequest)));
    cpe.handle_response(200, f.encode().as_bytes(), now);
    assert!(
        matches!(cpe.poll_event(), Some(CpeEvent::Failed(SessionError::Fault(f))) if f.code == FaultCode::AcsRetryRequest)
    );
    assert!(cpe.is_done());
}

#[test]
fn requests_queued_in_answer_to_a_response_go_out_in_the_same_session() {
    let now = Instant::now();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform(&["1 BOOT"]), vec![], now);
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    let mut posts = Vec::new();
    while let Some(tx) = cpe.poll_transmit() {
        let body = match tx {
            Transmit::Envelope(s) => s,
            Transmit::Empty => String::new(),
        };
        posts.push(if body.is_empty() { "(empty)".to_string() } else { method_of(&body) });
        acs.handle_post(body.as_bytes(), now);
        while let Some(ev) = acs.poll_event() {
            match ev {
                AcsEvent::Inform { .. } => acs
                    .queue_request(Body::GetParameterValues(GetParameterValues { parameter_names: vec!["A".into()] })),
                // A follow-up decided only once the answer is known (as a task's next step is).
                AcsEvent::Response { response: Body::GetParameterValuesResponse(_), .. } => {
                    acs.queue_request(Body::Reboot(Reboot { command_key: "k".into() }))
                }
                _ => {}
            }
        }
        match acs.poll_reply().expect("reply") {
            Reply::Envelope(s) => cpe.handle_response(200, s.as_bytes(), now),
            Reply::NoContent => cpe.handle_response(204, b"", now),
        }
        while let Some(ev) = cpe.poll_event() {
            if let CpeEvent::Request(req) = &ev {
                let resp = match req {
                    Body::Reboot(_) => Body::RebootResponse(RebootResponse {}),
                    other => answer(other),
                };
                cpe.respond(resp, now).expect("respond");
            }
        }
    }
    assert_eq!(posts, ["Inform", "(empty)", "GetParameterValuesResponse", "RebootResponse"]);
    assert!(acs.is_done() && cpe.is_done());
}

#[test]
fn an_answer_larger_than_an_acs_takes_becomes_fault_9004_and_the_session_goes_on() {
    let now = Instant::now();
    let small = Limits { max_items: 3, max_body: 2_000, ..Limits::default() };
    let cfg = CpeConfig { send_limits: small, ..CpeConfig::default() };
    let mut cpe = CpeSession::new(cfg, inform(&["6 CONNECTION REQUEST"]), vec![], now);
    let _ = cpe.poll_transmit();
    let resp =
        Envelope::new(CwmpNs::V1_2, Some("cpe-1".into()), Body::InformResponse(InformResponse { max_envelopes: 1 }));
    cpe.handle_response(200, resp.encode().as_bytes(), now);
    assert_eq!(cpe.poll_transmit(), Some(Transmit::Empty));
    let gpv = |id: &str| {
        let req = Body::GetParameterValues(GetParameterValues { parameter_names: vec!["Device.".into()] });
        Envelope::new(CwmpNs::V1_2, Some(id.into()), req).encode()
    };
    let answer = |n: usize, len: usize| {
        Body::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: (0..n)
                .map(|i| ParameterValue::new(format!("Device.P{i}"), Value::String("x".repeat(len))))
                .collect(),
        })
    };
    let sent = |cpe: &mut CpeSession| {
        let Some(Transmit::Envelope(x)) = cpe.poll_transmit() else { panic!("nothing sent") };
        Envelope::decode(x.as_bytes(), &Limits::default()).expect("decodes")
    };
    // Within the limits: sent as it is.
    cpe.handle_response(200, gpv("a1").as_bytes(), now);
    while cpe.poll_event().is_some() {}
    cpe.respond(answer(3, 10), now).expect("respond");
    let env = sent(&mut cpe);
    assert_eq!(env.header.id.as_deref(), Some("a1"));
    assert!(matches!(env.body, Body::GetParameterValuesResponse(r) if r.parameter_list.len() == 3));
    // More items than allowed: 9004 naming the count, under the request's ID.
    cpe.handle_response(200, gpv("a2").as_bytes(), now);
    while cpe.poll_event().is_some() {}
    cpe.respond(answer(4, 10), now).expect("respond");
    let env = sent(&mut cpe);
    assert_eq!(env.header.id.as_deref(), Some("a2"));
    match env.body {
        Body::Fault(f) => {
            assert_eq!(f.code, FaultCode::ResourcesExceeded);
            assert!(f.string.contains("4 parameters, more than the 3"), "{}", f.string);
        }
        other => panic!("expected 9004, got {other:?}"),
    }
    // Few items but too many bytes: 9004 naming the size.
    cpe.handle_response(200, gpv("a3").as_bytes(), now);
    while cpe.poll_event().is_some() {}
    cpe.respond(answer(2, 1_500), now).expect("respond");
    match sent(&mut cpe).body {
        Body::Fault(f) => {
            assert_eq!(f.code, FaultCode::ResourcesExceeded);
            assert!(f.string.contains("more than the 2000"), "{}", f.string);
        }
        other => panic!("expected 9004, got {other:?}"),
    }
    // The session goes on to its end (its empty POST went out before).
    cpe.handle_response(204, b"", now);
    assert!(cpe.is_done());
    let events: Vec<_> = std::iter::from_fn(|| cpe.poll_event()).collect();
    assert_eq!(events.last(), Some(&CpeEvent::Ended { unsent: vec![] }));
}
