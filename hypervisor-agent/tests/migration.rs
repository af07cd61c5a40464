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

/// Two hosts `a` and `b` (agent processes on libvirt's test driver, with the management
/// networks `10.NET.0.0/16` and `10.NET.128.0/16`) under one ACS, in `root/a` and `root/b`;
/// their bridges are removed when it is dropped.
struct Hosts {
    rt: tokio::runtime::Runtime,
    nbi: NbiClient<'static>,
    dirs: (std::path::PathBuf, std::path::PathBuf),
    ids: (String, String),
    names: (String, String),
    daemons: (test_support::Daemon, test_support::Daemon),
}

impl Hosts {
    fn start(root: &TempDir, a: &str, b: &str, net: u8) -> Hosts {
        let (da, db) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&da).expect("dir");
        std::fs::create_dir_all(&db).expect("dir");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let (cwmp, nbi) = start_acs_for(&rt, root, &[a, b], None);
        agent_config(&da, a, cwmp, a, &format!("10.{net}.0.0/16"), "");
        agent_config(&db, b, cwmp, b, &format!("10.{net}.128.0/16"), "");
        let daemons = (start_agent(AGENT_BIN, &da), start_agent(AGENT_BIN, &db));
        Hosts { rt, nbi, dirs: (da, db), ids: (id(a), id(b)), names: (a.into(), b.into()), daemons }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for p in [&self.names.0, &self.names.1] {
            for br in ["trunk", "park", "s300"] {
                let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{p}-{br}")]).status();
            }
        }
    }
}

#[test]
fn context_based_migration_through_the_nbi_and_its_failures() {
    let tag = std::process::id() % 1000;
    let root = TempDir::new("hv-mig");
    let mut h = Hosts::start(&root, &format!("ma{tag}"), &format!("mb{tag}"), 251);
    let (rt, nbi) = (&h.rt, h.nbi);
    let (da, db) = h.dirs.clone();
    let (ia, ib) = h.ids.clone();
    let (a, b) = h.names.clone();

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
        h.daemons.1.kill();
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
        h.daemons.1 = start_agent(AGENT_BIN, &db);
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
}

/// The device's record in the ACS.
async fn device(nbi: NbiClient<'_>, id: &str) -> Value {
    let (s, d) = nbi.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": id}).to_string())), None).await;
    assert_eq!(s, 200, "{d}");
    d[0].clone()
}

#[test]
fn a_virtual_device_alone_moves_cold_by_context_and_stays_one_device() {
    let tag = std::process::id() % 1000;
    let root = TempDir::new("hv-migvd");
    let h = Hosts::start(&root, &format!("va{tag}"), &format!("vb{tag}"), 249);
    let (rt, nbi) = (&h.rt, h.nbi);
    let (da, db) = h.dirs.clone();
    let (ia, ib) = h.ids.clone();
    let b = h.names.1.clone();
    let logs = || format!("{}\n{}", test_support::agent::plain_log(&da), test_support::agent::plain_log(&db));

    rt.block_on(async {
        nbi.wait_device(&ia, &da.join("agent.log")).await;
        nbi.wait_device(&ib, &db.join("agent.log")).await;
        for (host, pool) in [(&ia, 0), (&ib, 1)] {
            setup_host(nbi, host, pool).await;
            let (s, v) = nbi
                .task(
                    host,
                    json!({"name": "setParameterValues", "parameterValues": [
                    [format!("{VIRT}Template.1.ManagementMode"), "Virtual"], [format!("{VIRT}Template.1.ProductClass"), "vRGW"]]}),
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }
        let (s, v) = nbi
            .task(
                &ia,
                json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
            "parameterValues": [["Subscriber", "carol"], ["Template", format!("{VIRT}Template.1")],
                                ["SVLAN", "300", "xsd:unsignedInt"], ["CVLAN", "18", "xsd:unsignedInt"]]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let n = v["result"]["instance"].as_u64().expect("instance") as u32;
        let vd = "00A0B1-vRGW-carol";
        nbi.wait_device(vd, &da.join("agent.log")).await;
        // Set through the device itself: a value and a secret (read back empty, so only what
        // travels sealed can carry it).
        let ssid = "Device.WiFi.SSID.1.SSID";
        let (s, v) = nbi
            .task(
                vd,
                json!({"name": "setParameterValues", "parameterValues": [[ssid, "moved-with-me"],
                ["Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "correct horse battery"]]}),
            )
            .await;
        assert_eq!((s, v["status"].as_str()), (200, Some("done")), "{v}\n{}", logs());
        let before = device(nbi, vd).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(nbi, &ib, vec![format!("{VIRT}Pool.1.Ready")]).await[0].1 != "1" {
            assert!(Instant::now() < deadline, "B's pool never filled");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        let r = migrate(nbi, &ia, n, &ib, "cold-context", 20).await;
        assert_eq!(r["status"], "completed", "{r}\n{}", logs());
        assert!(r.get("copied_parameters").is_none(), "nothing copied value by value: {r}");
        assert!(instances(nbi, &ia).await.is_empty());

        // The same device continues from B: its sessions come from there (ProxierInfo), it did
        // not bootstrap again, and its settings came with it.
        let proxier = "Device.DeviceInfo.ProxierInfo.SerialNumber";
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // 202 until the device's first session from B: the ACS's connection request still
            // goes to its address at A, where it no longer answers; the task waits for it.
            let (s, v) = nbi.task(vd, json!({"name": "getParameterValues", "parameterNames": [proxier, ssid]})).await;
            assert!(s == 200 || s == 202, "{s} {v}");
            let d = device(nbi, vd).await;
            if d["Device"]["DeviceInfo"]["ProxierInfo"]["SerialNumber"]["_value"] == b.as_str() {
                assert_eq!(d["Device"]["WiFi"]["SSID"]["1"]["SSID"]["_value"], "moved-with-me", "{d}");
                assert_eq!(d["_lastBootstrap"], before["_lastBootstrap"], "bootstrapped again: {d}");
                break;
            }
            assert!(Instant::now() < deadline, "the device never spoke from B: {d}\n{}", logs());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (_, devs) = nbi.call(Method::GET, "/devices", None).await;
        let carol: Vec<String> = devs
            .as_array()
            .expect("devices")
            .iter()
            .filter_map(|d| d["_id"].as_str())
            .filter(|d| d.ends_with("-carol"))
            .map(str::to_string)
            .collect();
        assert_eq!(carol, vec![vd.to_string()], "one device, never two");
        // The secret reached B's agent (sealed on the way): its store of the vRGW's profile
        // has it, which the agent pushes to the vRGW's proxy.
        let mut stored = Vec::new();
        for f in ["agent.db", "agent.db-wal"] {
            stored.extend(std::fs::read(db.join(f)).unwrap_or_default());
        }
        assert!(String::from_utf8_lossy(&stored).contains("correct horse battery"), "{}", logs());
    });
}
