//! A vRGW managed as a CWMP device of its own (TR-069 Annex J.2), through the whole chain: the
//! ACS in this process (SQLite, its NBI), the `hypervisor-agent` binary (libvirt's test driver,
//! real Open vSwitch). No guest runs on the test driver, so the vRGW's data model is its profile
//! (what the agent pushes to its proxy once one answers); the virtual device serves it all the
//! same. Needs Open vSwitch running (scripts/start-ovs).

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;
use test_support::acs::start_acs;
use test_support::agent::{agent_config, start_agent, VIRT};
use test_support::{enc, Daemon, NbiClient, TempDir};

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

/// An ACS in this process and an agent named `agent` (its virtual devices log in with its own
/// credential, which the ACS binds to the subscribers it placed on it), in `dir`; the agent's bridges are removed when `Bridges` is dropped.
fn start(
    dir: &TempDir,
    agent: &str,
) -> (tokio::runtime::Runtime, std::net::SocketAddr, NbiClient<'static>, Bridges, Daemon) {
    start_with(dir, agent, "")
}

/// [`start`] with `extra` lines in the agent's configuration.
fn start_with(
    dir: &TempDir,
    agent: &str,
    extra: &str,
) -> (tokio::runtime::Runtime, std::net::SocketAddr, NbiClient<'static>, Bridges, Daemon) {
    let tag = std::process::id() % 1000;
    let prefix = format!("hv{}{tag}", &agent[agent.len() - 1..]);
    let bridges = Bridges(prefix.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp_addr, nbi) = start_acs(&rt, dir, agent);
    let net = 10 + (tag + u32::from(agent.as_bytes()[agent.len() - 1])) % 200;
    agent_config(dir, agent, cwmp_addr, &prefix, &format!("10.252.{net}.0/24"), extra);
    let daemon = start_agent(AGENT_BIN, dir);
    (rt, cwmp_addr, nbi, bridges, daemon)
}

/// Through the host's NBI: a template whose instances are virtual devices, and `subscriber`'s
/// instance of it on C-VLAN `cvlan`; the instance's number.
async fn virtual_vrgw(nbi: &NbiClient<'_>, host: &str, subscriber: &str, cvlan: u32, log: &str) -> u64 {
    let (s, v) = nbi
        .task(
            host,
            json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
            "parameterValues": [["Name", "gw"], ["Image", "/var/lib/vrgw/images/small"],
                                ["ManagementMode", "Virtual"], ["ProductClass", "vRGW"]]}),
        )
        .await;
    assert_eq!(s, 200, "{v}\n{log}");
    let t = v["result"]["instance"].as_u64().unwrap_or_else(|| panic!("{v}"));
    let (s, v) = nbi
        .task(
            host,
            json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
            "parameterValues": [["Template", format!("{VIRT}Template.{t}")], ["Subscriber", subscriber],
                                ["SVLAN", "100", "xsd:unsignedInt"], ["CVLAN", cvlan.to_string(), "xsd:unsignedInt"]]}),
        )
        .await;
    assert_eq!(s, 200, "{v}\n{log}");
    v["result"]["instance"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

#[test]
fn a_vrgw_managed_as_a_virtual_device_informs_and_is_configured_as_a_device_of_its_own() {
    let dir = TempDir::new("hv-vdev");
    let (rt, _cwmp, nbi, _bridges, _agent) = start(&dir, "host-vd");
    let log = || test_support::agent::plain_log(&dir);

    rt.block_on(async {
        let host = "00A0B1-vRGW%2DHost-host%2Dvd";
        nbi.wait_device(host, &dir.join("agent.log")).await;
        let n = virtual_vrgw(&nbi, host, "alice", 7, &log()).await;

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

        // A factory reset: its vRGW back to the defaults, the device bootstraps again (and the
        // ACS gives it new connection-request credentials, which the next request uses).
        let bootstrapped = device(&nbi, vd).await["_lastBootstrap"].clone();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (s, v) = nbi.task(vd, json!({"name": "factoryReset"})).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("done")), "{v}\n{}", log());
        let deadline = Instant::now() + Duration::from_secs(20);
        while device(&nbi, vd).await["_lastBootstrap"] == bootstrapped {
            assert!(Instant::now() < deadline, "no BOOTSTRAP after the factory reset\n{}", log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (s, v) = nbi.task(vd, json!({"name": "getParameterValues", "parameterNames": [min]})).await;
        assert_eq!(s, 200, "{v}\n{}", log());
        assert_eq!(cached(&device(&nbi, vd).await, min), "192.168.1.100", "{}", log());

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

        // An Inform scheduled by the ACS comes after its delay.
        let (s, v) = nbi.task(vd, json!({"name": "scheduleInform", "delaySeconds": 1, "commandKey": "later"})).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("done")), "{v}\n{}", log());
        let scheduled = |l: &str| l.contains(&format!("device={vd}")) && l.contains("\"M ScheduleInform\"");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !log().lines().any(scheduled) {
            assert!(Instant::now() < deadline, "no scheduled Inform\n{}", log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Managed both ways: a change made through the host is the vRGW's own to its virtual
        // device, which informs "4 VALUE CHANGE" with the new value (active notification).
        let (s, v) = nbi
            .task(
                host,
                json!({"name": "setParameterValues",
                "parameterValues": [[format!("{VIRT}Instance.{n}.ManagementMode"), "Both"]]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = nbi.task(vd, json!({"name": "setParameterAttributes", "parameterList": [[min, 2, null]]})).await;
        assert_eq!(s, 200, "{v}\n{}", log());
        let embedded_min = format!("{VIRT}Instance.{n}.Device.DHCPv4.Server.Pool.1.MinAddress");
        let (s, v) = nbi
            .task(host, json!({"name": "setParameterValues", "parameterValues": [[embedded_min, "192.168.1.90"]]}))
            .await;
        assert_eq!(s, 200, "{v}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while cached(&device(&nbi, vd).await, min) != "192.168.1.90" {
            assert!(Instant::now() < deadline, "no VALUE CHANGE\n{}", log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let value_change = |l: &str| l.contains(&format!("device={vd}")) && l.contains("4 VALUE CHANGE");
        assert!(log().lines().any(value_change), "{}", log());

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

/// What the OSS script saw of one subscriber's gateway.
#[derive(Debug, PartialEq)]
struct Seen {
    /// The values read back after the set.
    after_set: Vec<String>,
    /// The same after the reboot.
    after_reboot: Vec<String>,
}

/// The parameters the OSS sets, and the values it sets them to.
const WANTED: [(&str, &str); 3] = [
    ("Device.DHCPv4.Server.Pool.1.MinAddress", "192.168.1.50"),
    ("Device.DHCPv4.Server.Pool.1.MaxAddress", "192.168.1.150"),
    ("Device.WiFi.SSID.1.SSID", "home-wifi"),
];

/// A device's cached value of `path` (dotted) in a `GET /devices` answer.
fn cached(device: &serde_json::Value, path: &str) -> String {
    let v = path.split('.').fold(device, |d, k| &d[k]);
    v["_value"].as_str().map_or_else(|| v["_value"].to_string(), str::to_string)
}

/// The fault the ACS recorded for task `task` of device `id` (a panic when there is none).
async fn fault_of(nbi: &NbiClient<'_>, id: &str, task: &serde_json::Value) -> serde_json::Value {
    let (_, faults) =
        nbi.call(Method::GET, &format!("/faults?query={}", enc(&json!({"device": id}).to_string())), None).await;
    let fault = faults.as_array().and_then(|f| f.iter().find(|f| &f["task"] == task)).cloned();
    fault.unwrap_or_else(|| panic!("no fault recorded: {faults}"))
}

async fn device(nbi: &NbiClient<'_>, id: &str) -> serde_json::Value {
    let (s, d) = nbi.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": id}).to_string())), None).await;
    assert_eq!(s, 200, "{d}");
    d[0].clone()
}

/// One OSS script, the same for any gateway: find the subscriber's gateway by its tag, set its
/// DHCP pool and SSID, read them back, reboot it, wait for its BOOT, read them again.
async fn oss_script(nbi: &NbiClient<'_>, tag: &str, log: &dyn Fn() -> String) -> (String, Seen) {
    let query = enc(&json!({"_tags": tag}).to_string());
    let (s, found) = nbi.call(Method::GET, &format!("/devices?query={query}&projection=_id"), None).await;
    assert_eq!(s, 200, "{found}");
    let [found] = found.as_array().map(Vec::as_slice).unwrap_or_default() else {
        panic!("one gateway tagged {tag}: {found}")
    };
    let id = found["_id"].as_str().unwrap_or_else(|| panic!("{found}")).to_string();
    let names: Vec<&str> = WANTED.iter().map(|(n, _)| *n).collect();
    let read = |id: String| {
        let names = names.clone();
        async move {
            let (s, v) = nbi.task(&id, json!({"name": "getParameterValues", "parameterNames": names})).await;
            assert_eq!(s, 200, "{v}\n{}", log());
            let d = device(nbi, &id).await;
            WANTED.iter().map(|(n, _)| cached(&d, n)).collect::<Vec<_>>()
        }
    };

    let values: Vec<[&str; 2]> = WANTED.iter().map(|(n, v)| [*n, *v]).collect();
    let (s, v) = nbi.task(&id, json!({"name": "setParameterValues", "parameterValues": values})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("done")), "{v}\n{}", log());
    let after_set = read(id.clone()).await;

    let booted = device(nbi, &id).await["_lastBoot"].clone();
    // `_lastBoot` is kept to the second: the reboot comes in a later second than the last boot.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = nbi.task(&id, json!({"name": "reboot"})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("done")), "{v}\n{}", log());
    let deadline = Instant::now() + Duration::from_secs(30);
    while device(nbi, &id).await["_lastBoot"] == booted {
        assert!(Instant::now() < deadline, "{id} never informed its BOOT after the reboot\n{}", log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after_reboot = read(id.clone()).await;
    (id, Seen { after_set, after_reboot })
}

#[test]
fn one_oss_script_configures_and_reboots_a_physical_gateway_and_a_vrgw_alike() {
    let dir = TempDir::new("hv-vdoss");
    let (rt, cwmp, nbi, _bridges, _agent) = start(&dir, "host-oss");
    let log = || test_support::agent::plain_log(&dir);
    rt.block_on(async {
        let host = &test_support::acs::agent_device("host-oss");
        nbi.wait_device(host, &dir.join("agent.log")).await;
        // Alice's gateway is a vRGW managed as a device of its own; Bob's a physical TR-181
        // gateway.
        virtual_vrgw(&nbi, host, "alice", 8, &log()).await;
        let vrgw = "00A0B1-vRGW-alice";
        nbi.wait_device(vrgw, &dir.join("agent.log")).await;
        let gateway = test_support::acs::sim_gateway(cwmp, "bob").await;
        gateway.session(&[]).await.expect("the gateway's BOOTSTRAP");
        // The operator's inventory names each subscriber's gateway by a tag.
        for (id, tag) in [(vrgw.to_string(), "subscriber-alice"), (gateway.device_id(), "subscriber-bob")] {
            let (s, v) = nbi.call(Method::POST, &format!("/devices/{}/tags/{tag}", enc(&id)), None).await;
            assert_eq!(s, 200, "{v}");
        }

        let (found_a, alice) = oss_script(&nbi, "subscriber-alice", &log).await;
        let (found_b, bob) = oss_script(&nbi, "subscriber-bob", &log).await;
        assert_eq!((found_a.as_str(), found_b), (vrgw, gateway.device_id()));
        let wanted: Vec<String> = WANTED.iter().map(|(_, v)| v.to_string()).collect();
        let expected = Seen { after_set: wanted.clone(), after_reboot: wanted };
        assert_eq!(alice, expected, "the vRGW\n{}", log());
        assert_eq!(bob, expected, "the physical gateway");
        // Each did reboot as itself: the vRGW's domain was restarted by its host, the gateway
        // rebooted and informed "M Reboot".
        assert!(log().lines().any(|l| l.contains("vRGW restarted")), "{}", log());
        assert!(gateway.take_requests().iter().any(|r| r == "Reboot"));
    });
}

#[test]
fn a_firmware_download_rebuilds_the_vrgw_keeps_its_settings_and_reports_transfer_complete() {
    let dir = TempDir::new("hv-vdfw");
    // Downloads of at most 1 MiB.
    let (rt, _cwmp, nbi, _bridges, _agent) = start_with(&dir, "host-fw", "download_max_mib = 1\n");
    let log = || test_support::agent::plain_log(&dir);

    rt.block_on(async {
        let host = "00A0B1-vRGW%2DHost-host%2Dfw";
        nbi.wait_device(host, &dir.join("agent.log")).await;
        let n = virtual_vrgw(&nbi, host, "erin", 9, &log()).await;
        let vd = "00A0B1-vRGW-erin";
        nbi.wait_device(vd, &dir.join("agent.log")).await;
        let min = "Device.DHCPv4.Server.Pool.1.MinAddress";
        let (s, v) =
            nbi.task(vd, json!({"name": "setParameterValues", "parameterValues": [[min, "192.168.1.61"]]})).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("done")), "{v}\n{}", log());
        let firmware = format!("{VIRT}Instance.{n}.Firmware");
        let firmware_of = || async {
            let (s, v) = nbi.task(host, json!({"name": "getParameterValues", "parameterNames": [firmware]})).await;
            assert_eq!(s, 200, "{v}");
            cached(&device(&nbi, host).await, &firmware)
        };
        // The images, stored in the ACS as an OSS stores them.
        let put = |name: &'static str, content: Vec<u8>| {
            let meta = [("fileType", "1 Firmware Upgrade Image"), ("oui", "00A0B1"), ("productClass", "vRGW")];
            let nbi = &nbi;
            async move {
                let r = nbi.send_bytes(Method::PUT, &format!("/files/{name}"), &meta, content.into()).await;
                assert_eq!(r.status, 200, "{:?}", r.json);
            }
        };
        put("vrgw-2.img", hypervisor_agent::firmware::testing::initramfs(b"#!/bin/sh\necho vrgw 2\n")).await;
        put("not-firmware.img", b"<html>a login page</html>".to_vec()).await;
        let download = |file: &'static str| {
            let nbi = &nbi;
            async move {
                let (s, t) = nbi.task(vd, json!({"name": "download", "file": file})).await;
                assert!(s == 200 || s == 202, "{s} {t}");
                nbi.finished(&t["_id"], 30).await
            }
        };

        // Not an image: TransferComplete with 9018 and why; nothing changed.
        let t = download("not-firmware.img").await;
        assert_eq!(t["status"], "fault", "{t}\n{}", log());
        let fault = fault_of(&nbi, vd, &t["_id"]).await;
        assert_eq!(fault["code"], "cwmp.9018", "{fault}");
        assert!(fault["message"].as_str().is_some_and(|m| m.contains("neither a qcow2 disk image")), "{fault}");
        assert_eq!(firmware_of().await, "");

        // An initramfs: the vRGW is rebuilt from it, the device informs 1 BOOT, 7 TRANSFER
        // COMPLETE and M Download, and its settings stayed.
        let booted = device(&nbi, vd).await["_lastBoot"].clone();
        // The ACS keeps the time of a boot to the second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let t = download("vrgw-2.img").await;
        assert_eq!(t["status"], "done", "{t}\n{}", log());
        let installed = firmware_of().await;
        assert!(installed.starts_with(&dir.join("downloads/firmware").display().to_string()), "{installed}");
        assert!(installed.ends_with(".initrd.img"), "{installed}");
        assert_eq!(
            std::fs::read(&installed).expect("the stored image"),
            hypervisor_agent::firmware::testing::initramfs(b"#!/bin/sh\necho vrgw 2\n")
        );
        let events = |l: &str| {
            l.contains(&format!("device={vd}"))
                && l.contains("1 BOOT")
                && l.contains("7 TRANSFER COMPLETE")
                && l.contains("M Download")
        };
        assert!(log().lines().any(events), "{}", log());
        assert_ne!(device(&nbi, vd).await["_lastBoot"], booted);
        let (s, v) = nbi.task(vd, json!({"name": "getParameterValues", "parameterNames": [min]})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(cached(&device(&nbi, vd).await, min), "192.168.1.61");

        // Larger than the agent takes: 9017 as the body passes the limit, nothing left behind,
        // the vRGW still on the image it had.
        put("too-big.img", vec![0x1f; (1 << 20) + 1]).await;
        let t = download("too-big.img").await;
        assert_eq!(t["status"], "fault", "{t}\n{}", log());
        let fault = fault_of(&nbi, vd, &t["_id"]).await;
        assert_eq!(fault["code"], "cwmp.9017", "{fault}");
        assert!(fault["message"].as_str().is_some_and(|m| m.contains("more than 1048576 bytes")), "{fault}");
        assert!(!fault["message"].as_str().unwrap_or("").contains("sig="), "no signature in the reason: {fault}");
        let kept: Vec<String> = std::fs::read_dir(dir.join("downloads/firmware"))
            .expect("firmware dir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(kept.len(), 1, "only the installed image: {kept:?}");
        assert_eq!(firmware_of().await, installed);
    });
}

/// TR-069 3.7.1.5: a TransferComplete goes to the ACS until it answered it, across restarts. One
/// the agent kept before it stopped (its state holds it) reaches the ACS in the agent's first
/// session after it starts, and is then no longer kept.
#[test]
fn a_transfer_complete_kept_before_a_restart_reaches_the_acs_after_it() {
    use hypervisor_agent::state::State;
    let dir = TempDir::new("hv-kept");
    let kept = cwmp::Body::TransferComplete(cwmp::TransferComplete {
        command_key: "before-the-restart".into(),
        fault: cwmp::TransferFault::none(),
        start_time: cwmp::DateTime::from_unix(1_800_000_000),
        complete_time: cwmp::DateTime::from_unix(1_800_000_005),
    });
    State::open(&dir.join("agent.db"))
        .expect("state")
        .save_own_requests("", std::slice::from_ref(&kept))
        .expect("kept");
    assert_eq!(State::open(&dir.join("agent.db")).expect("state").own_requests("").expect("read"), vec![kept]);
    let (rt, _cwmp, nbi, _bridges, _agent) = start(&dir, "host-kept");
    let log = || test_support::agent::plain_log(&dir);
    rt.block_on(async {
        nbi.wait_device("00A0B1-vRGW%2DHost-host%2Dkept", &dir.join("agent.log")).await;
        assert!(log().contains("TransferComplete kept from before the restart goes again"), "{}", log());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = State::open(&dir.join("agent.db")).expect("state").own_requests("").expect("read");
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "never answered: {left:?}\n{}", log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
