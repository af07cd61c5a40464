//! The ACS's metrics and health check: `GET /metrics` on the NBI (behind its token) counts what
//! a CPE's sessions, a task and a connection request did; `GET /health` on the CWMP listener
//! answers a load balancer.

use hyper::Method;
use serde_json::json;
use test_support::acs::AcsCommand;
use test_support::{NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";

/// The value of the sample `name` (with its labels) in the exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sessions_tasks_and_connection_requests() {
    let dir = TempDir::new("acs-metrics");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let http = test_support::http::Http::new();

    let health = http.send(Method::GET, &format!("http://{}/health", acs.cwmp), &[], bytes::Bytes::new()).await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let metrics = || async {
        let url = format!("http://{}/metrics", acs.nbi);
        let r =
            http.send(Method::GET, &url, &[("authorization", &format!("Bearer {TOKEN}"))], bytes::Bytes::new()).await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")), "{r:?}");
        r.text()
    };
    let r = oss.with_token(None).send(Method::GET, "/metrics", None).await;
    assert_eq!(r.status, 401, "behind the NBI's token");

    let sim = acs.sim("metrics-1").await;
    sim.session(&[]).await.expect("a session");
    let (s, t) = oss
        .task(
            &sim.device_id(),
            json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]}),
        )
        .await;
    assert_eq!(s, 200, "{t}");

    // The task is done before its session's last exchange: the session is counted a moment later.
    let mut text = metrics().await;
    for _ in 0..50 {
        if sample(&text, "acs_sessions_total{outcome=\"completed\"}") == Some(2.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        text = metrics().await;
    }
    assert_eq!(sample(&text, "acs_sessions_total{outcome=\"completed\"}"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "acs_tasks_finished_total{outcome=\"done\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "acs_connection_requests_total{result=\"answered\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "acs_tasks_open{status=\"pending\"}"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "acs_sessions_open"), Some(0.0), "{text}");
    let flushes = sample(&text, "acs_store_flush_seconds_count").unwrap_or(0.0);
    assert!(flushes >= 1.0, "the Informs' cache rows went through the group commit: {text}");
    assert!(sample(&text, "acs_store_batch_writes_sum").unwrap_or(0.0) >= 1.0, "{text}");

    // A wrong password is a refused session.
    let bad = acs::sim::SimCpe::new(
        "metrics-2",
        &format!("http://{}/", acs.cwmp),
        test_support::acs::CPE.0,
        "not-the-password",
        "127.0.0.1:9".parse().expect("addr"),
        test_support::acs::CR,
    );
    assert!(bad.session(&[]).await.is_err(), "refused");
    let text = metrics().await;
    assert_eq!(sample(&text, "acs_sessions_total{outcome=\"refused\"}"), Some(1.0), "{text}");
}
