//! Outside input over the CWMP codec's limits, sent to the `acs` binary by a CPE that logs in
//! properly (Digest, the tests' credential): an Inform carrying a 20,000-segment parameter name,
//! a GetParameterValuesResponse carrying one, an Inform with more parameters than `MAX_ITEMS`
//! and one declaring more. Each is answered with the CWMP fault for the ACS's role (8003 invalid
//! arguments, 8004 resources exceeded), stores nothing, and `GET /devices` still answers after it
//! (a name like that once overflowed the stack of every later `GET /devices`).

use std::sync::Arc;
use std::time::Duration;

use acs::sim::SimCpe;
use bytes::Bytes;
use cwmp::{
    Body, CwmpNs, Envelope, FaultCode, Limits, ParameterValue, Value, MAX_ITEMS, MAX_NAME_BYTES, MAX_NAME_SEGMENTS,
};
use http_body_util::Full;
use http_shell::cpe::{Basic, Link};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use test_support::acs::{AcsCommand, AcsProcess, CPE};
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "limits-test-token-0123";
/// A body large enough to carry more than `MAX_ITEMS` parameters, so that the item limit and
/// not the body limit is what refuses them.
const BODY: usize = 16 << 20;

/// A name of `segments` one-letter segments under `Device.X_Deep.`.
fn deep_name(segments: usize) -> String {
    let mut name = String::from("Device.X_Deep");
    for _ in 3..segments {
        name.push_str(".a");
    }
    name.push_str(".z");
    name
}

/// The simulated device's own Inform (BOOTSTRAP), changed by `edit`.
fn inform(sim: &SimCpe, edit: impl FnOnce(&mut cwmp::Inform)) -> String {
    let env = Envelope::decode(sim.inform_envelope(&["0 BOOTSTRAP", "1 BOOT"]).as_bytes(), &Limits::default())
        .expect("the simulator's Inform decodes");
    let Body::Inform(mut inform) = env.body else { panic!("not an Inform") };
    edit(&mut inform);
    Envelope::new(CwmpNs::V1_2, Some("limits-1".into()), Body::Inform(inform)).encode()
}

/// A CPE's link to the ACS, logging in with the tests' credential.
async fn link(acs: &AcsProcess) -> Link {
    Link::open(None, &format!("http://{}/", acs.cwmp), None, CPE.0, CPE.1, Basic::WhenOffered).await.expect("connect")
}

/// One POST opening a session, logged in as the tests' CPE: an empty POST fetches a Digest
/// challenge (the ACS answers 401 before it reads a body), then `body` goes with its answer, so
/// a body of megabytes is sent once and read by the ACS.
async fn post_as_cpe(acs: &AcsProcess, body: String) -> (StatusCode, Bytes) {
    let url = format!("http://{}/", acs.cwmp);
    let client = http_shell::client::Builder::new().timeout(Duration::from_secs(120)).build();
    let request = |auth: Option<&str>, body: Bytes| {
        let mut r = Request::post(&url).header(CONTENT_TYPE, "text/xml; charset=utf-8");
        if let Some(a) = auth {
            r = r.header(AUTHORIZATION, a);
        }
        r.body(Full::new(body)).expect("request")
    };
    let challenge = client.fetch(request(None, Bytes::new()), 1 << 20).await.expect("the challenge");
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    let auth = challenge
        .headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find_map(|c| cwmp::auth::answer(c, "POST", "/", CPE.0, CPE.1, "limits-cnonce"))
        .expect("a Digest challenge");
    let reply = client.fetch(request(Some(&auth), Bytes::from(body)), 1 << 20).await.expect("the POST");
    (reply.status, reply.body)
}

/// The size an envelope's `ParameterValueStruct` array declares.
fn declared_size(body: &str) -> Option<usize> {
    body.split("ParameterValueStruct[").nth(1)?.split(']').next()?.parse().ok()
}

/// The fault in an ACS's answer.
fn fault_of(status: StatusCode, body: &[u8]) -> cwmp::Fault {
    let text = String::from_utf8_lossy(body);
    let env = Envelope::decode(body, &Limits::default()).unwrap_or_else(|e| panic!("{status}: {e}: {text}"));
    match env.body {
        Body::Fault(f) => f,
        other => panic!("{status}: not a fault: {}", other.method_name()),
    }
}

/// `GET /devices` answers, and lists `present` and none of `absent`.
async fn devices_answer(oss: &NbiClient<'_>, present: &[String], absent: &[String]) -> String {
    let (status, devices) = oss.call(Method::GET, "/devices", None).await;
    assert_eq!(status, 200, "GET /devices: {devices}");
    let text = devices.to_string();
    for d in present {
        assert!(text.contains(d.as_str()), "{d} is not listed: {text}");
    }
    for d in absent {
        assert!(!text.contains(d.as_str()), "{d} was stored: {text}");
    }
    assert!(!text.contains("X_Deep"), "a refused name was stored: {text}");
    text
}

async fn start(dir: &TempDir) -> (AcsProcess, Arc<SimCpe>) {
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
        .config(&format!("[cwmp]\nmax_body_bytes = {BODY}\n"))
        .start();
    let sim = acs.sim("limits-ok").await;
    (acs, sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informs_over_the_codec_limits_are_refused_and_store_nothing() {
    let dir = TempDir::new("acs-limits-inform");
    let (acs, good) = start(&dir).await;
    let oss = NbiClient::new(acs.nbi, TOKEN);
    good.session(&[]).await.expect("an ordinary device's session");
    let good_id = good.device_id();

    // A 20,000-segment name in an Inform (40,011 bytes), and one within MAX_NAME_BYTES but a
    // segment deeper than MAX_NAME_SEGMENTS: fault 8003 with the reason, the session not
    // opened, nothing stored.
    let deep = acs.sim("limits-deep").await;
    for (segments, reason) in [
        (20_000, format!("more than {MAX_NAME_BYTES}")),
        (MAX_NAME_SEGMENTS + 1, format!("{} segments, more than {MAX_NAME_SEGMENTS}", MAX_NAME_SEGMENTS + 1)),
    ] {
        let name = deep_name(segments);
        assert_eq!(cwmp::name_segments(&name), segments);
        let body = inform(&deep, |i| i.parameter_list.push(ParameterValue::new(name, Value::Int(1))));
        let (status, reply) = post_as_cpe(&acs, body).await;
        let f = fault_of(status, &reply);
        assert_eq!(f.code, FaultCode::AcsInvalidArguments, "{f:?}");
        assert!(f.string.contains(&reason), "{segments} segments: {f:?}");
        devices_answer(&oss, std::slice::from_ref(&good_id), &[deep.device_id()]).await;
    }

    // More parameters than MAX_ITEMS (within the body limit): fault 8004.
    let many = acs.sim("limits-many").await;
    let body = inform(&many, |i| {
        for n in 0..=MAX_ITEMS {
            i.parameter_list.push(ParameterValue::new(format!("Device.X_Many.P{n}"), Value::Int(1)));
        }
    });
    assert!(body.len() < BODY, "{} bytes", body.len());
    // Without the declared size (a CPE need not declare it), so the children are counted.
    let held = declared_size(&body).expect("the encoder declares the size");
    assert!(held > MAX_ITEMS, "{held}");
    let body = body.replace(&format!(" soap-enc:arrayType=\"cwmp:ParameterValueStruct[{held}]\""), "");
    assert_eq!(declared_size(&body), None);
    let (status, reply) = post_as_cpe(&acs, body).await;
    let f = fault_of(status, &reply);
    assert_eq!(f.code, FaultCode::AcsResourcesExceeded, "{f:?}");
    // And a declared array size over it, with one parameter held.
    let declared = acs.sim("limits-declared").await;
    let body = inform(&declared, |_| {});
    let n = declared_size(&body).expect("an arrayType of ParameterValueStruct");
    let body = body.replace(&format!("ParameterValueStruct[{n}]"), &format!("ParameterValueStruct[{}]", MAX_ITEMS + 1));
    let (status, reply) = post_as_cpe(&acs, body).await;
    assert_eq!(fault_of(status, &reply).code, FaultCode::AcsResourcesExceeded);
    let text = devices_answer(&oss, std::slice::from_ref(&good_id), &[many.device_id(), declared.device_id()]).await;
    assert!(!text.contains("X_Many"), "{text}");

    // The same devices inform normally afterwards.
    deep.session(&[]).await.expect("the refused device's next, ordinary session");
    devices_answer(&oss, &[good_id, deep.device_id()], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_parameter_values_response_over_the_limits_is_refused_and_stores_nothing() {
    let dir = TempDir::new("acs-limits-gpv");
    let (acs, sim) = start(&dir).await;
    let oss = NbiClient::new(acs.nbi, TOKEN);
    sim.session(&[]).await.expect("the first session");
    let dev = sim.device_id();
    let read = json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]});
    let (s, task) = oss.call(Method::POST, &format!("/devices/{}/tasks", enc(&dev)), Some(read)).await;
    assert!(s == 200 || s == 202, "{s} {task}");

    // The next session, driven by hand: the device answers every request as it would, except
    // that its GetParameterValuesResponse carries a 20,000-segment name.
    let mut link = link(&acs).await;
    let inform = Envelope::new(
        CwmpNs::V1_2,
        Some("gpv-1".into()),
        match Envelope::decode(sim.inform_envelope(&["2 PERIODIC"]).as_bytes(), &Limits::default())
            .expect("decodes")
            .body
        {
            b @ Body::Inform(_) => b,
            _ => panic!("not an Inform"),
        },
    )
    .encode();
    let (status, _) = link.post(&inform).await.expect("Inform");
    assert_eq!(status, StatusCode::OK);
    let (mut status, mut reply) = link.post("").await.expect("empty POST");
    let mut refused = None;
    for _ in 0..10 {
        if status == StatusCode::NO_CONTENT {
            break;
        }
        let req = Envelope::decode(&reply, &Limits::default()).expect("the ACS's request decodes");
        let mut answer = sim.apply(&req.body);
        let gpv = matches!(req.body, Body::GetParameterValues(_));
        if let (true, Body::GetParameterValuesResponse(r)) = (gpv, &mut answer) {
            r.parameter_list.push(ParameterValue::new(deep_name(20_000), Value::Int(1)));
        }
        let (s, r) =
            link.post(&Envelope::new(CwmpNs::V1_2, req.header.id.clone(), answer).encode()).await.expect("answer");
        (status, reply) = (s, r);
        if gpv {
            refused = Some(fault_of(status, &reply));
            break;
        }
    }
    let f = refused.expect("the ACS asked for the values");
    assert_eq!(f.code, FaultCode::AcsInvalidArguments, "{f:?}");

    // Nothing of the response was stored, the task is not done, GET /devices answers.
    devices_answer(&oss, std::slice::from_ref(&dev), &[]).await;
    let (_, tasks) = oss.call(Method::GET, "/tasks", None).await;
    let done = tasks
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["device"] == dev.as_str() && t["name"] == "getParameterValues" && t["status"] == "done");
    assert!(!done, "the refused response completed the task: {tasks}");
}
