//! A vRGW managed as a CWMP device of its own (TR-069 Annex J.2), through the whole chain: the
//! ACS in this process (SQLite, its NBI), the `hypervisor-agent` binary (libvirt's test driver,
//! real Open vSwitch). No guest runs on the test driver, so the vRGW's data model is its profile
//! (what the agent pushes to its proxy once one answers); the virtual device serves it all the
//! same. Needs Open vSwitch running (scripts/start-ovs).

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;
use test_support::acs::{start_acs, VIRTUAL_DEVICES};
use test_support::agent::{agent_config, start_agent, VIRT};
use test_support::{enc, TempDir};

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

/// The agent's Open vSwitch bridges, removed when dropped.
struct Bridges(String);

impl Drop for Bridges {
    fn drop(&mut self) {
        for br in ["trunk", "park", "s100"] {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{}-{br}", self.0)]).status();
        }
    }
}

#[test]
fn a_vrgw_managed_as_a_virtual_device_informs_and_is_configured_as_a_device_of_its_own() {
    let tag = std::process::id() % 1000;
    let dir = TempDir::new("hv-vdev");
    let prefix = format!("hv{tag}");
    let _bridges = Bridges(prefix.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp_addr, nbi) = start_acs(&rt, &dir, "host-vd");
    let extra =
        format!("virtual_acs_username = \"{}\"\nvirtual_acs_password = \"{}\"\n", VIRTUAL_DEVICES.0, VIRTUAL_DEVICES.1);
    agent_config(&dir, "host-vd", cwmp_addr, &prefix, &format!("10.252.{}.0/24", 10 + tag % 200), &extra);
    let _agent = start_agent(AGENT_BIN, &dir);
    // The log without its colours.
    let log = || {
        let raw = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut escape = false;
        for c in raw.chars() {
            match (escape, c) {
                (false, '\u{1b}') => escape = true,
                (true, 'm') => escape = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    };

    rt.block_on(async {
        let host = "00A0B1-vRGW%2DHost-host%2Dvd";
        nbi.wait_device(host, &dir.join("agent.log")).await;
        // A template whose instances are virtual devices, and one subscriber's instance.
        let (s, v) = nbi
            .task(
                host,
                json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
                "parameterValues": [["Name", "gw"], ["Image", "/var/lib/vrgw/images/small"],
                                    ["ManagementMode", "Virtual"], ["ProductClass", "vRGW"]]}),
            )
            .await;
        assert_eq!(s, 200, "{v}\n{}", log());
        let t = v["result"]["instance"].as_u64().unwrap_or_else(|| panic!("{v}"));
        let (s, v) = nbi
            .task(
                host,
                json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
                "parameterValues": [["Template", format!("{VIRT}Template.{t}")], ["Subscriber", "alice"],
                                    ["SVLAN", "100", "xsd:unsignedInt"], ["CVLAN", "7", "xsd:unsignedInt"]]}),
            )
            .await;
        assert_eq!(s, 200, "{v}\n{}", log());
        let n = v["result"]["instance"].as_u64().unwrap_or_else(|| panic!("{v}"));

        // The vRGW bootstraps into the ACS as a device of its own.
        let vd = "00A0B1-vRGW-alice";
        nbi.wait_device(vd, &dir.join("agent.log")).await;
        let (s, devices) =
            nbi.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": vd}).to_string())), None).await;
        assert_eq!(s, 200);
        assert_eq!(devices[0]["_deviceId"]["_ProductClass"], "vRGW", "{devices}");
        assert_eq!(devices[0]["_deviceId"]["_SerialNumber"], "alice", "{devices}");

        // Read and set through it.
        let min = "Device.DHCPv4.Server.Pool.1.MinAddress";
        let proxier = "Device.DeviceInfo.ProxierInfo.SerialNumber";
        let (s, v) = nbi.task(vd, json!({"name": "getParameterValues", "parameterNames": [min, proxier]})).await;
        assert_eq!(s, 200, "{v}\n{}", log());
        let (s, d) =
            nbi.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": vd}).to_string())), None).await;
        assert_eq!(s, 200);
        let d = &d[0];
        assert_eq!(d["Device"]["DeviceInfo"]["ProxierInfo"]["SerialNumber"]["_value"], "host-vd", "{d}");
        assert_eq!(d["Device"]["DHCPv4"]["Server"]["Pool"]["1"]["MinAddress"]["_value"], "192.168.1.100", "{d}");
        // A connection request on its own path, with the credentials the ACS set at its
        // BOOTSTRAP (the task above may have run in that session: the device is woken here
        // once it is out of it).
        let woken = |l: &str| l.contains("connection request accepted") && l.contains(&format!("device={vd}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !log().lines().any(woken) {
            assert!(Instant::now() < deadline, "{}", log());
            let (s, v) = nbi.call(Method::POST, &format!("/devices/{}/tasks?connection_request", enc(vd)), None).await;
            assert_eq!(s, 200, "{v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (s, v) =
            nbi.task(vd, json!({"name": "setParameterValues", "parameterValues": [[min, "192.168.1.60"]]})).await;
        assert_eq!(s, 200, "{v}\n{}", log());
        assert_eq!(v["status"], "done", "{v}");
        let (s, _) = nbi.task(vd, json!({"name": "getParameterValues", "parameterNames": [min]})).await;
        assert_eq!(s, 200);
        let (_, d) =
            nbi.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": vd}).to_string())), None).await;
        assert_eq!(d[0]["Device"]["DHCPv4"]["Server"]["Pool"]["1"]["MinAddress"]["_value"], "192.168.1.60", "{d}");

        // The host lists it as a virtual device and no longer shows it embedded.
        let vdev = "Device.ManagementServer.VirtualDevice.1.SerialNumber";
        let (s, v) = nbi
            .task(
                host,
                json!({"name": "getParameterValues",
                "parameterNames": [vdev, format!("{VIRT}Instance.{n}.Device.DHCPv4.Server.Pool.1.MinAddress")]}),
            )
            .await;
        assert_eq!(s, 202, "the embedded view is gone (9005): {v}");
        let (s, v) = nbi.task(host, json!({"name": "getParameterValues", "parameterNames": [vdev]})).await;
        assert_eq!(s, 200, "{v}");
        let (_, h) =
            nbi.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": host}).to_string())), None).await;
        assert_eq!(h[0]["Device"]["ManagementServer"]["VirtualDevice"]["1"]["SerialNumber"]["_value"], "alice", "{h}");

        // Deleting the instance stops and forgets the virtual device.
        let (s, v) =
            nbi.task(host, json!({"name": "deleteObject", "objectName": format!("{VIRT}Instance.{n}.")})).await;
        assert_eq!(s, 200, "{v}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !log().lines().any(|l| l.contains("virtual device stopped") && l.contains(&format!("device={vd}"))) {
            assert!(Instant::now() < deadline, "{}", log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
