//! Sessions per second on each store, against an honest floor. The load comes from `cwmp-load`
//! (a lean client, not the ACS's simulator) in a process of its own, whose CPU time is reported
//! apart; the floor is a bare hyper server in this process (idle otherwise) answering the same
//! exchanges with recorded bytes: the Inform's 401 and its Digest answer, the InformResponse,
//! the 20-parameter GetParameterValues, the 204. Then the ACS on SQLite, and on PostgreSQL
//! (a cluster of the bench's own, durable settings) with 1, 2 and 3 nodes (HAProxy in front of
//! 2 and 3), each with 10,000 devices registered and a refresh preset on 2 PERIODIC; for
//! PostgreSQL, the database's work per session (transactions, rows written, WAL bytes).
//!
//! `cargo bench -p acs --bench stores` (BENCH_SECS, default 10; BENCH_CPES, 200; BENCH_DEVICES,
//! 10000; BENCH_NODES, "1,2,3"). Needs PostgreSQL and HAProxy (Debian's packages).
#![allow(missing_docs)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use acs::store::{CachedParam, Device, Store};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

const TOKEN: &str = "bench-token-0123456789";
const PASSWORD: &str = "bench-cpe-secret";

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// What one `cwmp-load` run printed, and the CPU seconds of the ACS processes meanwhile.
#[derive(Debug, Default, Clone)]
struct Run {
    sessions: f64,
    per_second: f64,
    p50: f64,
    p99: f64,
    failed: f64,
    load_cpu: f64,
    acs_cpu: f64,
}

fn cpu_s(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn load(target: SocketAddr, dir: &Path, acs: &[u32]) -> Run {
    let (secs, cpes, devices) = (env_or("BENCH_SECS", 10), env_or("BENCH_CPES", 200), env_or("BENCH_DEVICES", 10_000));
    let before: f64 = acs.iter().map(|p| cpu_s(*p)).sum();
    let out = Command::new(env!("CARGO_BIN_EXE_cwmp-load"))
        .args(["--target", &target.to_string(), "--devices", &devices.to_string()])
        .args(["--concurrency", &cpes.to_string(), "--secs", &secs.to_string(), "--user", "cpe"])
        .arg("--password-file")
        .arg(dir.join("cpe.pass"))
        .output()
        .expect("cwmp-load");
    let after: f64 = acs.iter().map(|p| cpu_s(*p)).sum();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let f = |k: &str| {
        text.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}="))?.parse::<f64>().ok()).unwrap_or(0.0)
    };
    if !out.stderr.is_empty() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Run {
        sessions: f("sessions"),
        per_second: f("per_second"),
        p50: f("p50_ms"),
        p99: f("p99_ms"),
        failed: f("failed"),
        load_cpu: f("cpu_s"),
        acs_cpu: after - before,
    }
}

fn print(name: &str, r: &Run, floor: f64, extra: &str) {
    let per = r.sessions.max(1.0);
    println!(
        "  {name:<22} {:>7.0}/s  p50 {:>6.1} ms  p99 {:>6.1} ms  failed {:>4}  / floor {:.2}  ACS CPU {:>5.0} µs/session  \
         load CPU {:>4.0} µs/session{extra}",
        r.per_second,
        r.p50,
        r.p99,
        r.failed,
        r.per_second / floor.max(1e-9),
        r.acs_cpu / per * 1e6,
        r.load_cpu / per * 1e6,
    );
}

/// The floor: the same exchanges answered from recorded bytes, no logic.
async fn floor(gpv: Bytes) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let ir = Bytes::from(
        cwmp::Envelope::new(
            cwmp::CwmpNs::V1_2,
            Some("load-1".into()),
            cwmp::Body::InformResponse(cwmp::InformResponse { max_envelopes: 1 }),
        )
        .encode(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (ir, gpv) = (ir.clone(), gpv.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (ir, gpv) = (ir.clone(), gpv.clone());
                    async move {
                        let authed = req.headers().contains_key(hyper::header::AUTHORIZATION);
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let mut r = Response::new(Full::new(Bytes::new()));
                        if body.is_empty() {
                            *r.body_mut() = Full::new(gpv);
                        } else if body.windows(7).any(|w| w == b"Inform>") {
                            if authed {
                                *r.body_mut() = Full::new(ir);
                                r.headers_mut().insert(
                                    hyper::header::SET_COOKIE,
                                    hyper::header::HeaderValue::from_static("acs_session=0123456789abcdef; Path=/"),
                                );
                            } else {
                                *r.status_mut() = StatusCode::UNAUTHORIZED;
                                r.headers_mut().insert(
                                    hyper::header::WWW_AUTHENTICATE,
                                    hyper::header::HeaderValue::from_static(
                                        "Digest realm=\"floor\", qop=\"auth\", algorithm=MD5, nonce=\"0123456789abcdef\"",
                                    ),
                                );
                            }
                        } else {
                            *r.status_mut() = StatusCode::NO_CONTENT;
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// 20 names of the simulated device's `Device.DeviceInfo.` (what the refresh preset reads).
fn names() -> Vec<String> {
    let probe = acs::sim::SimCpe::new(
        "probe",
        "http://127.0.0.1:9/",
        "cpe",
        "cpe",
        "127.0.0.1:9".parse().expect("addr"),
        ("cr", "cr"),
    );
    let names: Vec<String> = probe
        .with_model(|m| m.get_parameter_names("Device.DeviceInfo.", false).unwrap_or_default())
        .into_iter()
        .map(|p| p.name)
        .filter(|n| !n.ends_with('.'))
        .take(20)
        .collect();
    assert_eq!(names.len(), 20);
    names
}

/// `n` devices `bench-{i}` registered through the store (not the wire), and the preset.
fn register(store: &dyn Store, n: u64, names: &[String]) {
    for i in 0..n {
        let id = format!("00A0B1-SimCPE-bench%2D{i}");
        let d = Device {
            id: id.clone(),
            manufacturer: "vRGW Project".into(),
            oui: "00A0B1".into(),
            product_class: "SimCPE".into(),
            serial_number: format!("bench-{i}"),
            cr_url: format!("http://127.0.0.1:9/cr/bench-{i}"),
            last_inform: 1,
            ..Device::default()
        };
        store.record_inform(&d).expect("device");
        let p = |n: &str, v: &str| CachedParam { name: n.into(), ty: "string".into(), value: v.into(), updated: 1 };
        store
            .cache_params(
                &id,
                &[p("Device.DeviceInfo.SoftwareVersion", "0.1.0"), p("Device.DeviceInfo.ProvisioningCode", "bench")],
            )
            .expect("params");
    }
    store.flush().expect("flush");
    let preset =
        serde_json::json!({"events": {"2 PERIODIC": true}, "configurations": [{"type": "refresh", "names": names}]});
    store.put_preset("refresh", &preset).expect("preset");
}

fn start_acs(dir: &Path, name: &str, store_toml: &str) -> (Child, SocketAddr) {
    let toml = dir.join(format!("{name}.toml"));
    let text = format!(
        "{store_toml}[nbi]\ntokens = [\"{TOKEN}\"]\n[cwmp]\nsession_timeout_secs = 30\n\
         [[cwmp.cpe_credentials]]\nusername = \"cpe\"\npassword = \"{PASSWORD}\"\ndevice_prefix = \"00A0B1-SimCPE-\"\n"
    );
    test_support::acs::write_secret(&toml, &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_acs"))
        .args(["--cwmp-listen", "127.0.0.1:0", "--nbi-listen", "127.0.0.1:0", "--portal-listen", "off"])
        .arg("--config")
        .arg(&toml)
        .arg("--db")
        .arg(dir.join(format!("{name}.db")))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("acs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("line");
    let addr = line.split_whitespace().find_map(|w| w.strip_prefix("cwmp=")).expect("cwmp addr");
    (child, addr.parse().expect("addr"))
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn main() {
    let dir = std::env::temp_dir().join(format!("acs-bench-stores-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    test_support::acs::write_secret(&dir.join("cpe.pass"), PASSWORD);
    let (secs, cpes, devices) = (env_or("BENCH_SECS", 10), env_or("BENCH_CPES", 200), env_or("BENCH_DEVICES", 10_000));
    let names = names();
    println!("CWMP sessions (Inform with Digest, 20-parameter GetParameterValues, 204; {devices} devices, {cpes} concurrent, {secs} s; load from cwmp-load, one thread of its own):");

    // The floor, in this process (idle but for it).
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let gpv = Bytes::from(
        cwmp::Envelope::new(
            cwmp::CwmpNs::V1_2,
            Some("acs-1".into()),
            cwmp::Body::GetParameterValues(cwmp::GetParameterValues { parameter_names: names.clone() }),
        )
        .encode(),
    );
    let floor_addr = rt.block_on(floor(gpv));
    let f = load(floor_addr, &dir, &[std::process::id()]);
    print("floor (bare hyper)", &f, f.per_second, "");
    drop(rt);

    // SQLite.
    {
        let store = acs::store::SqliteStore::open(&dir.join("sqlite.db")).expect("sqlite");
        register(&store, devices, &names);
    }
    let (acs, addr) = start_acs(&dir, "sqlite", "");
    let r = load(addr, &dir, &[acs.id()]);
    print("ACS, SQLite", &r, f.per_second, "");
    stop(acs);

    // PostgreSQL: 1, 2, 3 nodes.
    let pg = test_support::pg::Restartable::start(&dir);
    let password = std::fs::read_to_string(&pg.database.password_file).expect("password");
    {
        let store = acs::store::PgStore::open(&pg.database.url, Some(password.trim()), 4, "bench").expect("pg");
        register(&store, devices, &names);
    }
    let store_toml = |i: usize| {
        format!(
            "[store]\nurl = \"{}\"\npassword_file = \"{}\"\nnode = \"bench{i}\"\n\n",
            pg.database.url,
            pg.database.password_file.display()
        )
    };
    let counters = || -> Vec<f64> {
        pg.psql(
            "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted,
                    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')
             FROM pg_stat_database WHERE datname = 'acs'",
        )
        .split('|')
        .map(|v| v.trim().parse().unwrap_or(0.0))
        .collect()
    };
    let nodes: Vec<usize> = std::env::var("BENCH_NODES")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    for n in nodes {
        let started: Vec<(Child, SocketAddr)> =
            (1..=n).map(|i| start_acs(&dir, &format!("pg{i}"), &store_toml(i))).collect();
        let pids: Vec<u32> = started.iter().map(|(c, _)| c.id()).collect();
        let lb = (n > 1).then(|| {
            let backends: Vec<test_support::haproxy::Backend<'_>> = started
                .iter()
                .enumerate()
                .map(|(i, (_, cwmp))| test_support::haproxy::Backend {
                    name: ["acs1", "acs2", "acs3", "acs4"][i.min(3)],
                    cwmp: *cwmp,
                    nbi: *cwmp,
                })
                .collect();
            test_support::haproxy::Haproxy::start(&dir, &backends)
        });
        let target = lb.as_ref().map_or(started[0].1, |h| h.cwmp);
        let before = counters();
        let r = load(target, &dir, &pids);
        let after = counters();
        let per = r.sessions.max(1.0);
        let d = |i: usize| (after.get(i).copied().unwrap_or(0.0) - before.get(i).copied().unwrap_or(0.0)) / per;
        let extra = format!("  | {:.1} transactions, {:.1} rows, {:.0} WAL bytes per session", d(0), d(1), d(2));
        let name = if n == 1 { "ACS, PostgreSQL, 1 node".to_string() } else { format!("ACS, PostgreSQL, {n} nodes") };
        print(&name, &r, f.per_second, &extra);
        drop(lb);
        for (c, _) in started {
            stop(c);
        }
    }
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
