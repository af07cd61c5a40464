//! The libvirtd the agent uses stops answering (SIGSTOP) in the middle of a pool fill: the agent
//! keeps answering connection requests and informing, serves GetParameterValues from what it
//! has, refuses host operations that need libvirt with a fault that says why, and recovers once
//! libvirtd runs again (SIGCONT). The libvirtd is the test's own (test driver, a socket in the
//! test's directory), so stopping it harms nothing else. Needs root (libvirtd runs as `nobody`),
//! libvirtd installed, and Open vSwitch running (scripts/start-ovs).

use std::process::Command;
use std::time::{Duration, Instant};

use hypervisor_agent::state::{SlotUse, State};
use serde_json::json;
use test_support::acs::start_acs;
use test_support::agent::{agent_config_on, start_agent, Libvirtd, VIRT};
use test_support::TempDir;

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

const AGENT: &str = "host-frozen";
const ID: &str = "00A0B1-vRGW%2DHost-host%2Dfrozen";
/// Seconds a libvirt call that changes something may take (reads: at most 5).
const DEADLINE: u64 = 8;

fn pooled(dir: &std::path::Path) -> usize {
    let slots = State::open(&dir.join("agent.db")).and_then(|s| s.slots()).unwrap_or_default();
    slots.iter().filter(|s| s.usage == SlotUse::Pooled).count()
}

/// Waits up to `secs` for `what` to hold, else panics with `why` and the agent's log.
fn wait_for(dir: &std::path::Path, secs: u64, why: &str, mut what: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !what() {
        assert!(
            Instant::now() < deadline,
            "{why}:\n{}",
            std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stopped_libvirtd_freezes_nothing_and_the_agent_recovers_when_it_runs_again() {
    let dir = TempDir::new("hv-frozen");
    let prefix = format!("hf{}", std::process::id() % 1000);
    let _bridges = Bridges(prefix.clone());
    let libvirtd = Libvirtd::start(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs(&rt, &dir, AGENT);
    agent_config_on(
        &dir,
        AGENT,
        cwmp,
        &prefix,
        "10.248.0.0/16",
        &libvirtd.uri(),
        // Periodic Informs every 2 s: the ACS retries a refused task at the next one due.
        &format!("libvirt_timeout_seconds = {DEADLINE}\nperiodic_inform_interval = 2\n"),
    );
    let agent = start_agent(AGENT_BIN, &dir);
    let log = dir.join("agent.log");
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let pool = format!("{VIRT}Pool.1.");

    rt.block_on(async {
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
                json!({"name": "addObject", "objectName": format!("{VIRT}Pool."),
                       "parameterValues": [["Template", format!("{VIRT}Template.{t}")], ["Enable", "true", "xsd:boolean"],
                                           ["TargetSize", "300", "xsd:unsignedInt"]]}),
            )
            .await;
        assert_eq!((s, &v["status"]), (200, &json!("done")), "{v}");
    });

    // Stopped while the pool fills: the host thread is inside a libvirt call from now on.
    wait_for(&dir, 30, "the pool never started filling", || pooled(&dir) >= 5);
    libvirtd.freeze();
    let frozen_at = agent_log().len();
    assert!(pooled(&dir) < 300, "the pool filled before libvirtd stopped");

    // A task: the ACS sends a connection request, the agent informs, then the ACS reads values.
    let task = {
        let names = vec!["Device.DeviceInfo.SoftwareVersion".to_string(), format!("{pool}Ready")];
        rt.spawn(async move { nbi.task(ID, json!({"name": "getParameterValues", "parameterNames": names})).await })
    };
    // The connection request is answered and the Inform it causes is accepted by the ACS (its
    // event leaves the agent's store) while libvirt's first call is still within its deadline:
    // neither waited for the host thread.
    let cr_event = |dir: &std::path::Path| {
        State::open(&dir.join("agent.db"))
            .and_then(|s| s.events())
            .map(|e| e.iter().any(|(_, code, _)| code == "6 CONNECTION REQUEST"))
            .unwrap_or(true)
    };
    wait_for(&dir, 20, "no Inform for the connection request", || {
        agent_log()[frozen_at..]
            .lines()
            .any(|l| l.contains("session: informing the ACS") && l.contains("6 CONNECTION REQUEST"))
    });
    wait_for(&dir, 20, "the Inform was not accepted", || !cr_event(&dir));
    let so_far = agent_log()[frozen_at..].to_string();
    assert!(so_far.contains("connection request accepted"), "{so_far}");
    assert!(
        !so_far.contains("libvirt is not answering"),
        "the Inform came only after libvirt's deadline: it waited for the host thread\n{so_far}"
    );

    // The read is answered from what the agent has, once the call under way gave up (one
    // deadline); libvirt still does not answer.
    let (s, v) = rt.block_on(task).expect("task");
    assert_eq!((s, &v["status"]), (200, &json!("done")), "{v}");
    assert_eq!(v["result"]["parameters"][0][1], json!(env!("CARGO_PKG_VERSION")), "{v}");
    let so_far = agent_log()[frozen_at..].to_string();
    assert!(so_far.contains("libvirt is not answering"), "the failure is logged\n{so_far}");

    // A host operation that needs libvirt is refused at once with a fault that says why (9002:
    // the ACS retries it later), and changes nothing.
    let before = pooled(&dir);
    let target = before + 3;
    let path = format!("/devices/{}/tasks?connection_request&timeout=3000", test_support::enc(ID));
    let set = json!({"name": "setParameterValues",
                     "parameterValues": [[format!("{pool}TargetSize"), target.to_string(), "xsd:unsignedInt"]]});
    let (s, v) = rt.block_on(nbi.call(hyper::Method::POST, &path, Some(set)));
    assert_eq!((s, &v["status"]), (202, &json!("pending")), "{v}");
    let task_id = v["_id"].clone();
    wait_for(&dir, 20, "the set was not refused", || {
        agent_log()[frozen_at..].lines().any(|l| l.contains("request refused") && l.contains("9002"))
    });
    let refused = agent_log()[frozen_at..].lines().find(|l| l.contains("request refused")).unwrap_or("").to_string();
    assert!(refused.contains("is not answering") && refused.contains(&libvirtd.uri()), "{refused}");
    assert_eq!(pooled(&dir), before);

    // libvirtd runs again: the call under way comes back, the ACS's retry of the set goes
    // through, and the pool reaches its new size (domains made through libvirt).
    libvirtd.thaw();
    wait_for(&dir, 30, "libvirt never counted as answering again", || {
        agent_log()[frozen_at..].contains("libvirt answers again")
    });
    let tasks =
        format!("/tasks?query={}", test_support::enc(&json!({"device": ID, "status": {"$exists": true}}).to_string()));
    let status = || {
        let (_, list) = rt.block_on(nbi.call(hyper::Method::GET, &tasks, None));
        let list = list.as_array().cloned().unwrap_or_default();
        list.iter().find(|t| t["_id"] == task_id).map(|t| t["status"].clone()).unwrap_or_default()
    };
    wait_for(&dir, 60, "the ACS's retry of the set never went through", || status() == json!("done"));
    wait_for(&dir, 60, "the pool did not reach its new size", || pooled(&dir) == target);
    let (s, v) =
        rt.block_on(nbi.task(ID, json!({"name": "getParameterValues", "parameterNames": [format!("{pool}Ready")]})));
    assert_eq!((s, &v["status"]), (200, &json!("done")), "{v}");
    assert_eq!(v["result"]["parameters"][0][1], json!(target.to_string()), "{v}");

    drop(agent);
}

/// The agent's Open vSwitch bridges (`PREFIX-trunk`, `PREFIX-park`), removed when dropped (a
/// failed assertion included).
struct Bridges(String);

impl Drop for Bridges {
    fn drop(&mut self) {
        for br in ["trunk", "park"] {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{}-{br}", self.0)]).status();
        }
    }
}
