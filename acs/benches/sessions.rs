//! ACS session throughput with the ACS's own simulator: with 10,000 devices registered, 200
//! concurrent simulated CPEs each run sessions of Inform, one 20-parameter GetParameterValues and
//! the empty POST, back to back. Reports sessions per second, p50 and p99 session time and the
//! ACS's RSS; then the ACS's RSS with 100,000 devices registered. The simulator shares the
//! machine's cores with the ACS: the comparison with a floor is `--bench stores`, whose load
//! generator costs little and runs apart. `cargo bench -p acs --bench sessions` (BENCH_SECS,
//! BENCH_CPES, BENCH_DEVICES).
#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use acs::sim::{load, SimCpe};
use acs::store::prelude::*;
use acs::store::{CachedParam, Device, SqliteStore};

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

    println!("ACS sessions (Inform, 20-parameter GPV, empty POST; {devices} devices registered, {cpes} concurrent CPEs, {secs} s):");
    println!("  acs   : {report}; ACS RSS {} KiB (peak {} KiB)", acs_rss.0, acs_rss.1);
    println!("  (the floor, and the ACS measured against it with a load generator of its own: --bench stores)");

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
