//! The agent killed (SIGKILL) in the middle of a pool fill, then started again: no instance is
//! lost or duplicated, the pool ends at its target, the undelivered events and the ParameterKey
//! survive. The agent binary runs on libvirt's test driver, whose domains live in the agent's
//! process: a kill takes every domain with it, the harshest drift there is, so the restart must
//! rebuild the instance's domain from its records and refill the pool. Needs root-free loopback
//! only, and Open vSwitch running (scripts/start-ovs).

use std::process::Command;
use std::time::{Duration, Instant};

use hypervisor_agent::state::{SlotUse, State};
use serde_json::json;
use test_support::acs::start_acs;
use test_support::agent::{agent_config, start_agent, VIRT};
use test_support::nbi::enc;
use test_support::TempDir;

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

const AGENT: &str = "host-crash";
const ID: &str = "00A0B1-vRGW%2DHost-host%2Dcrash";

fn slots(dir: &std::path::Path) -> Vec<hypervisor_agent::state::Slot> {
    State::open(&dir.join("agent.db")).and_then(|s| s.slots()).unwrap_or_default()
}

#[test]
fn sigkill_during_a_pool_fill_loses_and_duplicates_nothing() {
    let tag = std::process::id() % 1000;
    let dir = TempDir::new("hv-crash");
    let prefix = format!("hc{tag}");
    let cleanup = |prefix: &str| {
        for br in ["trunk", "park", "s300"] {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{prefix}-{br}")]).status();
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs(&rt, &dir, AGENT);
    agent_config(&dir, AGENT, cwmp, &prefix, "10.252.0.0/16", "");
    let mut agent = start_agent(AGENT_BIN, &dir);
    let log = dir.join("agent.log");
    let target = 120;

    let (instance, serving, pool_key) = rt.block_on(async {
        nbi.wait_device(ID, &log).await;
        let (s, v) = nbi
            .task(
                ID,
                json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
            "parameterValues": [["Image", "/var/lib/vrgw/images/small"]]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let t = v["result"]["instance"].as_u64().expect("template");
        let (s, v) = nbi
            .task(
                ID,
                json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
            "parameterValues": [["Template", format!("{VIRT}Template.{t}")],
                                ["SVLAN", "300", "xsd:unsignedInt"], ["CVLAN", "12", "xsd:unsignedInt"]]}),
            )
            .await;
        assert_eq!((s, &v["status"]), (200, &json!("done")), "{v}");
        let n = v["result"]["instance"].as_u64().expect("instance") as u32;
        let (s, v) = nbi
            .task(
                ID,
                json!({"name": "addObject", "objectName": format!("{VIRT}Pool."),
            "parameterValues": [["Template", format!("{VIRT}Template.{t}")], ["Enable", "true", "xsd:boolean"],
                                ["TargetSize", target.to_string(), "xsd:unsignedInt"]]}),
            )
            .await;
        assert_eq!((s, &v["status"]), (200, &json!("done")), "{v}");
        // The key the ACS sent the AddObject under (acs/src/endpoint.rs: task-ID-ATTEMPT).
        let pool_key = format!("task-{}-{}", v["_id"].as_str().expect("task id"), v["attempts"]);
        let serving = State::open(&dir.join("agent.db")).expect("state").slot_of(n).expect("slot").expect("assigned");
        (n, serving, pool_key)
    });

    // Kill it while the pool is filling.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pooled = slots(&dir).iter().filter(|s| s.usage == SlotUse::Pooled).count();
        if pooled >= 10 {
            assert!(pooled < target, "the pool filled before the kill; raise the target");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pool never started filling:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    agent.kill();
    let before = slots(&dir);
    let key_before = State::open(&dir.join("agent.db")).expect("state").meta("ParameterKey").expect("meta");
    // The last key the ACS set is the pool's AddObject's: the credentials' set ran at BOOTSTRAP,
    // before the NBI's tasks, and the ACS sets them again only at a BOOT.
    assert_eq!(key_before.as_deref(), Some(pool_key.as_str()), "the ParameterKey is stored");
    // An event that was queued but never delivered (the ACS is unreachable while it is down).
    State::open(&dir.join("agent.db")).expect("state").push_event("M Reboot", "crash-test").expect("event");

    let agent = start_agent(AGENT_BIN, &dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = slots(&dir);
        let pooled = now.iter().filter(|s| s.usage == SlotUse::Pooled).count();
        let busy = now.iter().any(|s| matches!(s.usage, SlotUse::Creating | SlotUse::Deleting));
        if pooled == target && !busy {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pool did not refill ({pooled}/{target}):\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = slots(&dir);
    // The instance kept its slot (its domain re-created), and only it serves the instance.
    let serving_now: Vec<_> = after.iter().filter(|s| s.instance == Some(instance)).collect();
    assert_eq!(serving_now.len(), 1);
    assert_eq!(serving_now[0].id, serving.id);
    assert_eq!(after.len(), target + 1, "one slot per pooled domain and one for the instance");
    assert!(
        before.iter().all(|b| b.usage != SlotUse::Creating || !after.iter().any(|a| a.id == b.id)),
        "half-made slots were rolled back"
    );
    rt.block_on(async {
        // What the ACS sees: the instance running, the pool full with every member suspended.
        let inst = format!("{VIRT}Instance.{instance}.");
        let (_, v) = nbi.task(ID, json!({"name": "getParameterValues", "parameterNames":
            [format!("{inst}Status"), format!("{VIRT}Pool.1.Ready"), format!("{VIRT}Pool.1.Suspended"), format!("{VIRT}Pool.1.Status")]})).await;
        let text = v.to_string();
        assert!(text.contains("\"Running\"") && text.contains("\"Idle\""), "{text}");
        assert_eq!(text.matches(&format!("\"{target}\"")).count(), 2, "Ready and Suspended are {target}: {text}");
        // The queued event reached the ACS and left the agent's store.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !State::open(&dir.join("agent.db")).expect("state").events().expect("events").is_empty() {
            assert!(Instant::now() < deadline, "events never delivered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(std::fs::read_to_string(&log).unwrap_or_default().contains("M Reboot"), "the M Reboot event was sent");
        // Every task the NBI gave ran once: none was taken for unapplied and sent again after
        // the restart (the restarted agent reported the key it had stored).
        let (s, tasks) = nbi.call(hyper::Method::GET, &format!("/tasks?query={}", enc(&json!({"device": ID, "status": {"$exists": true}}).to_string())), None).await;
        assert_eq!(s, 200, "{tasks}");
        let runs: Vec<(String, String)> = tasks
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| (t["status"].as_str().unwrap_or("?").to_string(), t["attempts"].to_string()))
            .collect();
        assert!(runs.len() >= 3 && runs.iter().all(|r| *r == ("done".to_string(), "1".to_string())), "{tasks}");
    });
    // The key after the restart is the one of the ACS's set of the connection-request
    // credentials at the BOOT (its session ran before the getParameterValues above): local task
    // CR_SETUP of acs/src/endpoint.rs, sent under "preset-" and its name.
    let key_after = State::open(&dir.join("agent.db")).expect("state").meta("ParameterKey").expect("meta");
    assert_eq!(
        key_after.as_deref(),
        Some(test_support::acs::local_key(test_support::acs::CR_SETUP).as_str()),
        "ParameterKey {key_before:?} before the kill:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(agent);
    cleanup(&prefix);
}
