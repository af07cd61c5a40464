//! Requests and script runs per session for a typical provision set on a TR-098 gateway, by our
//! algorithm and by a model of GenieACS's (`acs::script::Strategy::Revisions`: every script
//! re-run at every step, values set at the step that declared them, objects listed one level
//! per request, a last run of every script after the last change). The set: the inform
//! interval, the Wi-Fi (SSID and key from the serial number), NTP servers, a static route made
//! by alias with its gateway, a tag from the firmware version, and a refresh of the LAN hosts.
//! Each strategy runs a bootstrap session (nothing configured yet) and a periodic session after
//! it (everything holds), on its own device and database, driving the simulated gateway's data
//! model directly (no HTTP: requests are counted, not timed). Prints a table, with the wall
//! time of each session's provisioning. `cargo bench -p acs --bench provisioning`.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use acs::script::{engine::Limits, Call, Next, Provisioning, Settings, Strategy};
use acs::store::prelude::*;
use acs::store::{CachedParam, Device, ScriptKind, SqliteStore, Task, TaskStatus};
use acs::tasks::{Begin, Context, Running, Step};

const WLAN: &str = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.";
const ROUTE: &str =
    "InternetGatewayDevice.Layer3Forwarding.Forwarding.[DestIPAddress:10.0.0.0,DestSubnetMask:255.0.0.0]";

fn provisions() -> Vec<(&'static str, String)> {
    vec![
        (
            "inform",
            r#"declare("InternetGatewayDevice.ManagementServer.PeriodicInformEnable", null, {value: true});
declare("InternetGatewayDevice.ManagementServer.PeriodicInformInterval", null, {value: 300});"#
                .into(),
        ),
        (
            "wifi",
            format!(
                r#"const sn = declare("DeviceID.SerialNumber", {{value: 1}}).value[0];
declare("{WLAN}SSID", null, {{value: "home-" + sn.slice(-4)}});
declare("{WLAN}KeyPassphrase", null, {{value: "key-" + sn}});
declare("{WLAN}Enable", null, {{value: true}});"#
            ),
        ),
        (
            "ntp",
            r#"declare("InternetGatewayDevice.Time.NTPServer1", null, {value: "ntp1.example.net"});
declare("InternetGatewayDevice.Time.NTPServer2", null, {value: "ntp2.example.net"});"#
                .into(),
        ),
        (
            "route",
            format!(
                r#"declare("{ROUTE}", {{path: Date.now()}}, {{path: 1}});
declare("{ROUTE}.GatewayIPAddress", {{value: 1}}, {{value: "192.168.1.254"}});
declare("{ROUTE}.Enable", {{value: 1}}, {{value: true}});"#
            ),
        ),
        (
            "firmware-tag",
            r#"const v = declare("InternetGatewayDevice.DeviceInfo.SoftwareVersion", {value: 1}).value[0];
declare("Tags.fw-" + v.replace(/[^A-Za-z0-9]/g, "_"), null, {value: true});"#
                .into(),
        ),
        (
            "hosts",
            r#"declare("InternetGatewayDevice.LANDevice.1.Hosts.Host.*.*", {path: Date.now(), value: Date.now()});"#
                .into(),
        ),
    ]
}

/// `BENCH_VERBOSE=1`: each request printed.
fn verbose() -> bool {
    std::env::var_os("BENCH_VERBOSE").is_some()
}

struct Counts {
    rpcs: u32,
    runs: u32,
    rounds: u32,
    time: Duration,
}

/// One session: the Inform recorded, then the scripts' rounds, each request answered by the
/// gateway's data model.
fn session(store: &SqliteStore, sim: &acs::sim::SimCpe, id: &str, now: i64, strategy: Strategy) -> Counts {
    let inform: Vec<CachedParam> = datamodel::factory::TR098_INFORM
        .iter()
        .flat_map(|n| acs::sim::values(sim, n))
        .map(|p| CachedParam::from_value(&p, now))
        .collect();
    let dev = Device {
        id: id.into(),
        oui: "00A0B1".into(),
        product_class: "SimCPE".into(),
        serial_number: id.rsplit('-').next().unwrap_or_default().into(),
        last_inform: now,
        ..Default::default()
    };
    store.record_session_start(&dev, &inform, &[]).expect("inform");
    let calls = provisions()
        .into_iter()
        .map(|(name, _)| Call { preset: "bench".into(), channel: "default".into(), name: name.into(), args: vec![] })
        .collect();
    let settings = Settings { limits: Limits::default(), extensions: None, strategy };
    let t = Instant::now();
    let (mut prov, faults) = Provisioning::new(store, id, now, calls, &settings).expect("provisioning");
    assert!(faults.is_empty(), "{faults:?}");
    let files = acs::file_urls::FileUrls::new(b"bench", "");
    let mut rpcs = 0;
    loop {
        let (next, faults) = prov.next(store, now).expect("next");
        assert!(faults.is_empty(), "{faults:?}");
        let Next::Send(list) = next else { break };
        for (_, spec) in list {
            let task = Task {
                id: 0,
                device: id.into(),
                key: "bench".into(),
                order: spec.into(),
                status: TaskStatus::Sent,
                attempts: 1,
                not_before: 0,
                created: now,
                result: None,
                terms: Default::default(),
            };
            let ctx = Context { files: &files, now, store: Some(store), scripts: None };
            let Begin::Send(mut run, mut body) = Running::start(task, &ctx) else { continue };
            run.trust_sets = true;
            loop {
                rpcs += 1;
                if verbose() {
                    println!("    {}", acs::sim::describe(&body));
                }
                let resp = sim.apply(&body);
                match run.on_response(resp, store, now) {
                    Step::Next(b) => body = b,
                    Step::Done(_) | Step::AwaitTransfer => break,
                    Step::Fault(f) => panic!("the gateway refused {body:?}: {f:?}"),
                    Step::Failed(f) => panic!("{f:?}"),
                }
            }
        }
    }
    Counts { rpcs, runs: prov.stats.runs, rounds: prov.stats.rounds, time: t.elapsed() }
}

/// A host that answers every declaration with one value: what an engine run costs alone.
struct Quiet(usize);

impl acs::script::engine::Host for Quiet {
    fn declare(
        &mut self,
        _: &str,
        _: &serde_json::Value,
        _: &serde_json::Value,
    ) -> Result<usize, acs::script::engine::Stop> {
        self.0 += 1;
        Ok(self.0 - 1)
    }
    fn get(
        &mut self,
        _: usize,
        _: Option<usize>,
        _: &str,
    ) -> Result<Option<serde_json::Value>, acs::script::engine::Stop> {
        Ok(Some(serde_json::json!(["bench-0001", "xsd:string"])))
    }
    fn size(&mut self, _: usize) -> Result<Option<usize>, acs::script::engine::Stop> {
        Ok(Some(1))
    }
    fn clear(&mut self, _: &str, _: f64, _: &serde_json::Value) -> Result<(), acs::script::engine::Stop> {
        Ok(())
    }
    fn commit(&mut self) -> Result<(), acs::script::engine::Stop> {
        Ok(())
    }
    fn ext(&mut self, _: Vec<String>) -> Result<serde_json::Value, acs::script::engine::Stop> {
        Ok(serde_json::Value::Null)
    }
    fn log(&mut self, _: String) {}
}

fn engine_runs() {
    for (label, src) in [("empty", ""), ("one declare", "declare('A.B', null, {value: 1});")] {
        let script = acs::script::engine::Script { name: "x".into(), source: src.into() };
        let t = Instant::now();
        for _ in 0..1000 {
            let host = std::rc::Rc::new(std::cell::RefCell::new(Quiet(0)));
            acs::script::engine::run(&script, &serde_json::json!([]), 0, 1, host, Limits::default());
        }
        println!("engine ({label}): {:.1} µs per run", t.elapsed().as_secs_f64() * 1e3);
    }
    let (name, source) = provisions().into_iter().find(|(n, _)| *n == "wifi").expect("wifi");
    let script = acs::script::engine::Script { name: name.into(), source };
    let n = 1000;
    let t = Instant::now();
    for _ in 0..n {
        let host = std::rc::Rc::new(std::cell::RefCell::new(Quiet(0)));
        let out = acs::script::engine::run(&script, &serde_json::json!([]), 0, 1, host, Limits::default());
        assert!(matches!(out, acs::script::engine::Outcome::Done(_)), "{out:?}");
    }
    println!(
        "engine: {:.1} µs per run ({n} runs of the wifi script in the thread's engine)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    engine_runs();
    let dir = std::env::temp_dir().join(format!("acs-bench-provisioning-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let now = 1_800_000_000;
    println!("provision set: {} scripts on a TR-098 gateway", provisions().len());
    println!("{:<22} {:>10} {:>6} {:>12} {:>7} {:>10}", "strategy", "session", "RPCs", "script runs", "rounds", "time");
    for (label, strategy) in [("ours (merged)", Strategy::Merged), ("GenieACS model", Strategy::Revisions)] {
        let db = dir.join(format!("{label}.db").replace(' ', "-"));
        let store = SqliteStore::open(&db).expect("store");
        for (name, source) in provisions() {
            store.put_script(ScriptKind::Provision, name, &source).expect("script");
        }
        let serial = "bench-0001";
        let sim = acs::sim::SimCpe::new_tr098(
            serial,
            "http://127.0.0.1:9/",
            "u",
            "p",
            "127.0.0.1:9".parse().expect("addr"),
            ("u", "p"),
        )
        .expect("gateway");
        let id = sim.device_id();
        for (i, what) in ["bootstrap", "periodic"].into_iter().enumerate() {
            let c = session(&store, &sim, &id, now + 300 * i as i64, strategy);
            println!(
                "{label:<22} {what:>10} {:>6} {:>12} {:>7} {:>8.1}ms",
                c.rpcs,
                c.runs,
                c.rounds,
                c.time.as_secs_f64() * 1000.0
            );
        }
        let held = acs::sim::values(&sim, &format!("{WLAN}SSID"));
        assert_eq!(held.first().map(|v| v.value.to_lexical().into_owned()), Some("home-0001".to_string()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
