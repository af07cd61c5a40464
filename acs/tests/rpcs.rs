//! Every CPE method of CWMP 1.4 as an NBI task against the `acs` binary, and every method a CPE
//! calls on the ACS: the simulated CPE answers the data-model and queue requests and carries out
//! uploads, scheduled downloads, cancellations and deployment-unit changes (more of those in
//! sim_transfers.rs); a session driven by hand here plays what it does not do: a CPE calling
//! RequestDownload, AutonomousTransferComplete, AutonomousDUStateChangeComplete and
//! GetRPCMethods, and PUTs on URLs the ACS did not sign.

use std::net::SocketAddr;
use std::sync::Arc;

use acs::sim::SimCpe;
use bytes::Bytes;
use cwmp::{Body, DateTime, Envelope, TransferFault};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::{json, Value};
use test_support::acs::{cwmp_post, digest, AcsCommand};
use test_support::http::Http;
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";

fn q(query: Value) -> String {
    format!("query={}", enc(&query.to_string()))
}

/// Queues `body` for `id` with a connection request; the task as answered (200: it ran).
async fn run(oss: &NbiClient<'_>, id: &str, body: Value) -> Value {
    let (s, task) = oss.task(id, body.clone()).await;
    assert_eq!(s, 200, "{body} -> {task}");
    assert_eq!(task["status"], json!("done"), "{task}");
    task
}

/// The device as GET /devices shows it.
async fn device(oss: &NbiClient<'_>, id: &str) -> Value {
    let (s, d) = oss.call(Method::GET, &format!("/devices?{}", q(json!({"_id": id}))), None).await;
    assert_eq!(s, 200);
    d[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_model_and_queue_method_is_a_task() {
    let dir = TempDir::new("acs-rpcs-tasks");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("rpcs-1").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let ms = "Device.ManagementServer.";

    // getParameterNames: names, objects and writability.
    let task = run(&oss, &id, json!({"name": "getParameterNames", "parameterPath": ms, "nextLevel": true})).await;
    let names = task["result"]["parameters"].as_array().expect("names").clone();
    assert!(names.contains(&json!([format!("{ms}PeriodicInformInterval"), false, true])), "{names:?}");
    assert!(names.contains(&json!([format!("{ms}ParameterKey"), false, false])), "read-only: {names:?}");
    assert!(names.iter().all(|n| n[0].as_str().is_some_and(|n| n.starts_with(ms) && n != ms)), "{names:?}");

    // setParameterAttributes, read back; the device holds them; getParameterAttributes.
    let interval = format!("{ms}PeriodicInformInterval");
    let task = run(
        &oss,
        &id,
        json!({"name": "setParameterAttributes", "parameterList": [[interval, 2, ["Subscriber"]], [format!("{ms}URL"), 1, null]]}),
    )
    .await;
    assert_eq!(task["parameterList"], json!([[interval, 2, ["Subscriber"]], [format!("{ms}URL"), 1, null]]));
    assert_eq!(task["result"]["parameters"][0], json!([interval, 2, ["Subscriber"]]), "{task}");
    let held = sim.with_model(|m| m.attributes());
    assert!(held.contains(&(interval.clone(), cwmp::Notification::Active, vec!["Subscriber".to_string()])), "{held:?}");
    let task = run(&oss, &id, json!({"name": "getParameterAttributes", "parameterNames": [format!("{ms}URL")]})).await;
    assert_eq!(task["result"]["parameters"], json!([[format!("{ms}URL"), 1, []]]));

    // scheduleInform, getQueuedTransfers, getAllQueuedTransfers and getOptions: the device's
    // answers in the result.
    let task = run(&oss, &id, json!({"name": "scheduleInform", "delaySeconds": 60})).await;
    assert_eq!(task["result"], json!({"status": 0}));
    // The device informs with 3 SCHEDULED and M ScheduleInform under the task's key.
    sim.session(&[]).await.expect("the scheduled session");
    let log = acs.daemon.log();
    assert!(
        log.lines().any(|l| l.contains("Inform") && l.contains("3 SCHEDULED") && l.contains("M ScheduleInform")),
        "{log}"
    );
    let task = run(&oss, &id, json!({"name": "getQueuedTransfers"})).await;
    assert_eq!(task["result"], json!({"transfers": []}));
    let task = run(&oss, &id, json!({"name": "getAllQueuedTransfers"})).await;
    assert_eq!(task["result"], json!({"transfers": []}));
    let task = run(&oss, &id, json!({"name": "getOptions"})).await;
    assert_eq!(task["result"], json!({"options": []}));

    // cancelTransfer of nothing queued and setVouchers on a device that holds no options: the
    // device's faults, recorded as GenieACS records them.
    let path = format!("/devices/{}/tasks?connection_request&timeout=20000", enc(&id));
    for (body, code) in [
        (json!({"name": "cancelTransfer", "commandKey": "nothing"}), "cwmp.9021"),
        (json!({"name": "setVouchers", "voucherList": ["dm91Y2hlcg=="]}), "cwmp.9000"),
    ] {
        let r = oss.send(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(r.status, 202, "{body}: {}", r.json);
        assert_eq!(r.json["fault"]["code"], json!(code), "{}", r.json);
    }

    // Bad tasks: a precise 400, nothing queued.
    let tasks = format!("/devices/{}/tasks", enc(&id));
    for (body, why) in [
        (json!({"name": "getParameterNames", "nextLevel": "yes"}), "nextLevel"),
        (json!({"name": "setParameterAttributes", "parameterList": [["Device.X", 9, null]]}), "notification is 0 to 6"),
        (json!({"name": "setParameterAttributes", "parameterList": [["Device.X", null, null]]}), "neither"),
        (json!({"name": "scheduleInform", "delaySeconds": 0}), "delaySeconds"),
        (json!({"name": "upload"}), "fileType"),
        (json!({"name": "upload", "fileType": "2 Vendor Log File", "fileName": "../x"}), "plain file name"),
        (json!({"name": "cancelTransfer"}), "by task"),
        (json!({"name": "changeDUState", "operations": [{"type": "install"}]}), "url"),
        (
            json!({"name": "scheduleDownload", "fileType": "1 Firmware Upgrade Image", "fileName": "f",
                "timeWindows": [{"windowStart": 10, "windowEnd": 5, "windowMode": "1 At Any Time"}]}),
            "window",
        ),
        (json!({"name": "setVouchers", "voucherList": []}), "voucherList"),
    ] {
        let (s, e) = oss.call(Method::POST, &tasks, Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(why)), "{body}: {e}");
    }
    let pending = json!({"device": id, "status": "pending"});
    assert_eq!(oss.call(Method::GET, &format!("/tasks?{}", q(pending)), None).await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_walks_the_tree_and_forgets_what_is_gone() {
    let dir = TempDir::new("acs-rpcs-refresh");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("rpcs-2").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let table = "Device.X_VRGW-ORG_Virtualization.Template.";
    let row = sim.with_model_mut(|m| m.root_mut().add_object_internal(table).expect("row"));
    let task = run(&oss, &id, json!({"name": "refreshObject", "objectName": "Device.X_VRGW-ORG_Virtualization"})).await;
    let read = task["result"]["parameters"].as_array().expect("values").clone();
    assert!(read.iter().any(|p| p[0] == json!(format!("{table}{row}.Name"))), "{read:?}");
    assert!(read.iter().all(|p| !p[0].as_str().unwrap_or(".").ends_with('.')), "leaves only");
    assert!(device(&oss, &id).await["Device"]["X_VRGW-ORG_Virtualization"]["Template"][row.to_string()].is_object());

    // The row goes on the device; the next refresh forgets it, and only it.
    sim.with_model_mut(|m| m.root_mut().delete_object_internal(&format!("{table}{row}.")).expect("gone"));
    run(&oss, &id, json!({"name": "refreshObject", "objectName": "Device.X_VRGW-ORG_Virtualization."})).await;
    let d = device(&oss, &id).await;
    assert!(d["Device"]["X_VRGW-ORG_Virtualization"]["Template"].get(row.to_string()).is_none(), "{d}");
    assert!(d["Device"]["DeviceInfo"]["SoftwareVersion"].is_object(), "outside the refreshed object: kept");

    // The whole tree, as GenieACS's reference asks for it.
    let task = run(&oss, &id, json!({"name": "refreshObject", "objectName": ""})).await;
    let n = task["result"]["parameters"].as_array().map_or(0, Vec::len);
    let on_device = acs::sim::values(&sim, "Device.").len();
    assert_eq!(n, on_device, "every leaf read");
}

/// Records webhook deliveries.
async fn hook_receiver() -> (SocketAddr, Arc<std::sync::Mutex<Vec<Value>>>) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = l.accept().await else { return };
            let g = g.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let g = g.clone();
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                            g.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
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

/// A session played by hand for `sim`'s identity: the Inform with `events` (code, CommandKey;
/// Digest on the
/// second try), then `calls` (each answered with its response), then the ACS's requests, each
/// answered by `answer`. The ACS's requests.
async fn session(
    http: &Http,
    addr: SocketAddr,
    sim: &SimCpe,
    events: &[(&str, &str)],
    calls: Vec<Body>,
    mut answer: impl FnMut(&Body) -> Body,
) -> Vec<Body> {
    let mut env = Envelope::decode(sim.inform_envelope(&[]).as_bytes(), &cwmp::Limits::default()).expect("inform");
    if let Body::Inform(i) = &mut env.body {
        i.events =
            events.iter().map(|(c, k)| cwmp::Event { code: c.to_string(), command_key: k.to_string() }).collect();
    }
    let inform = env.encode();
    let first = cwmp_post(http, addr, inform.clone(), None, None).await;
    assert_eq!(first.status, 401);
    let auth = digest(&first.challenges, "cpe", "cpe-secret", "abcd");
    let opened = cwmp_post(http, addr, inform, None, Some(&auth)).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    let cookie = opened.cookie.expect("a session cookie");
    for (i, call) in calls.into_iter().enumerate() {
        let name = call.method_name();
        let env = Envelope::new(cwmp::CwmpNs::V1_2, Some(format!("cpe-{i}")), call).encode();
        let r = cwmp_post(http, addr, env, Some(&cookie), None).await;
        assert_eq!(r.status, 200, "{name}: {:?}", r.body);
        let back = Envelope::decode(&r.body, &cwmp::Limits::default()).expect("the ACS's answer");
        assert_eq!(back.body.method_name(), format!("{name}Response"), "{name} answered so the session goes on");
        if let Body::GetRPCMethodsResponse(m) = &back.body {
            for method in ["RequestDownload", "AutonomousTransferComplete", "DUStateChangeComplete"] {
                assert!(m.method_list.iter().any(|n| n == method), "{method} in {:?}", m.method_list);
            }
        }
    }
    let mut requests = Vec::new();
    let mut reply = cwmp_post(http, addr, Bytes::new(), Some(&cookie), None).await;
    while reply.status == 200 {
        let env = Envelope::decode(&reply.body, &cwmp::Limits::default()).expect("a request from the ACS");
        let resp = answer(&env.body);
        requests.push(env.body.clone());
        let answer = Envelope::new(env.ns, env.header.id.clone(), resp).encode();
        reply = cwmp_post(http, addr, answer, Some(&cookie), None).await;
        assert!(requests.len() < 20, "a session that does not end");
    }
    assert_eq!(reply.status, 204);
    requests
}

/// The tasks of `id` by name.
async fn task_named(oss: &NbiClient<'_>, id: &str, name: &str) -> Value {
    // Naming `status` lists done tasks too.
    let query = json!({"device": id, "name": name, "status": {"$exists": true}});
    let (_, t) = oss.call(Method::GET, &format!("/tasks?{}", q(query)), None).await;
    t[0].clone()
}

/// Waits (up to 20 s) until the task named `name` of `id` is done or faulted: the task then.
async fn finished(oss: &NbiClient<'_>, id: &str, name: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let t = task_named(oss, id, name).await;
        if t["status"] == json!("done") || t["status"] == json!("fault") {
            return t;
        }
        if std::time::Instant::now() >= deadline {
            let (_, all) = oss.call(Method::GET, "/tasks", None).await;
            panic!("{name} never finished: {t}; {all}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Serves one deployment-unit package (a control file) on loopback: its URL.
async fn package_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/b.ipk", listener.local_addr().expect("addr"));
    tokio::spawn(http_shell::serve(
        listener,
        None,
        http_shell::Limits::default(),
        |_req: Request<hyper::body::Incoming>, _| async move {
            hyper::Response::new(Full::new(Bytes::from_static(b"Package: b\nVersion: 1.0\n")))
        },
        std::future::pending(),
    ));
    url
}

const UUID_B: &str = "0b0b0b0b-1111-4222-8333-444455556666";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_complete_on_their_reports_and_cpe_calls_are_recorded_and_sent_to_webhooks() {
    let dir = TempDir::new("acs-rpcs-transfers");
    let (hook, got) = hook_receiver().await;
    let hooks = format!("[[webhooks]]\nurl = \"http://{hook}/hook\"\n");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).config(&hooks).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("rpcs-3").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let http = Http::new();
    let tasks = format!("/devices/{}/tasks", enc(&id));
    let meta = [("fileType", "1 Firmware Upgrade Image"), ("oui", "00A0B1"), ("productClass", "SimCPE")];
    let put = oss.send_bytes(Method::PUT, "/files/fw.bin", &meta, Bytes::from_static(b"firmware")).await;
    assert_eq!(put.status, 200);
    let package = package_server().await;

    // The device carries out an upload, a scheduled download and an install (acs::sim), each
    // left sent until the device reports it in a later session.
    for body in [
        json!({"name": "upload", "fileType": "1 Vendor Configuration File"}),
        json!({"name": "scheduleDownload", "fileType": "1 Firmware Upgrade Image", "fileName": "fw.bin",
               "timeWindows": [{"windowStart": 0, "windowEnd": 3600, "windowMode": "1 At Any Time"}]}),
        json!({"name": "changeDUState", "operations": [{"type": "install", "url": package, "uuid": UUID_B}]}),
    ] {
        let (s, t) = oss.call(Method::POST, &tasks, Some(body.clone())).await;
        assert_eq!(s, 202, "{body}: {t}");
    }
    let (s, woken) = oss.call(Method::POST, &format!("{tasks}?connection_request"), None).await;
    assert_eq!(s, 200, "{woken}");
    let upload = finished(&oss, &id, "upload").await;
    assert_eq!(upload["status"], json!("done"), "{upload}");
    let file = upload["result"]["file"].as_str().expect("the stored name").to_string();
    assert!(file.starts_with(&format!("{id}-vendor-configuration-file-")), "{file}");
    let (_, files) = oss.call(Method::GET, &format!("/files?{}", q(json!({"_id": file}))), None).await;
    assert_eq!(files[0]["metadata"]["fileType"], json!("1 Vendor Configuration File"), "{files}");
    assert!(files[0]["length"].as_u64().is_some_and(|n| n > 100), "the device's configuration: {files}");
    let download = finished(&oss, &id, "scheduleDownload").await;
    assert_eq!(download["status"], json!("done"), "{download}");
    assert_eq!(sim.downloaded.lock().map(|d| d.clone()).unwrap_or_default(), b"firmware");
    let du = finished(&oss, &id, "changeDUState").await;
    assert_eq!(du["status"], json!("done"), "{du}");
    assert_eq!(du["result"]["results"][0]["uuid"], json!(UUID_B));
    sim.idle().await;

    // The CPE's own calls, played by hand (the simulated CPE makes none), then the ACS's
    // requests: an upload, whose signed URL is good only as given.
    let (s, _) = oss.call(Method::POST, &tasks, Some(json!({"name": "upload", "fileType": "2 Vendor Log File"}))).await;
    assert_eq!(s, 202);
    let at = |s: i64| DateTime::from_unix(1_800_000_000 + s);
    let calls = vec![
        Body::RequestDownload(cwmp::RequestDownload {
            file_type: "1 Firmware Upgrade Image".into(),
            file_type_arg: vec![cwmp::Arg { name: "Version".into(), value: "2.0".into() }],
        }),
        Body::AutonomousTransferComplete(cwmp::AutonomousTransferComplete {
            announce_url: String::new(),
            transfer_url: "http://example.invalid/fw".into(),
            is_download: true,
            file_type: "1 Firmware Upgrade Image".into(),
            file_size: 1234,
            target_file_name: String::new(),
            fault: TransferFault::none(),
            start_time: at(0),
            complete_time: at(5),
        }),
        Body::AutonomousDUStateChangeComplete(cwmp::AutonomousDUStateChangeComplete {
            results: vec![cwmp::AutonOpResult { result: op("uuid-a", 0), operation_performed: "Install".into() }],
        }),
        Body::GetRPCMethods(cwmp::GetRPCMethods {}),
    ];
    let mut upload_url = String::new();
    session(&http, acs.cwmp, &sim, &[("6 CONNECTION REQUEST", "")], calls, |req| match req {
        Body::Upload(u) => {
            upload_url = u.url.clone();
            Body::UploadResponse(cwmp::UploadResponse {
                status: 1,
                start_time: DateTime::unknown(),
                complete_time: DateTime::unknown(),
            })
        }
        other => sim.apply(other),
    })
    .await;
    let put = |url: String, body: &'static [u8]| {
        let http = &http;
        async move { http.send(Method::PUT, &url, &[], Bytes::from_static(body)).await.status }
    };
    let unsigned = upload_url.split_once('?').map(|(p, _)| p.to_string()).expect("a signed URL");
    assert_eq!(put(unsigned, b"x").await, 403);
    assert_eq!(put(upload_url.replace("/files/", "/files/other-"), b"x").await, 403);
    assert_eq!(put(upload_url.clone(), b"a log line").await, 201);

    // The CPE's calls: in the device record (the latest of each), and to the webhook with
    // their content.
    let d = device(&oss, &id).await;
    let ev = &d["Events"];
    assert_eq!(ev["RequestDownload"]["FileType"]["_value"], json!("1 Firmware Upgrade Image"), "{d}");
    assert_eq!(ev["RequestDownload"]["FileTypeArg"]["1"]["Value"]["_value"], json!("2.0"));
    assert_eq!(ev["AutonomousTransferComplete"]["FileSize"]["_value"], json!(1234));
    assert_eq!(ev["AutonomousTransferComplete"]["CompleteTime"]["_type"], json!("xsd:dateTime"));
    assert_eq!(ev["AutonomousDUStateChangeComplete"]["Results"]["1"]["UUID"]["_value"], json!("uuid-a"));
    assert_eq!(ev["DUStateChangeComplete"]["Results"]["1"]["CurrentState"]["_value"], json!("Installed"));
    assert_eq!(ev["DUStateChangeComplete"]["Results"]["1"]["UUID"]["_value"], json!(UUID_B));
    let (s, found) = oss
        .call(
            Method::GET,
            &format!("/devices?{}", q(json!({"Events.RequestDownload.FileType": "1 Firmware Upgrade Image"}))),
            None,
        )
        .await;
    assert_eq!((s, found.as_array().map(Vec::len)), (200, Some(1)), "queried like any parameter");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = got.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let of = |name: &str| events.iter().find(|e| e["event"] == json!(name) && e["device"] == json!(id)).cloned();
        let all = [
            "RequestDownload",
            "AutonomousTransferComplete",
            "DUStateChangeComplete",
            "AutonomousDUStateChangeComplete",
        ]
        .map(of);
        if all.iter().all(Option::is_some) {
            let [rd, atc, dsc, _] = all;
            assert_eq!(
                rd.and_then(|e| e["detail"]["FileType"].as_str().map(str::to_string)).as_deref(),
                Some("1 Firmware Upgrade Image")
            );
            assert_eq!(atc.map(|e| e["detail"]["TransferURL"].clone()), Some(json!("http://example.invalid/fw")));
            assert_eq!(dsc.map(|e| e["detail"]["Results"][0]["UUID"].clone()), Some(json!(UUID_B)));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "webhooks: {events:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transfer_and_a_failed_deployment_are_faults() {
    let dir = TempDir::new("acs-rpcs-cancel");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("rpcs-4").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let http = Http::new();
    let tasks = format!("/devices/{}/tasks", enc(&id));
    // An upload the device holds for an hour, and the uninstall of a unit it does not hold.
    let (_, up) = oss
        .call(
            Method::POST,
            &tasks,
            Some(
                json!({"name": "upload", "fileType": "2 Vendor Log File", "fileName": "log.txt", "delaySeconds": 3600}),
            ),
        )
        .await;
    let (_, du) = oss
        .call(
            Method::POST,
            &tasks,
            Some(json!({"name": "changeDUState", "operations": [{"type": "uninstall", "uuid": UUID_B}]})),
        )
        .await;
    // cancelTransfer naming the upload task, in the same session: the CommandKey the ACS sent
    // it with goes out, and the device drops the upload it had not started.
    let up_id = up["_id"].as_str().expect("id").to_string();
    let cancel = run(&oss, &id, json!({"name": "cancelTransfer", "task": up_id})).await;
    assert_eq!(cancel["result"]["commandKey"], json!(format!("task-{up_id}-1")), "{cancel}");
    sim.idle().await;
    let (_, faults) = oss.call(Method::GET, &format!("/faults?{}", q(json!({"device": id}))), None).await;
    let code_of = |task: &Value| {
        faults.as_array().and_then(|f| f.iter().find(|f| f["task"] == task["_id"])).map(|f| f["code"].clone())
    };
    assert_eq!(code_of(&up), Some(json!("transfer.cancelled")), "{faults}");
    // The device's DUStateChangeComplete: 9028, Unknown Deployment Unit.
    assert_eq!(code_of(&du), Some(json!("cwmp.9028")), "{faults}");
    let task = run(&oss, &id, json!({"name": "getQueuedTransfers"})).await;
    assert_eq!(task["result"], json!({"transfers": []}), "the device holds no upload");
    // The hour passes: nothing is uploaded.
    sim.advance_clock(3600);
    sim.session(&[]).await.expect("a session an hour later");
    let (_, files) = oss.call(Method::GET, &format!("/files?{}", q(json!({"_id": "log.txt"}))), None).await;
    assert_eq!(files, json!([]));
    // A PUT for the cancelled upload is refused: no task expects it any more.
    let url = format!("http://{}/files/log.txt?device={}&expires=9999999999&sig=00", acs.cwmp, enc(&id));
    assert_eq!(http.send(Method::PUT, &url, &[], Bytes::from_static(b"x")).await.status, 403);
}

/// A deployment-unit operation's result.
fn op(uuid: &str, code: u32) -> cwmp::OpResult {
    cwmp::OpResult {
        uuid: uuid.into(),
        deployment_unit_ref: "Device.SoftwareModules.DeploymentUnit.1".into(),
        version: "1.0".into(),
        current_state: "Installed".into(),
        resolved: true,
        execution_unit_ref_list: String::new(),
        start_time: DateTime::from_unix(1_800_000_000),
        complete_time: DateTime::from_unix(1_800_000_001),
        fault: TransferFault { code, string: String::new() },
    }
}
