//! ACS nodes sharing one PostgreSQL database (a cluster of the test's own, whatever store the
//! other suites run on): one session per device across nodes, a task sent by one node only,
//! and a node killed mid-session whose device the others take over once its lease expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::{cwmp_post, digest, AcsCommand, AcsProcess, CPE};
use test_support::haproxy::{Backend, Haproxy};
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
    cpe_on_addr(cpe, node.cwmp);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_sessions_stick_to_their_node_and_one_sent_elsewhere_ends_cleanly() {
    let dir = TempDir::new("acs-cluster-haproxy");
    let db = test_support::pg::cluster().database_in(dir.path());
    let (a, b) = (node(&dir, "a", &db), node(&dir, "b", &db));
    let lb = Haproxy::start(
        dir.path(),
        &[Backend { name: "acs1", cwmp: a.cwmp, nbi: a.nbi }, Backend { name: "acs2", cwmp: b.cwmp, nbi: b.nbi }],
    );
    let oss = NbiClient::new(lb.nbi, TOKEN);
    let http = Http::new();
    let cpe = a.sim("behind-lb").await;
    cpe_on_addr(&cpe, lb.cwmp);
    cpe.session(&["0 BOOTSTRAP", "1 BOOT"]).await.expect("bootstrap through HAProxy");
    let id = cpe.device_id();

    // Sessions of several exchanges each, new ones spread over both nodes: each stays whole on
    // its node (HAProxy balances every request; the prefixed cookie keeps a session together).
    let body = json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]});
    for _ in 0..4 {
        let path = format!("/devices/{}/tasks?timeout=5000&connection_request", enc(&id));
        let (s, t) = oss.call(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(s, 200, "{t}");
    }
    let informs =
        |node: &AcsProcess| node.daemon.log().lines().filter(|l| l.contains("Inform") && l.contains("events=")).count();
    assert!(informs(&a) > 0 && informs(&b) > 0, "both nodes took sessions: {} and {}", informs(&a), informs(&b));

    // A session whose next request HAProxy sends to the other node (its cookie names that node,
    // as when the session's node is taken out of service): the other node does not know it and
    // refuses it; the CPE's session fails and it retries later, as TR-069 says.
    let inform = cpe.inform_envelope(&["2 PERIODIC"]);
    // The device's last session (the NBI answered once its task was done) may still be ending:
    // until it has, a new one is refused with 503, and the CPE tries again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pinned, opened) = loop {
        let first = cwmp_post(&http, lb.cwmp, inform.clone(), None, None).await;
        assert_eq!(first.status, 401);
        let pinned = first.cookie.expect("HAProxy's cookie on the challenge");
        let auth = digest(&first.challenges, CPE.0, CPE.1, "0b");
        let opened = cwmp_post(&http, lb.cwmp, inform.clone(), Some(&pinned), Some(&auth)).await;
        if opened.status != 503 || Instant::now() > deadline {
            break (pinned, opened);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let node_name = pinned.strip_prefix("ACSNODE=").expect("HAProxy's cookie");
    assert_eq!(opened.status, 200, "the answer to the challenge went to the node that made it");
    // The task, queued once this session holds the device (queued before, the device's last
    // session, still ending, could have run it): it waits for the CPE's next request here.
    let (s, task) = oss.call(Method::POST, &format!("/devices/{}/tasks", enc(&id)), Some(body.clone())).await;
    assert_eq!(s, 202, "{task}");
    let task_id = task["_id"].as_str().expect("task id").to_string();
    let session = opened.cookie.expect("session cookie");
    assert!(session.starts_with("acs_session="), "{session}");
    let other = if node_name == "acs1" { "acs2" } else { "acs1" };
    let lost = cwmp_post(&http, lb.cwmp, bytes::Bytes::new(), Some(&format!("ACSNODE={other}; {session}")), None).await;
    // Unknown there: it must authenticate and start with an Inform, as any new session.
    assert_eq!(lost.status, 401, "refused, not taken for the session: {:?}", lost.body);
    cpe.take_requests();
    // The session's own node ends it at its timeout and gives the device back; the device's next
    // session (wherever it lands) runs the task, once.
    let deadline = Instant::now() + Duration::from_secs(SESSION_TIMEOUT + 15);
    loop {
        match cpe.session(&[]).await {
            Ok(_) => break,
            Err(e) if e.contains("503") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Err(e) => panic!("the device's next session: {e}"),
        }
    }
    let ran: Vec<String> = cpe.take_requests().into_iter().filter(|r| r.starts_with("GetParameterValues")).collect();
    assert_eq!(ran, ["GetParameterValues Device.DeviceInfo.SoftwareVersion"]);
    let (_, left) =
        oss.call(Method::GET, &format!("/tasks?query={}", enc(&json!({"_id": task_id}).to_string())), None).await;
    assert_eq!(left, json!([]), "done");
    let (_, faults) = oss.call(Method::GET, "/faults", None).await;
    assert_eq!(faults, json!([]), "no fault invented");
}

/// `cpe`, its next sessions sent to `addr`.
fn cpe_on_addr(cpe: &acs::sim::SimCpe, addr: std::net::SocketAddr) {
    cpe.set_acs_url(&format!("http://{addr}/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_a_node_killed_and_the_database_restarted_lose_no_task_and_run_none_twice() {
    use std::sync::atomic::Ordering;
    let dir = TempDir::new("acs-cluster-faults");
    let pg = test_support::pg::Restartable::start(dir.path());
    let (a, b) = (node(&dir, "a", &pg.database), node(&dir, "b", &pg.database));
    let lb = Haproxy::start(
        dir.path(),
        &[Backend { name: "acs1", cwmp: a.cwmp, nbi: a.nbi }, Backend { name: "acs2", cwmp: b.cwmp, nbi: b.nbi }],
    );
    let oss = NbiClient::new(lb.nbi, TOKEN);
    let mut sims = Vec::new();
    for i in 0..12 {
        let sim = b.sim(&format!("load-{i}")).await;
        cpe_on_addr(&sim, lb.cwmp);
        sim.session(&["0 BOOTSTRAP", "1 BOOT"]).await.expect("bootstrap through HAProxy");
        sims.push(sim);
    }
    let base: Vec<u64> = sims.iter().map(|s| s.sets_applied.load(Ordering::SeqCst)).collect();

    // Tasks queued all along (a set each, a value of its own), sessions back to back, and
    // meanwhile: node a SIGKILLed, then PostgreSQL stopped for 1.5 s and started again.
    let ids: Vec<String> = sims.iter().map(|s| s.device_id()).collect();
    let queuing = {
        let (ids, nbi) = (ids.clone(), lb.nbi);
        tokio::spawn(async move {
            let oss = NbiClient::new(nbi, TOKEN);
            let end = Instant::now() + Duration::from_secs(10);
            let mut n = 0u64;
            while Instant::now() < end {
                for id in &ids {
                    n += 1;
                    let set = json!({"name": "setParameterValues",
                        "parameterValues": [["Device.DeviceInfo.ProvisioningCode", format!("v{n}")]]});
                    let _ = oss.send(Method::POST, &format!("/devices/{}/tasks", enc(id)), Some(set)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let chaos = tokio::spawn(async move {
        let mut a = a;
        tokio::time::sleep(Duration::from_secs(2)).await;
        a.daemon.kill();
        tokio::time::sleep(Duration::from_secs(3)).await;
        tokio::task::spawn_blocking(move || {
            pg.stop();
            std::thread::sleep(Duration::from_millis(1500));
            pg.restart();
            pg
        })
        .await
        .expect("restart")
    });
    let report = acs::sim::load(sims.clone(), Duration::from_secs(12), Arc::new(|_| {})).await;
    queuing.await.expect("queuing");
    let _pg = chaos.await.expect("chaos");
    assert!(report.sessions > 0, "{report}");

    // Every device's next sessions (once its lease, if node a held it, expired) run what is left.
    let deadline = Instant::now() + Duration::from_secs(SESSION_TIMEOUT + 30);
    for (sim, id) in sims.iter().zip(&ids) {
        loop {
            let open = tasks_of(&oss, id).await;
            if open == json!([]) {
                break;
            }
            assert!(Instant::now() < deadline, "{id} still has {open}");
            if let Err(e) = sim.session(&[]).await {
                assert!(e.contains("503"), "{id}: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    let (_, faults) = oss.call(Method::GET, "/faults", None).await;
    assert_eq!(faults, json!([]), "no fault invented");
    let mut total = 0;
    for ((sim, id), base) in sims.iter().zip(&ids).zip(base) {
        let q = enc(&json!({"device": id, "status": "done"}).to_string());
        let (_, done) = oss.call(Method::GET, &format!("/tasks?query={q}"), None).await;
        let done = done.as_array().map(Vec::len).unwrap_or(0) as u64;
        let applied = sim.sets_applied.load(Ordering::SeqCst) - base;
        assert_eq!(applied, done, "{id}: each task done was applied once, none lost or run twice");
        total += done;
    }
    assert!(total > 0, "tasks ran: {report}");
    eprintln!("{report}; {total} tasks done");
}
