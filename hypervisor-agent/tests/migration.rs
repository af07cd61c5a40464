//! Migration between two hosts through the ACS's NBI, with the real ACS and two real agent
//! processes on libvirt's test driver (one per agent process: two separate hypervisors) and real
//! Open vSwitch: a context-based migration moves the subscriber's vRGW and its VLAN binding;
//! failures (destination pool empty, destination agent killed) leave it where it ran. The live
//! and image-based modes need two libvirtd that can reach each other: the testbed tests them
//! (testbed/test_e2e.py, `--hosts 2`). Needs Open vSwitch running (scripts/start-ovs).

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::start_acs_for;
use test_support::agent::{agent_config, start_agent, VIRT};
use test_support::{enc, NbiClient, TempDir};

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

fn id(agent: &str) -> String {
    test_support::acs::agent_device(agent)
}

async fn get(nbi: NbiClient<'_>, dev: &str, names: Vec<String>) -> Vec<(String, String)> {
    let (s, v) = nbi.task(dev, json!({"name": "getParameterValues", "parameterNames": names})).await;
    assert_eq!(s, 200, "{v}");
    v["result"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| (p[0].as_str().unwrap_or("").to_string(), p[1].as_str().unwrap_or("").to_string()))
        .collect()
}

/// Instances of `dev`: (number, Subscriber, Status).
async fn instances(nbi: NbiClient<'_>, dev: &str) -> Vec<(u32, String, String)> {
    let ps = get(nbi, dev, vec![format!("{VIRT}Instance.")]).await;
    let mut out: Vec<(u32, String, String)> = Vec::new();
    for (name, value) in &ps {
        let Some(rest) = name.strip_prefix(&format!("{VIRT}Instance.")) else { continue };
        let Some((n, leaf)) = rest.split_once('.') else { continue };
        let Ok(n) = n.parse::<u32>() else { continue };
        if leaf == "Subscriber" {
            let status = ps
                .iter()
                .find(|(p, _)| *p == format!("{VIRT}Instance.{n}.Status"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            out.push((n, value.clone(), status));
        }
    }
    out
}

async fn setup_host(nbi: NbiClient<'_>, dev: &str, pool: u32) {
    let (s, v) = nbi
        .task(
            dev,
            json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
        "parameterValues": [["Name", "base"], ["Image", "/var/lib/vrgw/images/base"]]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let t = v["result"]["instance"].as_u64().expect("template");
    let (s, v) = nbi
        .task(
            dev,
            json!({"name": "addObject", "objectName": format!("{VIRT}Pool."),
        "parameterValues": [["Template", format!("{VIRT}Template.{t}")], ["TargetSize", pool.to_string(), "xsd:unsignedInt"],
                            ["Enable", "true", "xsd:boolean"]]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

async fn migrate(nbi: NbiClient<'_>, dev: &str, n: u32, target: &str, mode: &str, step: u64) -> Value {
    let (s, v) = nbi
        .call(
            Method::POST,
            &format!("/devices/{}/instances/{n}/migrate", enc(dev)),
            Some(json!({"target": target, "mode": mode, "stepTimeout": step})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let mid = v["_id"].as_str().expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, r) = nbi.call(Method::GET, &format!("/migrations/{mid}"), None).await;
        assert_eq!(s, 200, "{r}");
        if r["status"] != "running" {
            return r;
        }
        assert!(Instant::now() < deadline, "the migration never ended: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ovs_bindings(prefix: &str) -> Vec<String> {
    let out = Command::new("ovs-vsctl")
        .args(["--format=csv", "--data=bare", "--no-headings", "--columns=name,tag", "list", "port"])
        .output()
        .expect("ovs-vsctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}l")))
        .map(|l| l.split(',').nth(1).unwrap_or("").to_string())
        .collect()
}

#[test]
fn context_based_migration_through_the_nbi_and_its_failures() {
    let tag = std::process::id() % 1000;
    let root = TempDir::new("hv-mig");
    let (a, b) = (format!("ma{tag}"), format!("mb{tag}"));
    let (da, db) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&da).expect("dir");
    std::fs::create_dir_all(&db).expect("dir");
    let cleanup = |p: &str| {
        for br in ["trunk", "park", "s300"] {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{p}-{br}")]).status();
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs_for(&rt, &root, &[&a, &b], None);
    agent_config(&da, &a, cwmp, &a, "10.251.0.0/16", "");
    agent_config(&db, &b, cwmp, &b, "10.251.128.0/16", "");
    let _ga = start_agent(AGENT_BIN, &da);
    let mut gb = start_agent(AGENT_BIN, &db);
    let (ia, ib) = (id(&a), id(&b));

    rt.block_on(async {
        nbi.wait_device(&ia, &da.join("agent.log")).await;
        nbi.wait_device(&ib, &db.join("agent.log")).await;
        setup_host(nbi, &ia, 0).await;
        setup_host(nbi, &ib, 1).await;
        let (s, v) = nbi
            .task(
                &ia,
                json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
            "parameterValues": [["Subscriber", "sub-7"], ["Template", format!("{VIRT}Template.1")],
                                ["SVLAN", "300", "xsd:unsignedInt"], ["CVLAN", "17", "xsd:unsignedInt"]]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let n = v["result"]["instance"].as_u64().expect("instance") as u32;
        // A setting of the operator's on that vRGW, to travel with it.
        let (s, v) = nbi
            .task(
                &ia,
                json!({"name": "setParameterValues", "parameterValues": [
                [format!("{VIRT}Instance.{n}.Device.WiFi.SSID.1.SSID"), "moved-with-me"]]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        // B's pool has its suspended instance before the move.
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(nbi, &ib, vec![format!("{VIRT}Pool.1.Ready")]).await[0].1 != "1" {
            assert!(Instant::now() < deadline, "B's pool never filled");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        let r = migrate(nbi, &ia, n, &ib, "cold-context", 20).await;
        assert_eq!(r["status"], "completed", "{r}");
        assert!(r["downtime_ms"].as_u64().is_some(), "{r}");
        assert!(r["copied_parameters"].as_u64().unwrap_or(0) > 0, "{r}");
        let m = r["target_instance"].as_u64().expect("target instance") as u32;
        // The instance is under B now, with its subscriber; A has none; one binding, on B.
        assert!(instances(nbi, &ia).await.is_empty());
        assert_eq!(instances(nbi, &ib).await, vec![(m, "sub-7".to_string(), "Running".to_string())]);
        assert!(ovs_bindings(&a).is_empty(), "A still binds: {:?}", ovs_bindings(&a));
        assert_eq!(ovs_bindings(&b), vec!["17".to_string()]);
        let ssid = get(nbi, &ib, vec![format!("{VIRT}Instance.{m}.Device.WiFi.SSID.1.SSID")]).await;
        assert_eq!(ssid[0].1, "moved-with-me");
        // The ACS's records agree: the device list shows the subscriber under B.
        let (_, devs) = nbi.call(Method::GET, "/devices", None).await;
        let holder: Vec<String> = devs
            .as_array()
            .expect("devices")
            .iter()
            .filter(|d| d.to_string().contains("sub-7"))
            .map(|d| d["_id"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(holder, vec![ib.clone()]);

        // Back to A, whose pool is empty: refused at the preparation, nothing changes.
        let r = migrate(nbi, &ib, m, &ia, "cold-context", 20).await;
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r["error"].as_str().unwrap_or("").contains("pool is empty"), "{r}");
        assert!(instances(nbi, &ia).await.is_empty());
        assert_eq!(instances(nbi, &ib).await, vec![(m, "sub-7".to_string(), "Running".to_string())]);

        // To an agent that is down: the step times out, nothing runs late when it returns.
        gb.kill();
        // A live migration between hosts the ACS has not registered (no [[hosts]] entry): refused
        // at once, whatever the hosts report as their MigrationURI.
        let (s, v) = nbi
            .call(
                Method::POST,
                &format!("/devices/{}/instances/99/migrate", enc(&ia)),
                Some(json!({"target": ib, "mode": "live", "stepTimeout": 3})),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v["error"].as_str().unwrap_or("").contains("not registered for live migration"), "{v}");
        let r = migrate(nbi, &ib, m, &ia, "cold-context", 3).await;
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r["error"].as_str().unwrap_or("").contains("did not answer"), "{r}");
        gb = start_agent(AGENT_BIN, &db);
        // Until its BOOT Inform told the ACS its new connection-request address.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, _) = nbi
                .task(&ib, json!({"name": "getParameterValues", "parameterNames": [format!("{VIRT}MigrationURI")]}))
                .await;
            if s == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "B never came back");
        }
        assert!(instances(nbi, &ia).await.is_empty());
        assert_eq!(instances(nbi, &ib).await, vec![(m, "sub-7".to_string(), "Running".to_string())]);
        // Three recorded (two moves, one to the agent that was down); the refused one is not.
        let (_, list) = nbi.call(Method::GET, "/migrations", None).await;
        assert_eq!(list.as_array().map(Vec::len), Some(3));
    });
    drop(gb);
    cleanup(&a);
    cleanup(&b);
}
