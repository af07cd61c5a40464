//! GenieACS's API reference (docs/api-reference.rst) on tasks, faults and files, example by
//! example, against the `acs` binary with a simulated CPE online: status codes (and GenieACS's
//! reason phrases), headers and the shapes of the records. The reference's examples name
//! TR-098 paths (`InternetGatewayDevice.`); the simulated CPE is a TR-181 host, so each example
//! names the TR-181 parameter of the same kind.

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::AcsCommand;
use test_support::{enc, NbiClient, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "test-token-0123456789";

fn acs_command(dir: &TempDir) -> AcsCommand {
    AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
}

/// The status line of `method path` (with `body`), read off the wire: GenieACS answers some
/// 202s and 504s with a reason phrase of its own.
async fn status_line(nbi: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(nbi).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: acs\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines().next().unwrap_or("").to_string()
}

/// `?query=` of a JSON query.
fn q(query: Value) -> String {
    format!("query={}", enc(&query.to_string()))
}

/// A task as GenieACS answers it: the task's fields, `_id`, `device` and `timestamp`.
fn assert_task_shape(task: &Value, device: &str, name: &str) {
    assert_eq!((&task["name"], &task["device"]), (&json!(name), &json!(device)), "{task}");
    assert!(task["_id"].as_str().is_some_and(|i| !i.is_empty()), "{task}");
    assert!(task["timestamp"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{task}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_example_runs_within_its_timeout_and_answers_200() {
    let dir = TempDir::new("acs-genie-tasks");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-1").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    // The reference's form: `?timeout=3000&connection_request` (the session must start within
    // the timeout; the task then has up to two minutes).
    let path = format!("/devices/{}/tasks?timeout=3000&connection_request", enc(&id));
    let run = |body: Value| {
        let path = path.clone();
        async move {
            let r = oss.send(Method::POST, &path, Some(body.clone())).await;
            assert_eq!(r.status, 200, "{body} -> {}", r.json);
            assert_eq!(r.headers.get("content-type").map(|v| v.as_bytes()), Some(&b"application/json"[..]));
            r.json
        }
    };

    // getParameterValues: then the device record holds the values.
    let names = [
        "Device.DeviceInfo.SerialNumber",
        "Device.ManagementServer.PeriodicInformInterval",
        "Device.DeviceInfo.UpTime",
    ];
    let task = run(json!({"name": "getParameterValues", "parameterNames": names})).await;
    assert_task_shape(&task, &id, "getParameterValues");
    assert_eq!(task["parameterNames"], json!(names));
    let (s, devices) = oss.call(Method::GET, &format!("/devices/?{}", q(json!({"_id": id}))), None).await;
    assert_eq!(s, 200);
    assert_eq!(devices[0]["Device"]["DeviceInfo"]["SerialNumber"]["_value"], json!("genie-1"), "{devices}");
    assert!(devices[0]["Device"]["ManagementServer"]["PeriodicInformInterval"].get("_value").is_some());

    // refreshObject of an object.
    let task = run(json!({"name": "refreshObject", "objectName": "Device.ManagementServer"})).await;
    assert_task_shape(&task, &id, "refreshObject");

    // setParameterValues: a value without its type (a JSON boolean), and several at once.
    let task =
        run(json!({"name": "setParameterValues", "parameterValues": [["Device.ManagementServer.PeriodicInformEnable", false]]}))
            .await;
    assert_task_shape(&task, &id, "setParameterValues");
    assert_eq!(
        acs::sim::values(&sim, "Device.ManagementServer.PeriodicInformEnable")[0].value,
        cwmp::Value::Boolean(false)
    );
    run(json!({"name": "setParameterValues", "parameterValues": [
        ["Device.ManagementServer.PeriodicInformEnable", true],
        ["Device.ManagementServer.PeriodicInformInterval", 300],
        ["Device.DeviceInfo.ProvisioningCode", "GenieACS", "xsd:string"]]}))
    .await;
    assert_eq!(
        acs::sim::values(&sim, "Device.ManagementServer.PeriodicInformInterval")[0].value,
        cwmp::Value::UnsignedInt(300)
    );
    assert_eq!(
        acs::sim::values(&sim, "Device.DeviceInfo.ProvisioningCode")[0].value,
        cwmp::Value::String("GenieACS".into())
    );

    // addObject, then deleteObject of the row it made.
    let table = "Device.X_VRGW-ORG_Virtualization.Instance";
    let task = run(json!({"name": "addObject", "objectName": table})).await;
    assert_task_shape(&task, &id, "addObject");
    let n = task["result"]["instance"].as_u64().expect("the new row's number");
    let task = run(json!({"name": "deleteObject", "objectName": format!("{table}.{n}")})).await;
    assert_task_shape(&task, &id, "deleteObject");
    assert!(acs::sim::values(&sim, &format!("{table}.{n}.")).is_empty(), "the row is gone");

    // download naming an uploaded file alone: its type comes from the file's metadata.
    let put = oss
        .send_bytes(
            Method::PUT,
            "/files/mipsbe-6-42-lite.xml",
            &[
                ("fileType", "3 Vendor Configuration File"),
                ("oui", "00A0B1"),
                ("productClass", "SimCPE"),
                ("version", "6.42"),
            ],
            Bytes::from_static(b"<config/>"),
        )
        .await;
    assert_eq!(put.status, 200);
    let task = run(json!({"name": "download", "file": "mipsbe-6-42-lite.xml"})).await;
    assert_task_shape(&task, &id, "download");
    assert_eq!(
        (&task["file"], &task["fileName"], &task["fileType"]),
        (&json!("mipsbe-6-42-lite.xml"), &json!("mipsbe-6-42-lite.xml"), &json!("3 Vendor Configuration File"))
    );

    // reboot and factoryReset.
    assert_task_shape(&run(json!({"name": "reboot"})).await, &id, "reboot");
    assert_task_shape(&run(json!({"name": "factoryReset"})).await, &id, "factoryReset");

    // None is left to run (GenieACS's listing of pending tasks: it deletes a task once done);
    // asked for by status, they are there with their results.
    let pending = json!({"device": id, "status": {"$ne": "done"}});
    let r = oss.send(Method::GET, &format!("/tasks/?{}", q(pending)), None).await;
    assert_eq!((r.status, &r.json), (200, &json!([])));
    assert_eq!(r.headers.get("total").map(|v| v.as_bytes()), Some(&b"0"[..]));
    let (_, done) =
        oss.call(Method::GET, &format!("/tasks?{}", q(json!({"device": id, "status": "done"}))), None).await;
    assert_eq!(done.as_array().map(Vec::len), Some(9), "{done}");
    assert!(done.as_array().is_some_and(|d| d.iter().all(|t| t["status"] == json!("done"))), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_have_genieacs_ids_shapes_retries_and_deletion() {
    let dir = TempDir::new("acs-genie-faults");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-2").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let path = format!("/devices/{}/tasks?timeout=3000&connection_request", enc(&id));

    // A set the device refuses: 202 "Task faulted", the task with its fault.
    let body =
        json!({"name": "setParameterValues", "parameterValues": [["Device.DeviceInfo.UpTime", 5, "xsd:unsignedInt"]]});
    let line = status_line(acs.nbi, "POST", &path, &body.to_string()).await;
    assert_eq!(line, "HTTP/1.1 202 Task faulted");
    // The NBI answers when the task faults, before the device ends that session; a retry made
    // while it is still open would run the task again in it. Wait for its end.
    sim.idle().await;
    let (_, faults) = oss.call(Method::GET, "/faults", None).await;
    let fault = faults[0].clone();
    let task_id = fault["task"].as_str().expect("the task's id").to_string();
    let fault_id = format!("{id}:task_{task_id}");
    assert_eq!(fault["_id"], json!(fault_id), "{fault}");
    assert_eq!(
        (&fault["device"], &fault["channel"], &fault["code"], &fault["retries"]),
        (&json!(id), &json!(format!("task_{task_id}")), &json!("cwmp.9003"), &json!(0))
    );
    assert_eq!(fault["detail"]["faultCode"], json!("9003"));
    assert_eq!(fault["detail"]["setParameterValuesFault"][0]["parameterName"], json!("Device.DeviceInfo.UpTime"));
    assert_eq!(fault["detail"]["setParameterValuesFault"][0]["faultCode"], json!("9008"));
    assert!(fault["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    // The faulted task is still listed (GenieACS keeps it), with its fault.
    let (_, tasks) = oss.call(Method::GET, &format!("/tasks?{}", q(json!({"_id": task_id}))), None).await;
    assert_eq!(tasks.as_array().map(Vec::len), Some(1), "{tasks}");
    assert_eq!(tasks[0]["fault"]["_id"], json!(fault_id));

    // Retry: the fault goes, the task runs at the next session (woken by a bare connection
    // request: no body), faults again, one retry counted.
    assert_eq!(oss.call(Method::POST, &format!("/tasks/{task_id}/retry"), None).await.0, 200);
    assert_eq!(oss.call(Method::GET, "/faults", None).await.1, json!([]));
    let sessions = sim.sessions.load(std::sync::atomic::Ordering::SeqCst);
    let r = oss.send(Method::POST, &format!("/devices/{}/tasks?connection_request", enc(&id)), None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let mut fault = Value::Null;
    for _ in 0..200 {
        let (_, f) = oss.call(Method::GET, "/faults", None).await;
        if f.as_array().is_some_and(|f| !f.is_empty()) {
            fault = f[0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sim.sessions.load(std::sync::atomic::Ordering::SeqCst) > sessions, "the device was woken");
    assert_eq!((&fault["_id"], &fault["retries"]), (&json!(fault_id), &json!(1)), "{fault}");

    // DELETE /faults/<device>:task_<id> deletes the fault and its task, as GenieACS does; a
    // fault that is not there is 200 too.
    let r = oss.send(Method::DELETE, &format!("/faults/{}", enc(&fault_id)), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(oss.call(Method::GET, "/faults", None).await.1, json!([]));
    assert_eq!(oss.call(Method::GET, &format!("/tasks?{}", q(json!({"_id": task_id}))), None).await.1, json!([]));
    assert_eq!(oss.call(Method::DELETE, &format!("/faults/{}", enc(&fault_id)), None).await.0, 200);
    // The reference's example: the default channel's fault.
    let r = oss.send(Method::DELETE, &format!("/faults/{}:default", enc(&id)), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        oss.call(Method::POST, &format!("/tasks/{task_id}/retry"), None).await.0,
        404,
        "the task went with its fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_queue_list_delete_and_refuse_as_genieacs_does() {
    let dir = TempDir::new("acs-genie-queue");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-3").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let tasks = format!("/devices/{}/tasks", enc(&id));

    // Without a connection request: 202 with the task as inserted.
    let r = oss.send(Method::POST, &tasks, Some(json!({"name": "reboot"}))).await;
    assert_eq!(r.status, 202);
    assert_task_shape(&r.json, &id, "reboot");
    let reboot = r.json["_id"].as_str().expect("id").to_string();
    let r = oss
        .send(
            Method::POST,
            &tasks,
            Some(json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]})),
        )
        .await;
    assert_eq!(r.status, 202);
    let gpv = r.json["_id"].as_str().expect("id").to_string();

    // The reference's example: pending tasks of a device; and queries on name and _id, with
    // the `total` header, sort, skip and limit.
    let r = oss.send(Method::GET, &format!("/tasks/?{}", q(json!({"device": id}))), None).await;
    assert_eq!((r.status, r.json.as_array().map(Vec::len)), (200, Some(2)), "{}", r.json);
    assert_eq!(r.headers.get("total").map(|v| v.as_bytes()), Some(&b"2"[..]));
    let (_, by_name) = oss.call(Method::GET, &format!("/tasks?{}", q(json!({"name": "reboot"}))), None).await;
    assert_eq!(
        by_name.as_array().map(|a| a.iter().map(|t| t["_id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(reboot)])
    );
    let r = oss
        .send(Method::GET, &format!("/tasks?{}&sort={}&limit=1", q(json!({"device": id})), enc(r#"{"_id": -1}"#)), None)
        .await;
    assert_eq!((r.json[0]["_id"].clone(), r.headers.get("total").map(|v| v.as_bytes())), (json!(gpv), Some(&b"2"[..])));
    let (s, e) = oss.call(Method::GET, &format!("/tasks?{}", q(json!({"name": {"$where": "1"}}))), None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unsupported operator $where")));

    // DELETE /tasks/<id>: 200, then 404 as it is gone; retry of a task that is not there: 404.
    assert_eq!(oss.call(Method::DELETE, &format!("/tasks/{reboot}"), None).await.0, 200);
    assert_eq!(oss.call(Method::DELETE, &format!("/tasks/{reboot}"), None).await.0, 404);
    assert_eq!(oss.call(Method::POST, &format!("/tasks/{reboot}/retry"), None).await.0, 404);
    // Retry of a pending task: nothing to clear, 200 (GenieACS's answer).
    assert_eq!(oss.call(Method::POST, &format!("/tasks/{gpv}/retry"), None).await.0, 200);

    // Bad input: precise errors, nothing queued.
    let bad = [
        (json!({"name": "getParameterValues", "parameterNames": []}), "parameterNames"),
        (json!({"name": "setParameterValues", "parameterValues": [["Device.A", {"x": 1}]]}), "Device.A"),
        (json!({"name": "deleteObject", "objectName": ""}), "objectName"),
        (json!({"name": "download"}), "fileName"),
        (json!({"name": "download", "file": "no-such.bin"}), "no file \"no-such.bin\""),
        (
            json!({"name": "download", "fileName": "x.bin", "fileType": "1 Firmware Upgrade Image", "targetFileName": 5}),
            "targetFileName",
        ),
    ];
    for (body, why) in bad {
        let (s, e) = oss.call(Method::POST, &tasks, Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(why)), "{body}: {e}");
    }
    let (s, _) = oss.call(Method::POST, &tasks, None).await;
    assert_eq!(s, 400, "no task and no connection request");
    let (s, _) = oss
        .call(Method::POST, &format!("{tasks}?connection_request&timeout=soon"), Some(json!({"name": "reboot"})))
        .await;
    assert_eq!(s, 400);
    let (s, _) = oss.call(Method::POST, "/devices/nobody/tasks?connection_request", None).await;
    assert_eq!(s, 404);
    assert_eq!(
        oss.call(Method::GET, &format!("/tasks?{}", q(json!({"device": id}))), None).await.1.as_array().map(Vec::len),
        Some(1)
    );

    // A device that does not answer connection requests: a bare one is 504 with the reason in
    // the status line; a task with one is queued, 202 with the reason.
    let lonely = acs::sim::SimCpe::new(
        "genie-4",
        &format!("http://{}/", acs.cwmp),
        test_support::acs::CPE.0,
        test_support::acs::CPE.1,
        "127.0.0.1:9".parse().expect("addr"),
        test_support::acs::CR,
    );
    lonely.session(&[]).await.expect("bootstrap");
    let lonely_tasks = format!("/devices/{}/tasks?connection_request&timeout=2000", enc(&lonely.device_id()));
    let line = status_line(acs.nbi, "POST", &lonely_tasks, "").await;
    assert!(line.starts_with("HTTP/1.1 504 device unreachable at http://127.0.0.1:9/"), "{line}");
    let line = status_line(acs.nbi, "POST", &lonely_tasks, r#"{"name": "reboot"}"#).await;
    assert!(line.starts_with("HTTP/1.1 202 device unreachable at http://127.0.0.1:9/"), "{line}");
    // A device that answers but does not come in time: 202 "Task queued but not processed".
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let late = acs::sim::SimCpe::new(
        "genie-5",
        &format!("http://{}/", acs.cwmp),
        test_support::acs::CPE.0,
        test_support::acs::CPE.1,
        silent.local_addr().expect("addr"),
        test_support::acs::CR,
    );
    late.session(&[]).await.expect("bootstrap");
    tokio::spawn(async move {
        // Accepts the connection request (204) and never opens a session.
        while let Ok((mut s, _)) = silent.accept().await {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").await;
        }
    });
    let path = format!("/devices/{}/tasks?connection_request&timeout=500", enc(&late.device_id()));
    let line = status_line(acs.nbi, "POST", &path, r#"{"name": "reboot"}"#).await;
    assert_eq!(line, "HTTP/1.1 202 Task queued but not processed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_carry_genieacs_metadata_and_are_deleted() {
    let dir = TempDir::new("acs-genie-files");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);

    // The reference's upload, with the four metadata headers.
    let put = oss
        .send_bytes(
            Method::PUT,
            "/files/new_firmware_v1.0.bin",
            &[("fileType", "1 Firmware Upgrade Image"), ("oui", "123456"), ("productClass", "ABC"), ("version", "1.0")],
            Bytes::from_static(b"0123456789"),
        )
        .await;
    assert_eq!(put.status, 200);
    let put = oss.send_bytes(Method::PUT, "/files/notes.txt", &[], Bytes::from_static(b"x")).await;
    assert_eq!(put.status, 200);
    let r = oss.send(Method::GET, "/files/", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("total").map(|v| v.as_bytes()), Some(&b"2"[..]));
    let fw =
        r.json.as_array().and_then(|a| a.iter().find(|f| f["_id"] == json!("new_firmware_v1.0.bin"))).expect("listed");
    assert_eq!(
        (&fw["filename"], &fw["length"], &fw["metadata"]),
        (
            &json!("new_firmware_v1.0.bin"),
            &json!(10),
            &json!({"fileType": "1 Firmware Upgrade Image", "oui": "123456", "productClass": "ABC", "version": "1.0"})
        )
    );
    assert!(fw["uploadDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{fw}");
    let notes = r.json.as_array().and_then(|a| a.iter().find(|f| f["_id"] == json!("notes.txt"))).expect("listed");
    assert_eq!(notes["metadata"], json!({}), "headers not given are not in the metadata");
    let (s, _) = oss.call(Method::PUT, "/files/..", None).await;
    assert_eq!(s, 400);

    // DELETE: 200, then 404 as GenieACS answers a file that is not there.
    assert_eq!(oss.call(Method::DELETE, "/files/new_firmware_v1.0.bin", None).await.0, 200);
    assert_eq!(oss.call(Method::DELETE, "/files/new_firmware_v1.0.bin", None).await.0, 404);
    let (_, files) = oss.call(Method::GET, "/files", None).await;
    assert_eq!(
        files.as_array().map(|a| a.iter().map(|f| f["_id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("notes.txt")])
    );
}

/// The reference's first example: refresh all device parameters now (no timeout given:
/// GenieACS's default wait for the session). The ACS walks the tree with GetParameterNames
/// (next level), then reads the leaves with GetParameterValues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_of_the_whole_tree() {
    let dir = TempDir::new("acs-genie-refresh-all");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-6").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let r = oss
        .send(
            Method::POST,
            &format!("/devices/{}/tasks?connection_request", enc(&id)),
            Some(json!({"name": "refreshObject", "objectName": ""})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_task_shape(&r.json, &id, "refreshObject");
}

/// `GET /files/?query={"filename": ...}` and `GET /faults?query=`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_faults_answer_queries() {
    let dir = TempDir::new("acs-genie-fquery");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    for name in ["a.bin", "b.bin"] {
        assert_eq!(
            oss.send_bytes(Method::PUT, &format!("/files/{name}"), &[], Bytes::from_static(b"x")).await.status,
            200
        );
    }
    let r = oss.send(Method::GET, &format!("/files/?{}", q(json!({"filename": "b.bin"}))), None).await;
    assert_eq!((r.status, r.json.as_array().map(Vec::len)), (200, Some(1)), "{}", r.json);
    assert_eq!(r.json[0]["_id"], json!("b.bin"));
    let r = oss.send(Method::GET, &format!("/faults?{}", q(json!({"device": "nobody"}))), None).await;
    assert_eq!((r.status, r.headers.get("total").map(|v| v.as_bytes())), (200, Some(&b"0"[..])));
}

/// The listing of every status: a query naming `status` sees done tasks too.
fn every_status(mut query: Value) -> String {
    query["status"] = json!({"$exists": true});
    q(query)
}

/// Milliseconds since 1970 of a date the NBI printed.
fn millis(date: &Value) -> i64 {
    date.as_str().and_then(acs::query::parse_date).unwrap_or_else(|| panic!("a date: {date}"))
}

/// Task `expiry` as GenieACS's sanitizeTask reads it: a number is seconds after the task's
/// timestamp, text a date. An expired task is never sent; it is removed at the device's next
/// session ("Task expired" in the log), with the fault in its channel. A bad expiry is a 400
/// with the reason, and nothing is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tasks_are_never_sent_and_go_with_their_faults() {
    let dir = TempDir::new("acs-genie-expiry");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-expiry").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let tasks = format!("/devices/{}/tasks", enc(&id));
    let interval = "Device.ManagementServer.PeriodicInformInterval";
    let before = acs::sim::values(&sim, interval)[0].value.to_lexical().into_owned();

    // Bad expiry: 400 naming it, nothing queued.
    for bad in [json!("next tuesday"), json!(true), json!([60]), json!({"in": 60}), json!(1e300)] {
        let body = json!({"name": "reboot", "expiry": bad});
        let (s, e) = oss.call(Method::POST, &tasks, Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains("expiry")), "{body}: {e}");
    }
    assert_eq!(
        oss.call(Method::GET, &format!("/tasks?{}", every_status(json!({"device": id}))), None).await.1,
        json!([])
    );

    // A number: seconds after the task's timestamp; shown as a date, as GenieACS shows it.
    let (s, later) = oss.call(Method::POST, &tasks, Some(json!({"name": "reboot", "expiry": 3600}))).await;
    assert_eq!(s, 202, "{later}");
    assert_eq!(millis(&later["expiry"]) - millis(&later["timestamp"]), 3_600_000, "{later}");
    let (s, text) = oss.call(Method::POST, &tasks, Some(json!({"name": "reboot", "expiry": "90.5"}))).await;
    assert_eq!((s, millis(&text["expiry"]) - millis(&text["timestamp"])), (202, 90_500), "{text}");
    let (s, date) =
        oss.call(Method::POST, &tasks, Some(json!({"name": "reboot", "expiry": "2100-01-01 00:00:00 +0000"}))).await;
    assert_eq!((s, &date["expiry"]), (202, &json!("2100-01-01T00:00:00.000Z")), "{date}");
    let (_, listed) = oss.call(Method::GET, &format!("/tasks?{}", q(json!({"expiry": {"$exists": true}}))), None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "queried as a field: {listed}");
    for t in [&later, &text, &date] {
        let id = t["_id"].as_str().expect("id");
        assert_eq!(oss.call(Method::DELETE, &format!("/tasks/{id}"), None).await.0, 200);
    }

    // Expired when queued (a date past, or seconds before its timestamp): never sent; gone at
    // the next session.
    let set = |v: u32, expiry: Value| json!({"name": "setParameterValues", "parameterValues": [[interval, v]], "expiry": expiry});
    let (s, past) = oss.call(Method::POST, &tasks, Some(set(4242, json!("2001-02-03T04:05:06Z")))).await;
    assert_eq!(s, 202, "{past}");
    let (s, _) = oss.call(Method::POST, &tasks, Some(set(4343, json!(-1)))).await;
    assert_eq!(s, 202);
    let stats = sim.session(&[]).await.expect("periodic session");
    assert_eq!(stats.requests_served, 0, "nothing sent");
    assert_eq!(acs::sim::values(&sim, interval)[0].value.to_lexical(), before);
    assert_eq!(
        oss.call(Method::GET, &format!("/tasks?{}", every_status(json!({"device": id}))), None).await.1,
        json!([])
    );
    let past_id = past["_id"].as_str().expect("id");
    assert!(
        acs.daemon.log().lines().any(|l| l.contains("Task expired") && l.contains(&format!("task={past_id}"))),
        "logged as GenieACS logs it"
    );

    // A task that faulted and then expired: removed with its fault.
    let uptime = json!({"name": "setParameterValues", "parameterValues": [["Device.DeviceInfo.UpTime", 5, "xsd:unsignedInt"]],
                        "expiry": 2});
    let line = status_line(
        acs.nbi,
        "POST",
        &format!("/devices/{}/tasks?timeout=3000&connection_request", enc(&id)),
        &uptime.to_string(),
    )
    .await;
    assert_eq!(line, "HTTP/1.1 202 Task faulted");
    let (_, faults) = oss.call(Method::GET, "/faults", None).await;
    let task = faults[0]["task"].as_str().expect("the faulted task").to_string();
    assert_eq!(faults[0]["_id"], json!(format!("{id}:task_{task}")));
    let (_, t) = oss.call(Method::GET, &format!("/tasks?{}", q(json!({"_id": task}))), None).await;
    let expiry = millis(&t[0]["expiry"]);
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
        <= expiry
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    sim.session(&[]).await.expect("a session after the expiry");
    assert_eq!(oss.call(Method::GET, "/faults", None).await.1, json!([]));
    assert_eq!(
        oss.call(Method::GET, &format!("/tasks?{}", every_status(json!({"_id": task}))), None).await.1,
        json!([])
    );
}

/// `uniqueKey`: a task posted with one first deletes the device's task of that key that is not
/// done yet (and its fault), as GenieACS's insertTasks does; other keys, other devices and done
/// tasks stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_key_replaces_the_devices_open_task_of_that_key() {
    let dir = TempDir::new("acs-genie-unique");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-unique").await;
    sim.session(&[]).await.expect("bootstrap session");
    let other = acs.sim("genie-unique-2").await;
    other.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let tasks = format!("/devices/{}/tasks", enc(&id));
    let gpv = |name: &str, key: &str| json!({"name": "getParameterValues", "parameterNames": [name], "uniqueKey": key});
    let post = |path: String, body: Value| {
        let oss = &oss;
        async move {
            let (s, t) = oss.call(Method::POST, &path, Some(body)).await;
            assert!(s == 200 || s == 202, "{t}");
            t
        }
    };
    let first = post(tasks.clone(), gpv("Device.DeviceInfo.UpTime", "refresh")).await;
    assert_eq!(first["uniqueKey"], json!("refresh"), "{first}");
    let kept = post(tasks.clone(), gpv("Device.DeviceInfo.UpTime", "another")).await;
    let elsewhere = post(format!("/devices/{}/tasks", enc(&other.device_id())), gpv("Device.", "refresh")).await;
    let second = post(tasks.clone(), gpv("Device.DeviceInfo.SerialNumber", "refresh")).await;
    let (_, listed) = oss.call(Method::GET, "/tasks", None).await;
    let ids: Vec<&Value> = listed.as_array().expect("tasks").iter().map(|t| &t["_id"]).collect();
    assert_eq!(ids, [&kept["_id"], &elsewhere["_id"], &second["_id"]], "{listed}");

    // A done task of the key stays (GenieACS has deleted it anyway; here it is history).
    let path = format!("{tasks}?timeout=3000&connection_request");
    let done = post(path.clone(), gpv("Device.DeviceInfo.SerialNumber", "refresh")).await;
    assert_eq!(done["status"], json!("done"), "{done}");
    // A faulted one goes with its fault.
    let spv = json!({"name": "setParameterValues", "parameterValues": [["Device.DeviceInfo.UpTime", 5, "xsd:unsignedInt"]],
                     "uniqueKey": "uptime"});
    let line = status_line(acs.nbi, "POST", &path, &spv.to_string()).await;
    assert_eq!(line, "HTTP/1.1 202 Task faulted");
    assert_eq!(oss.call(Method::GET, "/faults", None).await.1.as_array().map(Vec::len), Some(1));
    let replacing = post(tasks.clone(), json!({"name": "reboot", "uniqueKey": "uptime"})).await;
    assert_eq!(oss.call(Method::GET, "/faults", None).await.1, json!([]));
    let (_, all) = oss.call(Method::GET, &format!("/tasks?{}", every_status(json!({"device": id}))), None).await;
    let ids: Vec<&Value> = all.as_array().expect("tasks").iter().map(|t| &t["_id"]).collect();
    assert_eq!(ids, [&kept["_id"], &done["_id"], &replacing["_id"]], "{all}");

    // A uniqueKey is text.
    let (s, e) = oss.call(Method::POST, &tasks, Some(json!({"name": "reboot", "uniqueKey": 7}))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("uniqueKey is a string of at most 1024 bytes")));
}

/// `GET /tasks` lists what is not done, as GenieACS (which deletes a task once done): an OSS
/// polling `{"_id": ...}` takes "gone" for "done". A query naming `status` sees every status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_tasks_leave_the_listing_and_stay_reachable_by_status() {
    let dir = TempDir::new("acs-genie-listing");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-listing").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let (s, t) = oss
        .call(
            Method::POST,
            &format!("/devices/{}/tasks", enc(&id)),
            Some(json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]})),
        )
        .await;
    assert_eq!(s, 202);
    let by_id = q(json!({"_id": t["_id"]}));
    let (_, pending) = oss.call(Method::GET, &format!("/tasks?{by_id}"), None).await;
    assert_eq!(pending[0]["status"], json!("pending"), "{pending}");
    sim.session(&[]).await.expect("the session that runs it");
    let r = oss.send(Method::GET, &format!("/tasks?{by_id}"), None).await;
    assert_eq!((r.status, &r.json), (200, &json!([])), "gone once done");
    assert_eq!(r.headers.get("total").map(|v| v.as_bytes()), Some(&b"0"[..]));
    assert_eq!(oss.call(Method::GET, "/tasks", None).await.1, json!([]));
    // Asked for by status (top level, or inside $or), the done task is there with its result.
    for query in [json!({"_id": t["_id"], "status": "done"}), json!({"$or": [{"status": "done"}, {"status": "fault"}]})]
    {
        let (_, done) = oss.call(Method::GET, &format!("/tasks?{}", q(query.clone())), None).await;
        assert_eq!(done.as_array().map(Vec::len), Some(1), "{query}: {done}");
        assert_eq!(done[0]["result"]["parameters"][0][0], json!("Device.DeviceInfo.UpTime"), "{done}");
    }
}

/// `scheduleDownload` naming an uploaded `file` alone is resolved as `download` is: the type
/// from the file's metadata, the URL and FileSize from the stored file (GenieACS's FileSize is
/// the file's length). The session is played by hand to see the requests themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_download_by_file_takes_its_type_url_and_size_from_the_file() {
    use test_support::acs::{cwmp_post, digest, CPE};
    let dir = TempDir::new("acs-genie-sched-file");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-sched").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let tasks = format!("/devices/{}/tasks", enc(&id));
    let image = Bytes::from_static(b"firmware image, 31 bytes long..");
    let put =
        oss.send_bytes(Method::PUT, "/files/fw-2.bin", &[("fileType", "1 Firmware Upgrade Image")], image.clone());
    assert_eq!(put.await.status, 200);
    let window = json!([{"windowStart": 0, "windowEnd": 3600, "windowMode": "1 At Any Time"}]);
    let (s, t) = oss
        .call(
            Method::POST,
            &tasks,
            Some(json!({"name": "scheduleDownload", "file": "fw-2.bin", "timeWindows": window})),
        )
        .await;
    assert_eq!(s, 202, "{t}");
    assert_eq!(
        (&t["file"], &t["fileName"], &t["fileType"]),
        (&json!("fw-2.bin"), &json!("fw-2.bin"), &json!("1 Firmware Upgrade Image")),
        "{t}"
    );
    let (s, t) = oss.call(Method::POST, &tasks, Some(json!({"name": "download", "file": "fw-2.bin"}))).await;
    assert_eq!(s, 202, "{t}");
    // A file not uploaded, or uploaded without a type: 400, nothing queued.
    let (s, e) = oss
        .call(
            Method::POST,
            &tasks,
            Some(json!({"name": "scheduleDownload", "file": "none.bin", "timeWindows": window})),
        )
        .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("scheduleDownload: no file \"none.bin\" uploaded (PUT /files/none.bin first)"))
    );
    let (s, e) = oss.call(Method::POST, &tasks, Some(json!({"name": "scheduleDownload", "timeWindows": window}))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("fileName is required (or file, naming an uploaded file)")));
    assert_eq!(
        oss.call(Method::GET, &format!("/tasks?{}", q(json!({"device": id}))), None).await.1.as_array().map(Vec::len),
        Some(2)
    );

    // The session, by hand.
    let http = test_support::http::Http::new();
    let inform = sim.inform_envelope(&["2 PERIODIC"]);
    let first = cwmp_post(&http, acs.cwmp, inform.clone(), None, None).await;
    let auth = digest(&first.challenges, CPE.0, CPE.1, "abcd");
    let opened = cwmp_post(&http, acs.cwmp, inform, None, Some(&auth)).await;
    assert_eq!(opened.status, 200);
    let cookie = opened.cookie.expect("a session cookie");
    let mut reply = cwmp_post(&http, acs.cwmp, Bytes::new(), Some(&cookie), None).await;
    let mut seen = Vec::new();
    while reply.status == 200 {
        let env = cwmp::Envelope::decode(&reply.body, &cwmp::Limits::default()).expect("a request from the ACS");
        let answer = match &env.body {
            cwmp::Body::ScheduleDownload(d) => {
                seen.push((d.file_type.clone(), d.url.clone(), d.file_size));
                cwmp::Body::ScheduleDownloadResponse(cwmp::ScheduleDownloadResponse {})
            }
            cwmp::Body::Download(d) => {
                seen.push((d.file_type.clone(), d.url.clone(), d.file_size));
                cwmp::Body::DownloadResponse(cwmp::DownloadResponse {
                    status: 1,
                    start_time: cwmp::DateTime::unknown(),
                    complete_time: cwmp::DateTime::unknown(),
                })
            }
            other => panic!("unexpected {}", other.method_name()),
        };
        let answer = cwmp::Envelope::new(env.ns, env.header.id.clone(), answer).encode();
        reply = cwmp_post(&http, acs.cwmp, answer, Some(&cookie), None).await;
    }
    assert_eq!(reply.status, 204);
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (file_type, url, size) in &seen {
        assert_eq!((file_type.as_str(), *size), ("1 Firmware Upgrade Image", image.len() as u32));
        assert!(url.starts_with(&format!("http://{}/files/fw-2.bin?", acs.cwmp)), "{url}");
    }
}

/// A task whose expiry passes while the device's session is open is not sent in it either (the
/// session is played by hand so the expiry passes while the device works on the task before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_expiring_during_the_session_is_not_sent() {
    use test_support::acs::{cwmp_post, digest, CPE};
    let dir = TempDir::new("acs-genie-expiry-session");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-expiry-session").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let tasks = format!("/devices/{}/tasks", enc(&id));
    let read = json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]});
    assert_eq!(oss.call(Method::POST, &tasks, Some(read)).await.0, 202);
    let (s, t) = oss.call(Method::POST, &tasks, Some(json!({"name": "reboot", "expiry": 2}))).await;
    assert_eq!(s, 202, "{t}");
    let expiry = millis(&t["expiry"]);
    let http = test_support::http::Http::new();
    let inform = sim.inform_envelope(&["2 PERIODIC"]);
    let first = cwmp_post(&http, acs.cwmp, inform.clone(), None, None).await;
    let auth = digest(&first.challenges, CPE.0, CPE.1, "abcd");
    let opened = cwmp_post(&http, acs.cwmp, inform, None, Some(&auth)).await;
    assert_eq!(opened.status, 200);
    let cookie = opened.cookie.expect("a session cookie");
    let reply = cwmp_post(&http, acs.cwmp, Bytes::new(), Some(&cookie), None).await;
    let env = cwmp::Envelope::decode(&reply.body, &cwmp::Limits::default()).expect("the read");
    assert_eq!(env.body.method_name(), "GetParameterValues");
    // The device takes its time: the reboot's expiry passes.
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
        <= expiry
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer = cwmp::Envelope::new(env.ns, env.header.id.clone(), sim.apply(&env.body)).encode();
    let reply = cwmp_post(&http, acs.cwmp, answer, Some(&cookie), None).await;
    assert_eq!(reply.status, 204, "the reboot not sent: {:?}", reply.body);
    let (_, left) = oss.call(Method::GET, &format!("/tasks?{}", every_status(json!({"name": "reboot"}))), None).await;
    assert_eq!(left, json!([]));
    assert!(acs.daemon.log().lines().any(|l| l.contains("Task expired") && l.contains("reboot")));
}
