//! The `acs` binary driven from outside: simulated CPEs (Digest to the ACS, Digest connection
//! requests back) and an OSS using the GenieACS-compatible NBI. Includes SIGKILL with tasks
//! queued and in flight: none lost, none run twice.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use acs::sim::SimCpe;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::{json, Value};
use test_support::acs::{cwmp_post, digest, finish_session, sim_host, AcsCommand};
use test_support::http::Http;
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";

fn acs_command(dir: &TempDir) -> AcsCommand {
    AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_drives_a_cpe_through_the_nbi() {
    let dir = TempDir::new("acs-e2e-drive");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("e2e-1").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();

    // The device is known, with its Inform parameters cached.
    let (s, devices) =
        oss.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": id}).to_string())), None).await;
    assert_eq!(s, 200);
    assert_eq!(devices[0]["_id"], json!(id));
    assert_eq!(devices[0]["Device"]["DeviceInfo"]["SoftwareVersion"]["_value"], json!(env!("CARGO_PKG_VERSION")));

    // A read through a connection request answers within the timeout.
    let path = format!("/devices/{}/tasks?connection_request&timeout=8000", enc(&id));
    let r = oss
        .send(
            Method::POST,
            &path,
            Some(json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SerialNumber"]})),
        )
        .await;
    assert_eq!((r.status, r.connection_request_error()), (200, None), "{}", r.json);
    let task = r.json;
    assert_eq!(task["status"], json!("done"));
    assert_eq!(task["result"]["parameters"][0][1], json!("e2e-1"));

    // A set reaches the device's data model, and the cache follows.
    let (s, task) = oss
        .call(
            Method::POST,
            &path,
            Some(json!({"name": "setParameterValues", "parameterValues": [["Device.DeviceInfo.ProvisioningCode", "qemu:///system", "xsd:string"]]})),
        )
        .await;
    assert_eq!(s, 200, "{task}");
    assert_eq!(task["status"], json!("done"), "{task}");
    assert_eq!(
        acs::sim::values(&sim, "Device.DeviceInfo.ProvisioningCode")[0].value,
        cwmp::Value::String("qemu:///system".into())
    );
    let (_, devices) = oss
        .call(
            Method::GET,
            &format!(
                "/devices?query={}&projection=Device.DeviceInfo.ProvisioningCode",
                enc(&json!({"Device.DeviceInfo.ProvisioningCode": "qemu:///system"}).to_string())
            ),
            None,
        )
        .await;
    assert_eq!(devices.as_array().map(Vec::len), Some(1));
    assert!(devices[0].get("_deviceId").is_none(), "projection applies");

    // AddObject with values, then DeleteObject.
    let (s, task) = oss.call(Method::POST, &path, Some(json!({"name": "addObject", "objectName": "Device.X_VRGW-ORG_Virtualization.Instance", "parameterValues": [["Subscriber", "alice"], ["CVLAN", 7, "xsd:unsignedInt"]]}))).await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    let n = task["result"]["instance"].as_u64().expect("instance number");
    assert_eq!(
        acs::sim::values(&sim, &format!("Device.X_VRGW-ORG_Virtualization.Instance.{n}.Subscriber"))[0].value,
        cwmp::Value::String("alice".into())
    );
    let (s, task) = oss
        .call(
            Method::POST,
            &path,
            Some(json!({"name": "deleteObject", "objectName": format!("Device.X_VRGW-ORG_Virtualization.Instance.{n}.")})),
        )
        .await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");

    // A set the device refuses becomes a fault (202 as GenieACS answers a faulted task), listed,
    // retried on request, and deleted.
    let (s, task) = oss.call(Method::POST, &path, Some(json!({"name": "setParameterValues", "parameterValues": [["Device.DeviceInfo.UpTime", 5, "xsd:unsignedInt"]]}))).await;
    assert_eq!(s, 202);
    assert_eq!(task["status"], json!("fault"), "{task}");
    assert_eq!(task["fault"]["code"], json!("cwmp.9003"));
    let spv = &task["fault"]["detail"]["setParameterValuesFault"][0];
    assert_eq!(
        (&spv["parameterName"], &spv["faultCode"]),
        (&json!("Device.DeviceInfo.UpTime"), &json!("9008")),
        "{task}"
    );
    // The session the task faulted in may still be open: a retry then would run it again there.
    sim.idle().await;
    let (_, faults) = oss.call(Method::GET, "/faults", None).await;
    let fault_id = faults[0]["_id"].as_str().expect("fault id").to_string();
    let task_id = task["_id"].as_str().expect("task id").to_string();
    assert_eq!(fault_id, format!("{id}:task_{task_id}"));
    assert_eq!(oss.call(Method::POST, &format!("/tasks/{task_id}/retry"), None).await.0, 200);
    assert_eq!(oss.call(Method::DELETE, &format!("/tasks/{task_id}"), None).await.0, 200);
    assert_eq!(oss.call(Method::GET, "/faults", None).await.1, json!([]), "went with its task");
    assert_eq!(oss.call(Method::DELETE, &format!("/faults/{fault_id}"), None).await.0, 200, "as GenieACS answers");

    // Bad input: precise statuses with reasons, nothing stored.
    let (s, _) = oss.with_token(None).call(Method::GET, "/devices", None).await;
    assert_eq!(s, 401);
    let (s, _) = oss.with_token(Some("wrong")).call(Method::GET, "/devices", None).await;
    assert_eq!(s, 401);
    let (s, e) = oss.call(Method::GET, "/devices?query=%7Bnot-json", None).await;
    assert_eq!(s, 400);
    assert!(e["error"].as_str().unwrap_or("").contains("not JSON"));
    let (s, e) = oss.call(Method::GET, &format!("/devices?query={}", enc(r#"{"_id":{"$where":"1"}}"#)), None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unsupported operator $where")));
    let (s, e) = oss.call(Method::POST, &path, Some(json!({"name": "fly"}))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unknown task \"fly\"")));
    let (s, _) = oss.call(Method::POST, "/devices/nobody/tasks", Some(json!({"name": "reboot"}))).await;
    assert_eq!(s, 404);
    let (_, tasks) = oss.call(Method::GET, "/tasks", None).await;
    assert!(tasks.as_array().is_some_and(|t| t.iter().all(|t| t["name"] != json!("fly"))));

    // A CPE with the wrong password gets no session; an unreachable device gets a clear 202.
    let cr = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let intruder = SimCpe::new(
        "e2e-2",
        &format!("http://{}/", acs.cwmp),
        "cpe",
        "wrong",
        cr.local_addr().expect("addr"),
        ("cr", "cr-secret"),
    );
    let err = intruder.session(&[]).await.expect_err("refused");
    assert!(err.contains("401"), "{err}");
    drop(cr);
    let lonely = SimCpe::new(
        "e2e-3",
        &format!("http://{}/", acs.cwmp),
        "cpe",
        "cpe-secret",
        "127.0.0.1:9".parse().expect("addr"),
        ("cr", "cr-secret"),
    );
    lonely.session(&[]).await.expect("bootstrap");
    let r = oss
        .send(
            Method::POST,
            &format!("/devices/{}/tasks?connection_request&timeout=2000", enc(&lonely.device_id())),
            Some(json!({"name": "reboot"})),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json["status"], json!("pending"));
    assert!(
        r.connection_request_error().is_some_and(|c| c.contains("device unreachable at http://127.0.0.1:9/")),
        "connection request error in words"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_task_and_runs_none_twice() {
    let dir = TempDir::new("acs-e2e-kill");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("kill-1").await;
    sim.session(&[]).await.expect("bootstrap");
    let id = sim.device_id();
    let tasks_path = format!("/devices/{}/tasks", enc(&id));
    let set =
        |v: &str| json!({"name": "setParameterValues", "parameterValues": [["Device.DeviceInfo.ProvisioningCode", v]]});
    // Two tasks queued without a connection request.
    assert_eq!(oss.call(Method::POST, &tasks_path, Some(set("first"))).await.0, 202);
    assert_eq!(oss.call(Method::POST, &tasks_path, Some(set("second"))).await.0, 202);

    // A session by hand: the first task goes out, the CPE applies it, and the ACS dies (SIGKILL)
    // before it hears the answer.
    let http = Http::new();
    let inform = sim.inform_envelope(&["2 PERIODIC"]);
    let first = cwmp_post(&http, acs.cwmp, inform.clone(), None, None).await;
    assert_eq!(first.status, 401);
    let auth = digest(&first.challenges, "cpe", "cpe-secret", "abcd");
    let opened = cwmp_post(&http, acs.cwmp, inform, None, Some(&auth)).await;
    assert_eq!(opened.status, 200);
    let cookie = opened.cookie.expect("a session cookie");
    let reply = cwmp_post(&http, acs.cwmp, Bytes::new(), Some(&cookie), None).await;
    assert_eq!(reply.status, 200);
    let body = reply.body;
    let env = cwmp::Envelope::decode(&body, &cwmp::Limits::default()).expect("request");
    let cwmp::Body::SetParameterValues(spv) = &env.body else { panic!("{:?}", env.body) };
    assert_eq!(spv.parameter_list[0].value, cwmp::Value::String("first".into()));
    let applied = sim.apply(&env.body);
    assert!(matches!(applied, cwmp::Body::SetParameterValuesResponse(_)));
    let (cwmp_addr, nbi_addr) = (acs.cwmp, acs.nbi);
    drop(acs); // SIGKILL (Child::kill)

    let acs = acs_command(&dir).cwmp(cwmp_addr).nbi(nbi_addr).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    // The next session: the sent task is recognised as applied by the ParameterKey the device
    // reports; the queued one runs once.
    sim.session(&[]).await.expect("session after restart");
    let done = json!({"device": id, "status": "done"});
    let (_, tasks) = oss.call(Method::GET, &format!("/tasks?query={}", enc(&done.to_string())), None).await;
    let tasks = tasks.as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(tasks.iter().all(|t| t["status"] == json!("done")), "{tasks:?}");
    assert_eq!(tasks[0]["result"]["confirmed"], json!("by the key the device reports"));
    // Three sets: the connection-request credentials the ACS gave at bootstrap, then each task's
    // once.
    assert_eq!(sim.sets_applied.load(Ordering::SeqCst), 3, "each set ran exactly once");
    assert_eq!(
        acs::sim::values(&sim, "Device.DeviceInfo.ProvisioningCode")[0].value,
        cwmp::Value::String("second".into())
    );
}

/// Opens a session by hand for `sim` (Digest on the second try): its cookie.
async fn open_session(http: &Http, addr: SocketAddr, sim: &SimCpe) -> String {
    let inform = sim.inform_envelope(&["2 PERIODIC"]);
    let first = cwmp_post(http, addr, inform.clone(), None, None).await;
    assert_eq!(first.status, 401);
    let auth = digest(&first.challenges, "cpe", "cpe-secret", "abcd");
    let opened = cwmp_post(http, addr, inform, None, Some(&auth)).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    opened.cookie.expect("a session cookie")
}

/// An HTTP receiver for webhooks that fails the first delivery (500) and records the rest.
async fn hook_receiver() -> (SocketAddr, Arc<std::sync::Mutex<Vec<Value>>>) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = l.accept().await else { return };
            let (g, calls) = (g.clone(), calls.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (g, calls) = (g.clone(), calls.clone());
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        let mut r = hyper::Response::new(Full::new(Bytes::new()));
                        if n == 0 {
                            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                        } else if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                            g.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                        }
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_files_bulk_webhooks_and_bad_cwmp_input() {
    let dir = TempDir::new("acs-e2e-more");
    let (hook, got) = hook_receiver().await;
    let conf = dir.join("acs.toml");
    std::fs::write(&conf, format!("[cwmp]\nsession_timeout_secs = 30\nmax_body_bytes = 65536\n\n[[webhooks]]\nurl = \"http://{hook}/hook\"\nevents = [\"0 BOOTSTRAP\", \"task.done\"]\n")).expect("config");
    let acs = acs_command(&dir).config(&std::fs::read_to_string(&conf).expect("config")).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);

    // A preset: on BOOTSTRAP, SimCPE devices get a provisioning code and a tag.
    let preset = json!({"precondition": {"_deviceId._ProductClass": "SimCPE"}, "events": {"0 BOOTSTRAP": true},
        "configurations": [{"type": "value", "name": "Device.DeviceInfo.ProvisioningCode", "value": "lab-1"}, {"type": "add_tag", "tag": "provisioned"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/lab", Some(preset)).await.0, 200);
    let (s, e) = oss.call(Method::PUT, "/presets/bad", Some(json!({"configurations": [{"type": "launch"}]}))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unknown configuration type \"launch\"")));
    let sim = acs.sim("more-1").await;
    sim.session(&[]).await.expect("bootstrap");
    // The preset's task was queued during the BOOTSTRAP session and ran in it.
    assert_eq!(
        acs::sim::values(&sim, "Device.DeviceInfo.ProvisioningCode")[0].value,
        cwmp::Value::String("lab-1".into())
    );
    let id = sim.device_id();
    let (_, devices) = oss
        .call(Method::GET, &format!("/devices?query={}", enc(&json!({"_tags": "provisioned"}).to_string())), None)
        .await;
    assert_eq!(devices.as_array().map(Vec::len), Some(1));

    // A file, served to the device by the ACS, downloaded with a Download task.
    let file_type = [("fileType", "1 Firmware Upgrade Image")];
    let put = oss.send_bytes(Method::PUT, "/files/fw-1.bin", &file_type, Bytes::from_static(b"firmware bytes")).await;
    assert_eq!(put.status, 200);
    let path = format!("/devices/{}/tasks?connection_request&timeout=8000", enc(&id));
    let (s, task) = oss
        .call(
            Method::POST,
            &path,
            Some(json!({"name": "download", "fileType": "1 Firmware Upgrade Image", "fileName": "fw-1.bin"})),
        )
        .await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    assert_eq!(task["result"]["transferComplete"], json!(true));
    assert_eq!(sim.downloaded.lock().map(|d| d.clone()).unwrap_or_default(), b"firmware bytes");
    // Anyone else asking the CWMP listener for the file gets 403: without the Download's signed
    // URL, with its signature moved to another device, or for another file.
    let files = |q: &str| {
        let http = Http::new();
        let url = format!("http://{}/files/fw-1.bin{q}", acs.cwmp);
        async move { http.send(Method::GET, &url, &[], Bytes::new()).await }
    };
    let plain = files("").await;
    assert_eq!(plain.status, 403);
    assert!(String::from_utf8_lossy(&plain.body).contains("signed"), "{:?}", plain.body);
    assert_eq!(files(&format!("?device={}&expires=9999999999&sig={}", enc(&id), "0".repeat(64))).await.status, 403);

    // A bulk task on a query.
    let (s, bulk) = oss
        .call(
            Method::POST,
            &format!("/tasks?query={}", enc(&json!({"_tags": "provisioned"}).to_string())),
            Some(json!({"name": "reboot"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(bulk["tasks"].as_array().map(Vec::len), Some(1));
    // On the lifecycle fields too (the device registered, bootstrapped and booted), and a bad
    // query is a 400 with nothing queued.
    let lifecycle = json!({"_registered": {"$gt": "2000-01-01"}, "_lastBoot": {"$exists": true}});
    let (s, bulk) = oss
        .call(
            Method::POST,
            &format!("/tasks?query={}", enc(&lifecycle.to_string())),
            Some(json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]})),
        )
        .await;
    assert_eq!(s, 200, "{bulk}");
    assert_eq!(bulk["tasks"].as_array().map(Vec::len), Some(1), "{bulk}");
    let (s, _) = oss
        .call(
            Method::POST,
            &format!("/tasks?query={}", enc(r#"{"_id":{"$where":"1"}}"#)),
            Some(json!({"name": "reboot"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = oss.call(Method::POST, "/tasks", Some(json!({"name": "reboot"}))).await;
    assert_eq!(s, 400, "a bulk task names its devices");

    // Webhooks arrived despite the receiver's first failure (retried).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events: Vec<Value> = got.lock().map(|g| g.clone()).unwrap_or_default();
        let boot = events.iter().any(|e| e["event"] == json!("0 BOOTSTRAP") && e["device"] == json!(id));
        let done = events.iter().any(|e| e["event"] == json!("task.done"));
        if boot && done {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "webhooks: {events:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Bad CWMP input: a fault or an HTTP status with a reason, nothing stored.
    let http = Http::new();
    // With `auth`, Digest as a CPE does it: an empty POST fetches a challenge, the body goes with
    // the answer (Basic is refused over plain HTTP).
    let post = |body: Vec<u8>, auth: bool| {
        let http = http.clone();
        let addr = acs.cwmp;
        async move {
            let auth = if auth {
                let first = cwmp_post(&http, addr, Bytes::new(), None, None).await;
                assert_eq!(first.status, 401);
                Some(digest(&first.challenges, "cpe", "cpe-secret", "abcd"))
            } else {
                None
            };
            let reply = cwmp_post(&http, addr, body, None, auth.as_deref()).await;
            (reply.status, reply.body)
        }
    };
    let (s, body) = post(b"<not xml".to_vec(), true).await;
    assert_eq!(s, 200);
    let env = cwmp::Envelope::decode(&body, &cwmp::Limits::default()).expect("a SOAP fault");
    assert!(matches!(env.body, cwmp::Body::Fault(ref f) if f.code == cwmp::FaultCode::AcsInvalidArguments), "{env:?}");
    // Over the configured 64 KiB limit (small enough to be written whole before the answer).
    let (s, _) = post(vec![b' '; 100 << 10], true).await;
    assert_eq!(s, 413);
    let (s, _) = post(sim.inform_envelope(&["2 PERIODIC"]).into_bytes(), false).await;
    assert_eq!(s, 401);
    let unknown = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"><soap:Body><cwmp:Frobnicate/></soap:Body></soap:Envelope>";
    let (_, body) = post(unknown.as_bytes().to_vec(), true).await;
    let env = cwmp::Envelope::decode(&body, &cwmp::Limits::default()).expect("a SOAP fault");
    assert!(
        matches!(env.body, cwmp::Body::Fault(ref f) if f.code == cwmp::FaultCode::AcsMethodNotSupported),
        "{env:?}"
    );
    // One session per device: a second Inform while one is open gets 503.
    let (s, _) = post(sim.inform_envelope(&["2 PERIODIC"]).into_bytes(), true).await;
    assert_eq!(s, 200, "first session opens");
    let (s, _) = post(sim.inform_envelope(&["2 PERIODIC"]).into_bytes(), true).await;
    assert_eq!(s, 503, "a second concurrent session is refused");
    let (_, devices) = oss.call(Method::GET, "/devices", None).await;
    assert_eq!(devices.as_array().map(Vec::len), Some(1), "bad input stored no device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwmp_over_tls() {
    let dir = TempDir::new("acs-e2e-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).expect("key");
    let acs = acs_command(&dir)
        .portal("127.0.0.1:0")
        .args([
            "--tls-cert",
            dir.join("cert.pem").to_str().unwrap_or_default(),
            "--tls-key",
            dir.join("key.pem").to_str().unwrap_or_default(),
            "--portal-tls-cert",
            dir.join("cert.pem").to_str().unwrap_or_default(),
            "--portal-tls-key",
            dir.join("key.pem").to_str().unwrap_or_default(),
        ])
        .start();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(acs.cwmp).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls =
        tokio_rustls::TlsConnector::from(Arc::new(config.clone())).connect(name, tcp).await.expect("TLS handshake");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.expect("http");
    tokio::spawn(conn);
    let cr = "127.0.0.1:9".parse().expect("addr");
    let sim = SimCpe::new("tls-1", "https://localhost/", "cpe", "cpe-secret", cr, ("cr", "cr-secret"));
    use base64::Engine as _;
    let req = Request::post("/")
        .header("host", "localhost")
        .header(
            "authorization",
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("cpe:cpe-secret")),
        )
        .body(Full::new(Bytes::from(sim.inform_envelope(&["0 BOOTSTRAP"]))))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let env = cwmp::Envelope::decode(&body, &cwmp::Limits::default()).expect("envelope");
    assert!(matches!(env.body, cwmp::Body::InformResponse(_)));
    // Plain HTTP to the TLS port gets no CWMP answer.
    let plain = Http::new().try_send(Method::POST, &format!("http://{}/", acs.cwmp), &[], Bytes::new()).await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status != 200));
    // The customer web form over TLS with the same certificate.
    let tcp = tokio::net::TcpStream::connect(acs.portal.expect("portal address")).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls =
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("portal TLS handshake");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.expect("http");
    tokio::spawn(conn);
    let resp = sender
        .send_request(Request::get("/login").header("host", "localhost").body(Full::new(Bytes::new())).expect("req"))
        .await
        .expect("response");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("<label for=password>Password</label>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_server() {
    let doc: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).expect("docs/openapi.json is JSON");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> =
        acs::nbi::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    served.sort();
    assert_eq!(documented, served, "docs/openapi.json and acs::nbi::ROUTES differ");

    let dir = TempDir::new("acs-e2e-openapi");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "1").replace("{tag}", "t").replace("{name}", "n");
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let (s, body) = oss.call(m, &concrete, Some(json!({}))).await;
        let no_route = body["error"].as_str().is_some_and(|e| e.starts_with("no route"));
        assert!(!no_route, "{method} {path} is documented but not served ({s} {body})");
        let (s, _) =
            oss.with_token(None).call(Method::from_bytes(method.as_bytes()).expect("method"), &concrete, None).await;
        assert_eq!(s, 401, "{method} {path} without a token");
    }
    // A method a documented path does not take: 405 with Allow, as GenieACS answers; an
    // undocumented path: 404.
    let r = oss.send(Method::PATCH, "/devices", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers.get("allow").and_then(|a| a.to_str().ok()), Some("GET, HEAD"));
    let (s, body) = oss.call(Method::GET, "/nowhere", None).await;
    assert_eq!((s, body["error"].as_str()), (404, Some("no route GET /nowhere")));
}

/// Sends a request head announcing a 100-byte body, then only 10 bytes of it, and returns what
/// the server answers (status line first) once it answers or closes.
async fn trickled_body(addr: SocketAddr, head: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("{head}Content-Length: 100\r\n\r\n0123456789").as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(90), s.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_whole_gets_408_and_others_are_served_meanwhile() {
    let dir = TempDir::new("acs-e2e-slow-body");
    let acs = acs_command(&dir).portal("127.0.0.1:0").start();
    let portal = acs.portal.expect("the web form listens");
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let started = std::time::Instant::now();
    let nbi_slow = tokio::spawn(trickled_body(
        acs.nbi,
        format!("PUT /presets/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"),
    ));
    let portal_slow = tokio::spawn(trickled_body(portal, "POST /login HTTP/1.1\r\nHost: x\r\n".into()));
    // While both wait for the rest of their bodies, the NBI still answers others.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (s, _) = oss.call(Method::GET, "/devices", None).await;
    assert_eq!(s, 200);
    let nbi_answer = nbi_slow.await.expect("join");
    let portal_answer = portal_slow.await.expect("join");
    assert!(nbi_answer.starts_with("HTTP/1.1 408"), "{nbi_answer}");
    assert!(nbi_answer.contains("not complete within 30 s"), "{nbi_answer}");
    assert!(portal_answer.starts_with("HTTP/1.1 408"), "{portal_answer}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(29), "{:?}", started.elapsed());
    // Nothing was stored from the broken request.
    let (s, presets) = oss.call(Method::GET, "/presets", None).await;
    assert_eq!(s, 200);
    assert!(!presets.to_string().contains("slow"), "{presets}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_finishes_the_request_in_flight_and_writes_the_store() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new("acs-e2e-sigterm");
    let mut acs = acs_command(&dir).start();
    let sim = acs.sim("term-1").await;
    sim.session(&[]).await.expect("bootstrap");
    let (cwmp, nbi) = (acs.cwmp, acs.nbi);

    // A preset PUT whose body is half sent when SIGTERM arrives.
    let body = json!({"precondition": {"_deviceId._ProductClass": "SimCPE"}, "events": {"1 BOOT": true},
        "configurations": [{"type": "add_tag", "tag": "drained"}]})
    .to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut s = tokio::net::TcpStream::connect(nbi).await.expect("connect");
    let head = format!(
        "PUT /presets/drained HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(format!("{head}{first}").as_bytes()).await.expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    acs.daemon.sigterm();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // No new client is taken any more...
    assert!(tokio::net::TcpStream::connect(nbi).await.is_err(), "the NBI still accepts after SIGTERM");
    // ...the one in flight is answered...
    s.write_all(rest.as_bytes()).await.expect("write the rest");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut answer))
        .await
        .expect("an answer within the drain")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // ...and the process exits cleanly once drained, having written the store.
    let mut daemon = acs.daemon;
    let status = tokio::task::spawn_blocking(move || {
        let status = daemon.terminate(std::time::Duration::from_secs(15));
        (status, daemon.log())
    })
    .await
    .expect("join");
    let (status, log) = status;
    assert!(status.expect("exited on SIGTERM").success(), "{log}");
    assert!(log.contains("stopping: draining the listeners"), "{log}");
    assert!(log.contains("ACS stopped; the store is written"), "{log}");

    // Restarted on the same database: the device and the preset are there.
    let acs = acs_command(&dir).cwmp(cwmp).nbi(nbi).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let (s, presets) = oss.call(Method::GET, "/presets", None).await;
    assert_eq!(s, 200);
    assert!(presets.as_array().expect("presets").iter().any(|p| p["_id"] == json!("drained")), "{presets}");
    let (s, devices) = oss.call(Method::GET, "/devices", None).await;
    assert_eq!(s, 200);
    assert!(devices.as_array().expect("devices").iter().any(|d| d["_id"] == json!(sim.device_id())), "{devices}");
}

#[test]
fn check_config_names_what_is_wrong_and_prints_no_secret() {
    let dir = TempDir::new("acs-e2e-check-config");
    let check_mode = |toml: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let conf = dir.join("acs.toml");
        std::fs::write(&conf, toml).expect("config");
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_acs"))
            .arg("--check-config")
            .arg("--config")
            .arg(&conf)
            .arg("--db")
            .arg(dir.join("acs.db"))
            .output()
            .expect("run acs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let check = |toml: &str| check_mode(toml, 0o600);
    let (code, out, err) = check("[nbi]\ntokens = [\"very-secret-token\"]\n[portal]\nlisten = \"off\"\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("can be read by others"), "{err}");
    // The same file readable by others: said so, still used.
    let (code, _, err) = check_mode("[nbi]\ntokens = [\"very-secret-token\"]\n[portal]\nlisten = \"off\"\n", 0o644);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("can be read by others and holds secrets"), "{err}");
    assert!(out.starts_with("configuration ok: Config {"), "{out}");
    assert!(out.contains("portal_listen: None"), "{out}");
    assert!(!out.contains("very-secret-token") && !err.contains("very-secret-token"), "{out}{err}");
    // Nothing was bound or created: the database does not exist.
    assert!(!dir.join("acs.db").exists());

    let (code, _, err) = check("[cwmp]\ntls_cert = \"/nonexistent.pem\"\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("CWMP's TLS needs both a certificate and a key"), "{err}");
    let (code, _, err) = check("[cwmp]\nlisten = \"nowhere\"\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("acs.toml") && err.contains("line 2") && err.contains("invalid socket address"), "{err}");
    let (code, _, err) = check("[log]\nformat = \"xml\"\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("the log format is text or json, not \"xml\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_open_cwmp_session_finish_and_refuses_new_ones() {
    let dir = TempDir::new("acs-e2e-sigterm-session");
    let mut acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let (a, b) = (acs.sim("drain-a").await, acs.sim("drain-b").await);
    a.session(&[]).await.expect("bootstrap a");
    b.session(&[]).await.expect("bootstrap b");
    // A task for a, queued, to run in the session open at SIGTERM.
    let set =
        json!({"name": "setParameterValues", "parameterValues": [["Device.DeviceInfo.ProvisioningCode", "late"]]});
    assert_eq!(oss.call(Method::POST, &format!("/devices/{}/tasks", enc(&a.device_id())), Some(set)).await.0, 202);

    let http = Http::new();
    let cookie = open_session(&http, acs.cwmp, &a).await;
    acs.daemon.sigterm();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // b's new session is refused, with a time to come back.
    let refused = cwmp_post(&http, acs.cwmp, b.inform_envelope(&["2 PERIODIC"]), None, None).await;
    let body = String::from_utf8_lossy(&refused.body);
    assert_eq!(refused.status, 503, "{body}");
    assert!(body.contains("shutting down"), "{body}");
    // a's session goes on: the task comes, its answers are taken, the session ends.
    let requests = finish_session(&http, acs.cwmp, &a, &cookie).await;
    assert_eq!(requests.first().map(String::as_str), Some("SetParameterValues"), "{requests:?}");
    // The connection-request credentials set at bootstrap, then the task.
    assert_eq!(a.sets_applied.load(Ordering::SeqCst), 2);

    let mut daemon = acs.daemon;
    let (status, log) = tokio::task::spawn_blocking(move || {
        let status = daemon.terminate(std::time::Duration::from_secs(15));
        (status, daemon.log())
    })
    .await
    .expect("join");
    assert!(status.expect("exited on SIGTERM").success(), "{log}");
    assert!(log.contains("letting the open ones finish"), "{log}");
    assert!(!log.contains("still open after"), "{log}");

    // The task's result was recorded before the exit.
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let (_, tasks) = oss
        .call(
            Method::GET,
            &format!("/tasks?query={}", enc(&json!({"device": a.device_id(), "status": "done"}).to_string())),
            None,
        )
        .await;
    assert_eq!(tasks[0]["status"], json!("done"), "{tasks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_cut_by_an_acs_restart_is_taken_up_and_nothing_is_delivered_late() {
    let dir = TempDir::new("acs-e2e-migration-restart");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let src = acs.sim("mig-src").await;
    sim_host(&src, "", true);
    src.session(&[]).await.expect("source bootstrap");
    // The target informs once, then is not reachable: the migration waits on its first step.
    let dst = SimCpe::new(
        "mig-dst",
        &format!("http://{}/", acs.cwmp),
        "cpe",
        "cpe-secret",
        "127.0.0.1:9".parse().expect("addr"),
        ("cr", "cr-secret"),
    );
    sim_host(&dst, "", false);
    dst.session(&[]).await.expect("target bootstrap");
    let migrate = format!("/devices/{}/instances/1/migrate", enc(&src.device_id()));
    let body = json!({"target": dst.device_id(), "mode": "cold-context", "stepTimeout": 60});
    let r = oss.send(Method::POST, &migrate, Some(body.clone())).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let id = r.json["_id"].as_str().expect("id").to_string();
    for _ in 0..100 {
        if oss.call(Method::GET, &format!("/migrations/{id}"), None).await.1["step"] == json!("reading the target") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Meanwhile the instance is locked.
    assert_eq!(oss.send(Method::POST, &migrate, Some(body.clone())).await.status, 409);

    let (cwmp_addr, nbi_addr) = (acs.cwmp, acs.nbi);
    drop(acs); // SIGKILL with the migration running and its step queued for the target
    let acs = acs_command(&dir).cwmp(cwmp_addr).nbi(nbi_addr).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let mut record = Value::Null;
    for _ in 0..200 {
        record = oss.call(Method::GET, &format!("/migrations/{id}"), None).await.1;
        if record["status"] != json!("running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(record["status"], json!("failed"), "{record}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("interrupted by an ACS restart") && error.contains("runs at 00A0B1-SimCPE-mig%2Dsrc"),
        "{record}"
    );
    // The step queued before the restart is gone: the target, informing again, is sent nothing.
    let (_, tasks) = oss
        .call(Method::GET, &format!("/tasks?query={}", enc(&json!({"device": dst.device_id()}).to_string())), None)
        .await;
    assert_eq!(tasks, json!([]), "no step of the old run left for the target");
    let before = dst.sets_applied.load(Ordering::SeqCst);
    dst.session(&["2 PERIODIC"]).await.expect("target informs");
    assert_eq!(dst.sets_applied.load(Ordering::SeqCst), before);
    assert!(
        acs::sim::values(&dst, "Device.X_VRGW-ORG_Virtualization.Instance.").is_empty(),
        "nothing made at the target"
    );
    // The instance is no longer locked: a new migration of it is accepted.
    let r = oss
        .send(
            Method::POST,
            &migrate,
            Some(json!({"target": dst.device_id(), "mode": "cold-context", "stepTimeout": 2})),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert!(acs.daemon.log().contains("no ACS orchestrating it"), "the take-over is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inform_with_a_cpe_quirk_is_taken_and_the_quirk_logged() {
    let dir = TempDir::new("acs-e2e-quirk");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("quirky").await;
    // A CurrentTime that is no dateTime, as some CPEs send before their clock is set.
    let inform = sim.inform_envelope(&["0 BOOTSTRAP"]);
    let start = inform.find("<CurrentTime>").expect("CurrentTime") + "<CurrentTime>".len();
    let end = inform[start..].find("</CurrentTime>").expect("end") + start;
    let quirky = format!("{}not-a-time{}", &inform[..start], &inform[end..]);
    let http = Http::new();
    let first = cwmp_post(&http, acs.cwmp, quirky.clone(), None, None).await;
    let auth = digest(&first.challenges, "cpe", "cpe-secret", "q1");
    let opened = cwmp_post(&http, acs.cwmp, quirky, None, Some(&auth)).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    let env = cwmp::Envelope::decode(&opened.body, &cwmp::Limits::default()).expect("InformResponse");
    assert!(matches!(env.body, cwmp::Body::InformResponse(_)), "{env:?}");
    let (_, devices) = oss.call(Method::GET, "/devices?projection=_id", None).await;
    assert_eq!(devices[0]["_id"], json!(sim.device_id()));
    let log = acs.daemon.log();
    assert!(
        log.lines().any(|l| l.contains("accepted a CPE message CWMP does not allow") && l.contains("not-a-time")),
        "{log}"
    );
}
