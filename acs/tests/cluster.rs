//! ACS nodes sharing one PostgreSQL database (a cluster of the test's own, whatever store the
//! other suites run on): one session per device across nodes, a task sent by one node only,
//! and a node killed mid-session whose device the others take over once its lease expires.

use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::{cwmp_post, digest, AcsCommand, AcsProcess, CPE};
use test_support::http::Http;
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "cluster-token-0123456789";
/// The nodes' session timeout: a device's lease lasts it and 5 s more.
const SESSION_TIMEOUT: u64 = 2;

fn node(dir: &TempDir, name: &str, db: &test_support::pg::Database) -> AcsProcess {
    AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join(format!("{name}.db")), TOKEN)
        .postgres(db)
        .config(&format!("[cwmp]\nsession_timeout_secs = {SESSION_TIMEOUT}\n"))
        .start()
}

async fn tasks_of(oss: &NbiClient<'_>, device: &str) -> Value {
    let q = enc(&json!({"device": device}).to_string());
    oss.call(Method::GET, &format!("/tasks?query={q}"), None).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_has_one_session_across_nodes_and_a_dead_nodes_device_is_taken_over() {
    let dir = TempDir::new("acs-cluster");
    let db = test_support::pg::cluster().database_in(dir.path());
    let mut a = node(&dir, "a", &db);
    let b = node(&dir, "b", &db);
    let (oss_a, oss_b) = (NbiClient::new(a.nbi, TOKEN), NbiClient::new(b.nbi, TOKEN));
    let http = Http::new();

    // Registered through node a, seen by node b.
    let cpe = a.sim("shared").await;
    cpe.session(&["0 BOOTSTRAP", "1 BOOT"]).await.expect("bootstrap on a");
    let id = cpe.device_id();
    let (s, list) =
        oss_b.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": id}).to_string())), None).await;
    assert_eq!((s, list.as_array().map(Vec::len)), (200, Some(1)), "{list}");

    // A task queued on node b, for the device's next session.
    let body = json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]});
    let (s, task) = oss_b.call(Method::POST, &format!("/devices/{}/tasks", enc(&id)), Some(body)).await;
    assert_eq!(s, 202, "{task}");
    let task_id = task["_id"].as_str().expect("task id").to_string();

    // A session opened on node a by hand (the Inform answered, nothing more yet).
    let inform = cpe.inform_envelope(&["2 PERIODIC"]);
    let first = cwmp_post(&http, a.cwmp, inform.clone(), None, None).await;
    assert_eq!(first.status, 401);
    let auth = digest(&first.challenges, CPE.0, CPE.1, "0a");
    let opened = cwmp_post(&http, a.cwmp, inform.clone(), None, Some(&auth)).await;
    assert_eq!(opened.status, 200);
    let cookie = opened.cookie.expect("session cookie");

    // The same device on node b meanwhile: refused, to come back.
    let err = cpe_on(&b, &cpe).session(&[]).await.expect_err("a second session on another node");
    assert!(err.contains("503"), "{err}");

    // Node a sends the task (the empty POST asks for the ACS's requests): claimed once.
    let next = cwmp_post(&http, a.cwmp, bytes::Bytes::new(), Some(&cookie), None).await;
    assert_eq!(next.status, 200);
    let env = cwmp::Envelope::decode(&next.body, &cwmp::Limits::default()).expect("a request");
    assert!(matches!(env.body, cwmp::Body::GetParameterValues(_)), "{:?}", env.body);
    let listed = tasks_of(&oss_a, &id).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    cpe.take_requests();

    // Node a dies with the session open and the task sent, unanswered.
    a.daemon.kill();
    let err = cpe_on(&b, &cpe).session(&[]).await.expect_err("the lease is still node a's");
    assert!(err.contains("503"), "{err}");
    // Its lease expires (session timeout + 5 s); node b takes the device over and runs the task.
    let deadline = Instant::now() + Duration::from_secs(SESSION_TIMEOUT + 15);
    loop {
        match cpe_on(&b, &cpe).session(&[]).await {
            Ok(_) => break,
            Err(e) if e.contains("503") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Err(e) => panic!("node b never took the device over: {e}"),
        }
    }
    let (s, done) =
        oss_b.call(Method::GET, &format!("/tasks?query={}", enc(&json!({"_id": task_id}).to_string())), None).await;
    assert_eq!(s, 200);
    assert_eq!(done, json!([]), "the task ran on node b and is done (GenieACS lists no done task)");
    let (_, faults) = oss_b.call(Method::GET, "/faults", None).await;
    assert_eq!(faults, json!([]), "no fault invented");
    let ran: Vec<String> = cpe.take_requests().into_iter().filter(|r| r.starts_with("GetParameterValues")).collect();
    assert_eq!(ran, ["GetParameterValues Device.DeviceInfo.SoftwareVersion"], "run once, by node b");
}

/// `cpe`, its next sessions sent to `node`.
fn cpe_on<'a>(node: &AcsProcess, cpe: &'a acs::sim::SimCpe) -> &'a acs::sim::SimCpe {
    cpe.set_acs_url(&format!("http://{}/", node.cwmp));
    cpe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_posted_to_one_node_runs_in_a_session_on_another_and_answers_there() {
    let dir = TempDir::new("acs-cluster-tasks");
    let db = test_support::pg::cluster().database_in(dir.path());
    let (a, b) = (node(&dir, "a", &db), node(&dir, "b", &db));
    let oss_a = NbiClient::new(a.nbi, TOKEN);
    let cpe = a.sim("roamer").await;
    cpe.session(&["0 BOOTSTRAP", "1 BOOT"]).await.expect("bootstrap on a");
    let id = cpe.device_id();
    // Its connection request is answered by a session on node b (a load balancer's choice).
    cpe_on(&b, &cpe);
    cpe.take_requests();
    let body = json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]});
    let started = Instant::now();
    let (s, task) = oss_a
        .call(Method::POST, &format!("/devices/{}/tasks?timeout=3000&connection_request", enc(&id)), Some(body))
        .await;
    assert_eq!(s, 200, "done within the timeout, though run by node b: {task}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(cpe.take_requests(), ["GetParameterValues Device.DeviceInfo.SoftwareVersion"]);
    assert_eq!(tasks_of(&oss_a, &id).await, json!([]), "nothing left queued");
}
