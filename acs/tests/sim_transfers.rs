//! File transfers and deployment units end to end: NBI tasks on the `acs` binary, carried out
//! by the simulated CPE as a real one does (acs::sim::transfers): an upload PUT to the URL the
//! ACS signed and reported with TransferComplete, a ScheduleDownload queued until its window
//! (the device's clock moved on by the test), cancelled while queued, listed by
//! Get(All)QueuedTransfers, missed (9020); ChangeDUState installing, updating and uninstalling
//! units fetched from a package server, reported with DUStateChangeComplete. What the ACS
//! records is asserted: task results and faults, stored files, the device's Events.

use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use test_support::acs::AcsCommand;
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";

fn q(query: Value) -> String {
    format!("query={}", enc(&query.to_string()))
}

/// Queues `body` for `id` without waking the device; the task's `_id`.
async fn queue(oss: &NbiClient<'_>, id: &str, body: Value) -> String {
    let (s, t) = oss.call(Method::POST, &format!("/devices/{}/tasks", enc(id)), Some(body.clone())).await;
    assert_eq!(s, 202, "{body}: {t}");
    t["_id"].as_str().map(str::to_string).unwrap_or_else(|| t["_id"].to_string())
}

/// Queues `body` with a connection request, waits for the device's sessions (with the one that
/// reports a transfer) to end, and returns the task as it then stands.
async fn run(oss: &NbiClient<'_>, sim: &acs::sim::SimCpe, body: Value) -> Value {
    let id = sim.device_id();
    let (s, t) = oss.task(&id, body.clone()).await;
    assert!(s == 200 || s == 202, "{body}: {s} {t}");
    sim.idle().await;
    task(oss, &t["_id"]).await
}

/// The task `_id` as GET /tasks shows it, once it is done or faulted (at most 20 s).
async fn finished(oss: &NbiClient<'_>, id: &Value) -> Value {
    oss.finished(id, 20).await
}

async fn task(oss: &NbiClient<'_>, id: &Value) -> Value {
    oss.task_status(id).await
}

/// The CommandKey the ACS sent task `t` under (`task-<id>-<attempt>`).
fn key(t: &Value) -> Option<String> {
    Some(format!("task-{}-{}", t["_id"].as_str()?, t["attempts"].as_u64()?))
}

/// The fault recorded for task `id` (its code), if any.
async fn fault_of(oss: &NbiClient<'_>, device: &str, id: &Value) -> Option<Value> {
    let (_, faults) = oss.call(Method::GET, &format!("/faults?{}", q(json!({"device": device}))), None).await;
    faults.as_array()?.iter().find(|f| &f["task"] == id).cloned()
}

/// The device as GET /devices shows it.
async fn device(oss: &NbiClient<'_>, id: &str) -> Value {
    let (s, d) = oss.call(Method::GET, &format!("/devices?{}", q(json!({"_id": id}))), None).await;
    assert_eq!(s, 200);
    d[0].clone()
}

/// The file `name` as GET /files shows it.
async fn file(oss: &NbiClient<'_>, name: &str) -> Value {
    let (_, files) = oss.call(Method::GET, &format!("/files?{}", q(json!({"_id": name}))), None).await;
    files[0].clone()
}

/// Stores `content` as file `name` of `file_type` through the NBI.
async fn put_file(oss: &NbiClient<'_>, name: &str, file_type: &str, content: &'static [u8]) {
    let meta = [("fileType", file_type), ("oui", "00A0B1"), ("productClass", "SimCPE")];
    let r = oss.send_bytes(Method::PUT, &format!("/files/{name}"), &meta, Bytes::from_static(content)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
}

/// What the device last downloaded.
fn downloaded(sim: &acs::sim::SimCpe) -> String {
    String::from_utf8_lossy(&sim.downloaded.lock().map(|d| d.clone()).unwrap_or_default()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_puts_the_devices_file_where_the_acs_signed_and_a_refused_put_is_9011() {
    let dir = TempDir::new("acs-sim-upload");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("up-1").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();

    // The configuration: UploadResponse (not yet done), the PUT, then TransferComplete in a
    // session of "7 TRANSFER COMPLETE" and "M Upload".
    let t = run(&oss, &sim, json!({"name": "upload", "fileType": "1 Vendor Configuration File"})).await;
    let t = finished(&oss, &t["_id"]).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    assert_eq!(t["result"]["transferComplete"], json!(true), "{t}");
    let name = t["result"]["file"].as_str().expect("the stored name").to_string();
    assert!(name.starts_with(&format!("{id}-vendor-configuration-file-")), "{name}");
    let f = file(&oss, &name).await;
    assert_eq!(f["metadata"]["fileType"], json!("1 Vendor Configuration File"), "{f}");
    assert_eq!(f["metadata"]["device"], json!(id), "{f}");
    let log = acs.daemon.log();
    assert!(
        log.lines().any(|l| l.contains("Inform") && l.contains("7 TRANSFER COMPLETE") && l.contains("M Upload")),
        "{log}"
    );

    // What was stored is the device's configuration: downloaded back, it is what the device
    // holds, a password empty.
    let back = run(&oss, &sim, json!({"name": "download", "file": name})).await;
    assert_eq!(finished(&oss, &back["_id"]).await["status"], json!("done"));
    let config = downloaded(&sim);
    assert_eq!(f["length"], json!(config.len()), "{config}");
    assert!(config.starts_with("# Device. configuration of up-1 at "), "{config}");
    assert!(config.lines().any(|l| l == "Device.DeviceInfo.SerialNumber=up-1"), "{config}");
    assert!(config.lines().any(|l| l == "Device.ManagementServer.ConnectionRequestPassword="), "{config}");

    // The log, under the task's file name: the device's sessions and transfers.
    let t = run(&oss, &sim, json!({"name": "upload", "fileType": "2 Vendor Log File", "fileName": "up-1.log"})).await;
    assert_eq!(finished(&oss, &t["_id"]).await["result"]["file"], json!("up-1.log"));
    run(&oss, &sim, json!({"name": "download", "file": "up-1.log"})).await;
    let log = downloaded(&sim);
    assert!(
        log.lines().any(|l| l.contains("up-1: session: Inform 0 BOOTSTRAP, 1 BOOT; ACS requests answered: ")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("upload of \"1 Vendor Configuration File\"") && l.ends_with(": done")),
        "{log}"
    );
    assert!(!log.contains("sig="), "no signed URL in the log: {log}");

    // A PUT the ACS refuses (a file of that name that is not the device's): the device reports
    // 9011 (Upload failure) with the reason, the task is faulted, the file left as it was.
    put_file(&oss, "taken.cfg", "1 Vendor Configuration File", b"the operator's").await;
    let t =
        run(&oss, &sim, json!({"name": "upload", "fileType": "3 Vendor Configuration File", "fileName": "taken.cfg"}))
            .await;
    let t = finished(&oss, &t["_id"]).await;
    assert_eq!(t["status"], json!("fault"), "{t}");
    let fault = fault_of(&oss, &id, &t["_id"]).await.expect("a fault");
    assert_eq!(fault["code"], json!("cwmp.9011"), "{fault}");
    // The ACS's 409 (the name is taken), the URL without its signature.
    assert!(fault["message"].as_str().is_some_and(|m| m.ends_with("/files/taken.cfg: HTTP 409 Conflict")), "{fault}");
    assert_eq!(file(&oss, "taken.cfg").await["length"], json!(14));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_download_waits_for_its_window_a_queued_one_cancels_and_a_missed_one_is_9020() {
    let dir = TempDir::new("acs-sim-schedule");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("sd-1").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    put_file(&oss, "fw-2.bin", "1 Firmware Upgrade Image", b"firmware 2").await;
    put_file(&oss, "fw-3.bin", "1 Firmware Upgrade Image", b"firmware 3").await;
    let window =
        |start: u32, end: u32| json!([{"windowStart": start, "windowEnd": end, "windowMode": "1 At Any Time"}]);
    let schedule = |file: &str, windows: Value| {
        json!({"name": "scheduleDownload", "fileType": "1 Firmware Upgrade Image", "fileName": file,
               "targetFileName": "fw.bin", "timeWindows": windows})
    };

    // A window open at once: carried out right after the session.
    let now = run(&oss, &sim, schedule("fw-2.bin", window(0, 3600))).await;
    assert_eq!(finished(&oss, &now["_id"]).await["result"]["transferComplete"], json!(true));
    assert_eq!(downloaded(&sim), "firmware 2");
    let log = acs.daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("Inform") && l.contains("7 TRANSFER COMPLETE") && l.contains("M ScheduleDownload")),
        "{log}"
    );

    // One session: two scheduled downloads queued, both listed, the second cancelled before it
    // starts, the first left.
    let later = queue(&oss, &id, schedule("fw-3.bin", window(3600, 7200))).await;
    let cancelled = queue(&oss, &id, schedule("fw-2.bin", window(600, 900))).await;
    let all = queue(&oss, &id, json!({"name": "getAllQueuedTransfers"})).await;
    let cancel = queue(&oss, &id, json!({"name": "cancelTransfer", "task": cancelled})).await;
    let left = run(&oss, &sim, json!({"name": "getQueuedTransfers"})).await;
    let (later, cancelled) = (task(&oss, &json!(later)).await, task(&oss, &json!(cancelled)).await);
    let all = task(&oss, &json!(all)).await;
    let listed: Vec<_> = all["result"]["transfers"]
        .as_array()
        .expect("transfers")
        .iter()
        .map(|t| (t["commandKey"].as_str().map(str::to_string), t["state"].clone(), t["isDownload"].clone()))
        .collect();
    assert_eq!(
        listed,
        [(key(&later), json!(1), json!(true)), (key(&cancelled), json!(1), json!(true))],
        "{all} {later} {cancelled}"
    );
    assert_eq!(all["result"]["transfers"][0]["targetFileName"], json!("fw.bin"));
    assert_eq!(left["result"]["transfers"], json!([{"commandKey": key(&later), "state": 1}]), "{left}");
    assert_eq!(task(&oss, &json!(cancel)).await["result"]["commandKey"], json!(key(&cancelled)));
    let fault = fault_of(&oss, &id, &cancelled["_id"]).await.expect("the cancelled one's fault");
    assert_eq!(fault["code"], json!("transfer.cancelled"), "{fault}");
    assert_eq!(later["status"], json!("sent"), "waiting for its window: {later}");
    assert_eq!(downloaded(&sim), "firmware 2", "nothing fetched before the window");

    // The device's clock reaches the window: its next session carries it out and reports it.
    sim.advance_clock(3600);
    sim.session(&[]).await.expect("a periodic session in the window");
    let done = finished(&oss, &later["_id"]).await;
    assert_eq!((&done["status"], &done["result"]["transferComplete"]), (&json!("done"), &json!(true)), "{done}");
    assert_eq!(downloaded(&sim), "firmware 3");

    // Cancelling it now (done) or anything unknown: the device's 9021.
    let t = run(&oss, &sim, json!({"name": "cancelTransfer", "task": later["_id"]})).await;
    let fault = fault_of(&oss, &id, &t["_id"]).await.expect("9021");
    assert_eq!(fault["code"], json!("cwmp.9021"), "{fault}");

    // No session in its only window: TransferComplete 9020 once it has passed.
    let missed = run(&oss, &sim, schedule("fw-2.bin", window(60, 120))).await;
    sim.advance_clock(600);
    sim.session(&[]).await.expect("a session after the window");
    let missed = finished(&oss, &missed["_id"]).await;
    assert_eq!(missed["status"], json!("fault"), "{missed}");
    assert_eq!(fault_of(&oss, &id, &missed["_id"]).await.map(|f| f["code"].clone()), Some(json!("cwmp.9020")));
    assert_eq!(downloaded(&sim), "firmware 3");

    // Windows the device cannot take (overlapping): its 9003, nothing queued.
    let two = json!([{"windowStart": 0, "windowEnd": 600, "windowMode": "1 At Any Time"},
                     {"windowStart": 300, "windowEnd": 900, "windowMode": "2 Immediately"}]);
    let t = run(&oss, &sim, schedule("fw-2.bin", two)).await;
    assert_eq!(fault_of(&oss, &id, &t["_id"]).await.map(|f| f["code"].clone()), Some(json!("cwmp.9003")));
    let left = run(&oss, &sim, json!({"name": "getQueuedTransfers"})).await;
    assert_eq!(left["result"]["transfers"], json!([]), "{left}");
}

/// Serves deployment-unit packages (control files) on loopback: `/a-1.0.ipk`, `/a-2.0.ipk`,
/// `/b.ipk` (which names its UUID), `/junk.ipk` (not a package); its base URL.
async fn package_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(http_shell::serve(
        listener,
        None,
        http_shell::Limits::default(),
        |req: Request<hyper::body::Incoming>, _| {
            let body: Option<&'static [u8]> = match req.uri().path() {
                "/a-1.0.ipk" => Some(b"Package: a\nVersion: 1.0\n"),
                "/a-2.0.ipk" => Some(b"Package: a\nVersion: 2.0\n"),
                "/b.ipk" => Some(b"Package: b\nVersion: 0.3\nUUID: 0b0b0b0b-1111-4222-8333-444455556666\n"),
                "/junk.ipk" => Some(b"\x7fELF"),
                _ => None,
            };
            let mut r = hyper::Response::new(http_body_util::Full::new(Bytes::from_static(body.unwrap_or(b""))));
            if body.is_none() {
                *r.status_mut() = StatusCode::NOT_FOUND;
            }
            async move { r }
        },
        std::future::pending(),
    ));
    base
}

const UUID_A: &str = "6a3f1c2e-0b7d-4e8a-9c1f-2d3e4f5a6b7c";
const UUID_B: &str = "0b0b0b0b-1111-4222-8333-444455556666";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_units_install_update_and_uninstall_with_one_result_per_operation() {
    let dir = TempDir::new("acs-sim-du");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("du-1").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let pkg = package_server().await;

    // Two installs, one naming its UUID, the other's UUID from its package.
    let ops = json!([{"type": "install", "url": format!("{pkg}/a-1.0.ipk"), "uuid": UUID_A},
                     {"type": "install", "url": format!("{pkg}/b.ipk"),
                      "executionEnvRef": "Device.SoftwareModules.ExecEnv.1"}]);
    let t = run(&oss, &sim, json!({"name": "changeDUState", "operations": ops})).await;
    let t = finished(&oss, &t["_id"]).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let results = t["result"]["results"].as_array().expect("results").clone();
    let seen: Vec<_> = results
        .iter()
        .map(|r| (r["uuid"].clone(), r["deploymentUnitRef"].clone(), r["version"].clone(), r["currentState"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (json!(UUID_A), json!("Device.SoftwareModules.DeploymentUnit.1"), json!("1.0"), json!("Installed")),
            (json!(UUID_B), json!("Device.SoftwareModules.DeploymentUnit.2"), json!("0.3"), json!("Installed")),
        ],
        "{t}"
    );
    let ev = &device(&oss, &id).await["Events"]["DUStateChangeComplete"];
    assert_eq!(ev["CommandKey"]["_value"].as_str().map(str::to_string), key(&t), "{ev}");
    assert_eq!(ev["Results"]["2"]["UUID"]["_value"], json!(UUID_B), "{ev}");
    assert_eq!(ev["Results"]["1"]["ExecutionUnitRefList"]["_value"], json!("Device.SoftwareModules.ExecutionUnit.1"));
    assert_eq!(ev["Results"]["1"]["StartTime"]["_type"], json!("xsd:dateTime"));
    let log = acs.daemon.log();
    assert!(
        log.lines().any(|l| l.contains("Inform")
            && l.contains("11 DU STATE CHANGE COMPLETE")
            && l.contains("M ChangeDUState")),
        "{log}"
    );

    // An update, an uninstall of a unit the device does not hold (9028), an uninstall: each
    // carried out, each with its result; the task is faulted by the failed one.
    let ops = json!([{"type": "update", "uuid": UUID_A, "url": format!("{pkg}/a-2.0.ipk")},
                     {"type": "uninstall", "uuid": "00000000-0000-4000-8000-000000000000"},
                     {"type": "uninstall", "uuid": UUID_B}]);
    let t = run(&oss, &sim, json!({"name": "changeDUState", "operations": ops})).await;
    let t = finished(&oss, &t["_id"]).await;
    assert_eq!(t["status"], json!("fault"), "{t}");
    assert_eq!(fault_of(&oss, &id, &t["_id"]).await.map(|f| f["code"].clone()), Some(json!("cwmp.9028")));
    let ev = &device(&oss, &id).await["Events"]["DUStateChangeComplete"];
    let result = |i: &str, field: &str| ev["Results"][i][field]["_value"].clone();
    assert_eq!((result("1", "Version"), result("1", "CurrentState")), (json!("2.0"), json!("Installed")), "{ev}");
    assert_eq!(ev["Results"]["2"]["FaultStruct"]["FaultCode"]["_value"], json!(9028), "{ev}");
    assert_eq!(result("2", "CurrentState"), json!("Uninstalled"));
    assert_eq!((result("3", "CurrentState"), result("3", "UUID")), (json!("Uninstalled"), json!(UUID_B)));
    assert_eq!(ev["Results"]["3"]["FaultStruct"]["FaultCode"]["_value"], json!(0));
    let units: Vec<_> = sim.deployment_units().into_iter().map(|u| (u.uuid, u.version)).collect();
    assert_eq!(units, [(UUID_A.to_string(), "2.0".to_string())]);

    // The device's faults, as the spec names them.
    for (op, code) in [
        (json!({"type": "install", "url": format!("{pkg}/a-1.0.ipk"), "uuid": UUID_A}), "cwmp.9026"),
        (json!({"type": "install", "url": format!("{pkg}/a-1.0.ipk"), "uuid": "a"}), "cwmp.9022"),
        (
            json!({"type": "install", "url": format!("{pkg}/a-1.0.ipk"), "executionEnvRef": "Device.SoftwareModules.ExecEnv.7"}),
            "cwmp.9023",
        ),
        (json!({"type": "install", "url": format!("{pkg}/junk.ipk")}), "cwmp.9018"),
        (json!({"type": "install", "url": format!("{pkg}/none.ipk")}), "cwmp.9016"),
    ] {
        let t = run(&oss, &sim, json!({"name": "changeDUState", "operations": [op.clone()]})).await;
        let t = finished(&oss, &t["_id"]).await;
        assert_eq!(fault_of(&oss, &id, &t["_id"]).await.map(|f| f["code"].clone()), Some(json!(code)), "{op}");
    }
    assert_eq!(sim.deployment_units().len(), 1, "no failed operation changed a unit");
}

/// A device that informs (periodically, say) while its scheduled download waits for its
/// window has not lost it: the task must stay sent under the one CommandKey the device holds,
/// and the device must hold one transfer (the ACS once sent a transfer task again at every
/// Inform that did not report it, so the device queued it twice under two keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_before_the_window_leaves_the_scheduled_download_as_it_is() {
    let dir = TempDir::new("acs-sim-schedule-periodic");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("sd-2").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    put_file(&oss, "fw-3.bin", "1 Firmware Upgrade Image", b"firmware 3").await;
    let body = json!({"name": "scheduleDownload", "fileType": "1 Firmware Upgrade Image", "fileName": "fw-3.bin",
                      "timeWindows": [{"windowStart": 3600, "windowEnd": 7200, "windowMode": "1 At Any Time"}]});
    let t = run(&oss, &sim, body).await;
    sim.session(&[]).await.expect("a periodic session before the window");
    let left = run(&oss, &sim, json!({"name": "getQueuedTransfers"})).await;
    assert_eq!(left["result"]["transfers"], json!([{"commandKey": key(&t), "state": 1}]), "{left}");
    sim.advance_clock(3600);
    sim.session(&[]).await.expect("a session in the window");
    let done = finished(&oss, &t["_id"]).await;
    assert_eq!(done["status"], json!("done"), "{done}");
    assert_eq!(fault_of(&oss, &id, &t["_id"]).await, None);
}
