//! ACS session throughput: with 10,000 devices registered, 200 concurrent simulated CPEs each
//! run sessions of Inform, one 20-parameter GetParameterValues and the empty POST, back to back.
//! Reports sessions per second, p50 and p99 session time and the ACS's RSS; beside it, in the
//! same run, a bare hyper server answering the same bytes (the floor); then the ACS's RSS with
//! 100,000 devices registered. `cargo bench -p acs` (BENCH_SECS, BENCH_CPES, BENCH_DEVICES).
#![allow(missing_docs)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use acs::sim::{load, SimCpe};
use acs::store::prelude::*;
use acs::store::{CachedParam, Device, SqliteStore};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn register(db: &Path, n: u64) {
    let store = SqliteStore::open(db).expect("db");
    for i in 0..n {
        let id = format!("00A0B1-SimCPE-bench%2D{i}"); // serial bench-{i}, escaped as DeviceId::key does
        let d = Device {
            id: id.clone(),
            manufacturer: "vRGW Project".into(),
            oui: "00A0B1".into(),
            product_class: "SimCPE".into(),
            serial_number: format!("bench-{i}"),
            cr_url: format!("http://127.0.0.1:9/cr/bench-{i}"),
            cr_username: String::new(),
            cr_password: String::new(),
            last_inform: 1,
            tags: vec![],
        };
        store.record_inform(&d).expect("device");
        let p = |n: &str, v: &str| CachedParam { name: n.into(), ty: "string".into(), value: v.into(), updated: 1 };
        store
            .cache_params(
                &id,
                &[
                    p("Device.DeviceInfo.SoftwareVersion", "0.1.0"),
                    p("Device.ManagementServer.ParameterKey", ""),
                    p("Device.DeviceInfo.ProvisioningCode", "bench"),
                ],
            )
            .expect("params");
    }
}

fn start_acs(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_acs"))
        .args(["--cwmp-listen", "127.0.0.1:0", "--nbi-listen", "127.0.0.1:0", "--nbi-token", "bench-token-0123456789"])
        .args(["--portal-listen", "off"])
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .args(std::env::var("BENCH_ACS_WORKERS").ok().map(|w| vec!["--workers".to_string(), w]).unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("acs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("line");
    let addr = line.split_whitespace().find_map(|w| w.strip_prefix("cwmp=")).expect("cwmp addr").to_string();
    (child, format!("http://{addr}/"))
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let f = |k: &str| {
        s.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
    };
    (f("VmRSS:"), f("VmHWM:"))
}

fn sims(url: &str, n: u64) -> Vec<Arc<SimCpe>> {
    let cr = "127.0.0.1:9".parse().expect("addr");
    (0..n).map(|i| SimCpe::new(&format!("bench-{i}"), url, "cpe", "cpe", cr, ("cr", "cr"))).collect()
}

/// A hyper server that answers a session's three POSTs with recorded bytes and no logic.
async fn floor(inform_response: String, gpv: String) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (ir, gpv) = (Bytes::from(inform_response), Bytes::from(gpv));
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (ir, gpv) = (ir.clone(), gpv.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (ir, gpv) = (ir.clone(), gpv.clone());
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let r = if body.is_empty() {
                            Response::new(Full::new(gpv))
                        } else if memfind(&body, b"Inform>") {
                            Response::new(Full::new(ir))
                        } else {
                            let mut r = Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = StatusCode::NO_CONTENT;
                            r
                        };
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/")
}

fn memfind(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

fn main() {
    let secs = env_or("BENCH_SECS", 10);
    let cpes = env_or("BENCH_CPES", 200);
    let devices = env_or("BENCH_DEVICES", 10_000);
    let dir = std::env::temp_dir().join(format!("acs-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    let db = dir.join("acs.db");
    register(&db, devices);
    let names: Vec<String> = {
        let probe = SimCpe::new(
            "probe",
            "http://127.0.0.1:9/",
            "cpe",
            "cpe",
            "127.0.0.1:9".parse().expect("addr"),
            ("cr", "cr"),
        );
        probe
            .with_model(|m| m.get_parameter_names("Device.DeviceInfo.", false).unwrap_or_default())
            .into_iter()
            .map(|p| p.name)
            .filter(|n| !n.ends_with('.'))
            .take(20)
            .collect()
    };
    assert_eq!(names.len(), 20);
    let spec = serde_json::json!({"name": "getParameterValues", "parameterNames": names});
    // Every periodic session refreshes 20 parameters (a preset, as an operator would set it up).
    SqliteStore::open(&db)
        .expect("db")
        .put_preset("refresh", &serde_json::json!({"events": {"2 PERIODIC": true}, "configurations": [{"type": "refresh", "names": names}]}))
        .expect("preset");
    let (mut acs, url) = start_acs(&db);
    let devs = sims(&url, cpes);
    let (report, acs_rss) = rt.block_on(async {
        for d in &devs {
            d.session(&[]).await.expect("bootstrap");
        }
        let r = load(devs.clone(), Duration::from_secs(secs), Arc::new(|_| {})).await;
        (r, rss_kib(acs.id()))
    });
    let _ = acs.kill();
    let _ = acs.wait();

    // The floor: the same three exchanges answered from recorded bytes.
    let ir = cwmp::Envelope::new(
        cwmp::CwmpNs::V1_2,
        Some("sim-1".into()),
        cwmp::Body::InformResponse(cwmp::InformResponse { max_envelopes: 1 }),
    )
    .encode();
    let gpv = cwmp::Envelope::new(
        cwmp::CwmpNs::V1_2,
        Some("acs-1".into()),
        cwmp::Body::GetParameterValues(cwmp::GetParameterValues {
            parameter_names: spec["parameterNames"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default(),
        }),
    )
    .encode();
    let floor_report = rt.block_on(async {
        let url = floor(ir, gpv).await;
        load(sims(&url, cpes), Duration::from_secs(secs), Arc::new(|_| {})).await
    });

    println!("ACS sessions (Inform, 20-parameter GPV, empty POST; {devices} devices registered, {cpes} concurrent CPEs, {secs} s):");
    println!("  acs   : {report}; ACS RSS {} KiB (peak {} KiB)", acs_rss.0, acs_rss.1);
    println!("  floor : {floor_report}");
    println!("  acs / floor: {:.2}", report.per_second() / floor_report.per_second().max(1e-9));

    // RSS with 100,000 devices registered.
    let big = dir.join("big.db");
    register(&big, env_or("BENCH_BIG_DEVICES", 100_000));
    let (mut acs, url) = start_acs(&big);
    let (idle, after) = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = rss_kib(acs.id());
        let _ = load(sims(&url, cpes), Duration::from_secs(3), Arc::new(|_| {})).await;
        (idle, rss_kib(acs.id()))
    });
    let _ = acs.kill();
    let _ = acs.wait();
    println!(
        "  100,000 devices registered: ACS RSS idle {} KiB, after 3 s of {cpes}-CPE load {} KiB (peak {} KiB)",
        idle.0, after.0, after.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
