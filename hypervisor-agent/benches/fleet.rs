//! Fleet operations end to end: NBI → ACS (in this process) → connection request → the
//! `hypervisor-agent` binary (libvirt's test driver, real Open vSwitch) → back.
//!
//! - AddObject of an instance (with its template and VLANs in the same session) taken from a
//!   pool of suspended instances, against the same with the pool disabled (define and start);
//! - one SetParameterValues touching one parameter in each of 200 instances, one session.
//!
//! `cargo bench -p hypervisor-agent --bench fleet` (root, Open vSwitch running: scripts/start-ovs).
//! BENCH_INSTANCES (default 200), BENCH_ADDS (default 10).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use hypervisor_agent::state::{SlotUse, State};
use serde_json::{json, Value};
use test_support::acs::start_acs;
use test_support::agent::{agent_config, start_agent, VIRT};
use test_support::{enc, TempDir};

const AGENT: &str = "host-bench";
const ID: &str = "00A0B1-vRGW%2DHost-host%2Dbench";

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let p = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
    println!(
        "  {name:<44} n={:>3}  median {:>7.1} ms  min {:>7.1} ms  max {:>7.1} ms",
        v.len(),
        p(0.5),
        p(0.0),
        p(1.0)
    );
}

fn main() {
    let instances = env_or("BENCH_INSTANCES", 200);
    let adds = env_or("BENCH_ADDS", 10);
    let dir = TempDir::new("hv-bench");
    let prefix = format!("hb{}", std::process::id() % 1000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs(&rt, &dir, AGENT);
    agent_config(&dir, AGENT, cwmp, &prefix, "10.251.0.0/16", "");
    let agent = start_agent(env!("CARGO_BIN_EXE_hypervisor-agent"), &dir);
    let pooled = |dir: &std::path::Path| {
        State::open(&dir.join("agent.db"))
            .and_then(|s| s.slots())
            .map(|s| s.iter().filter(|x| x.usage == SlotUse::Pooled).count())
            .unwrap_or(0)
    };
    rt.block_on(async {
        nbi.wait_device(ID, &dir.join("agent.log")).await;
        let call = |body: Value| nbi.task(ID, body);
        let ok = |(s, v): (u16, Value)| {
            assert!(s == 200 && v["status"] == "done", "{s} {v}");
            v
        };
        let v = ok(call(json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
            "parameterValues": [["Image", "/var/lib/vrgw/images/small"]]}))
        .await);
        let template = format!("{VIRT}Template.{}", v["result"]["instance"]);
        ok(call(json!({"name": "addObject", "objectName": format!("{VIRT}Pool."),
            "parameterValues": [["Template", template], ["Enable", "true", "xsd:boolean"],
                                ["TargetSize", adds.to_string(), "xsd:unsignedInt"]]}))
        .await);
        while pooled(&dir) < adds {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let add = |c: usize| {
            let template = template.clone();
            async move {
                let t = Instant::now();
                ok(call(json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
                    "parameterValues": [["Template", template], ["SVLAN", "500", "xsd:unsignedInt"],
                                        ["CVLAN", (c + 1).to_string(), "xsd:unsignedInt"]]}))
                .await);
                t.elapsed()
            }
        };
        let mut from_pool = Vec::new();
        for c in 0..adds {
            from_pool.push(add(c).await);
        }
        ok(call(json!({"name": "setParameterValues", "parameterValues": [[format!("{VIRT}Pool.1.Enable"), "false", "xsd:boolean"]]})).await);
        while pooled(&dir) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut cold = Vec::new();
        for c in adds..2 * adds {
            cold.push(add(c).await);
        }
        // Instances to touch (not provisioned: their settings live in their profiles).
        // Queued without connection requests (as an OSS does in bulk), then run in one session.
        let have = 2 * adds;
        for _ in have..instances {
            let path = format!("/devices/{}/tasks", enc(ID));
            let (s, v) = nbi.call(hyper::Method::POST, &path, Some(json!({"name": "addObject", "objectName": format!("{VIRT}Instance.")}))).await;
            assert_eq!(s, 202, "{v}");
        }
        ok(call(json!({"name": "getParameterValues", "parameterNames": [format!("{VIRT}InstanceNumberOfEntries")]})).await);
        let (_, v) = call(json!({"name": "getParameterValues", "parameterNames": [format!("{VIRT}InstanceNumberOfEntries")]})).await;
        assert!(v.to_string().contains(&format!("\"{instances}\"")), "{v}");
        let list: Vec<Value> = (1..=instances)
            .map(|n| json!([format!("{VIRT}Instance.{n}.Device.DHCPv4.Server.Pool.1.LeaseTime"), (3600 + n).to_string(), "xsd:int"]))
            .collect();
        let mut spv = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            ok(call(json!({"name": "setParameterValues", "parameterValues": list.clone()})).await);
            spv.push(t.elapsed());
        }
        // A no-op task for the floor: one session with one GetParameterValues.
        let mut floor = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            ok(call(json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]})).await);
            floor.push(t.elapsed());
        }
        println!("hypervisor agent, end to end through the ACS's NBI (connection request, session, answer):");
        summary("AddObject instance from the pool", from_pool);
        summary("AddObject instance, pool empty (define+start)", cold);
        summary(&format!("SetParameterValues, 1 parameter x {instances} instances"), spv);
        summary("floor: one GetParameterValues session", floor);
    });
    drop(agent);
    for br in ["trunk", "park", "s500"] {
        let _ =
            std::process::Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{prefix}-{br}")]).status();
    }
}
