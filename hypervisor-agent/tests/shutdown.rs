//! SIGTERM: the agent stops accepting connection requests, lets what is under way finish, and
//! exits 0; started again on the same state it boots ("1 BOOT"), not bootstraps. Loopback only.

use std::time::Duration;

use test_support::acs::start_acs;
use test_support::agent::{agent_config, start_agent};
use test_support::TempDir;

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

#[test]
fn sigterm_drains_and_exits_cleanly_and_the_state_survives() {
    let dir = TempDir::new("hv-sigterm");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs(&rt, &dir, "host-term");
    let prefix = format!("hq{}", std::process::id() % 1000);
    agent_config(&dir, "host-term", cwmp, &prefix, "10.249.0.0/16", "");
    let mut agent = start_agent(AGENT_BIN, &dir);
    let cr = agent.addr("cr");
    let id = "00A0B1-vRGW%2DHost-host%2Dterm";
    rt.block_on(nbi.wait_device(id, &dir.join("agent.log")));

    let status = agent.terminate(Duration::from_secs(15));
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    assert!(status.expect("exited within 15 s of SIGTERM").success(), "{log}");
    assert!(log.contains("stopping: draining connection requests"), "{log}");
    assert!(log.contains("hypervisor agent stopped"), "{log}");
    assert!(std::net::TcpStream::connect(cr).is_err(), "connection requests still accepted after exit");

    // Started again on the same state: a boot, not a bootstrap (the events the second run
    // informs with, as its log shows them).
    let first_run = log.len();
    let agent = start_agent(AGENT_BIN, &dir);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let informed = loop {
        let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
        if let Some(line) = log[first_run..].lines().find(|l| l.contains("session: informing the ACS")) {
            break line.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no inform after the restart:\n{}", &log[first_run..]);
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(informed.contains("1 BOOT") && !informed.contains("0 BOOTSTRAP"), "{informed}");
    drop(agent);
    for br in ["trunk", "park"] {
        let _ =
            std::process::Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{prefix}-{br}")]).status();
    }
}
