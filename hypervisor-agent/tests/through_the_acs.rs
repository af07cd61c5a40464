//! The whole chain, with real parts: the ACS (in this process, SQLite store, its NBI), the
//! `hypervisor-agent` binary (libvirt's test driver, real Open vSwitch), and a `vrgw-proxy`
//! process with real dnsmasq in a network namespace standing for the vRGW's guest.
//!
//! An NBI addObject creates a running instance; an NBI setParameterValues on that instance's
//! DHCP pool reaches the proxy (validated there, written to dnsmasq's configuration) and the
//! ACS's parameter cache shows the new value. Needs root (network namespaces), Open vSwitch
//! running (scripts/start-ovs), dnsmasq.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;
use test_support::acs::start_acs;
use test_support::agent::{agent_config, start_agent, start_proxy, VIRT};
use test_support::{enc, Daemon, TempDir};

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Everything the test started, stopped and removed on drop (its files, in `dir`, go with the
/// test's `TempDir`).
struct Bed {
    dir: PathBuf,
    netns: String,
    veth: String,
    ovs_prefix: String,
    agent: Option<Daemon>,
    proxy: Option<Daemon>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        for mut d in [self.proxy.take(), self.agent.take()].into_iter().flatten() {
            d.terminate(Duration::from_millis(300));
        }
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
        let _ = Command::new("ip").args(["link", "del", &self.veth]).stderr(Stdio::null()).status();
        for br in ["trunk", "park", "s100"] {
            let _ = Command::new("ovs-vsctl")
                .args(["--if-exists", "del-br", &format!("{}-{br}", self.ovs_prefix)])
                .status();
        }
    }
}

impl Bed {
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

#[test]
fn nbi_add_object_and_dhcp_settings_reach_a_real_proxy_through_the_agent() {
    let tag = std::process::id() % 1000;
    let dir = TempDir::new("hv-e2e");
    let mut bed = Bed {
        dir: dir.to_path_buf(),
        netns: format!("hve{tag}"),
        veth: format!("hvm{tag}"),
        ovs_prefix: format!("he{tag}"),
        agent: None,
        proxy: None,
    };
    let ok = Command::new("ip").args(["netns", "add", &bed.netns]).status().is_ok_and(|s| s.success());
    assert!(ok, "creating a network namespace failed: this test needs root and iproute2");
    // The vRGW's management link: the agent reaches slot 1 at 10.253.N.2 (mgmt_network .0/24).
    let net = 10 + tag % 200;
    let peer = format!("{}p", bed.veth);
    sh(&["ip", "link", "add", &bed.veth, "type", "veth", "peer", "name", &peer]);
    sh(&["ip", "link", "set", &peer, "netns", &bed.netns]);
    sh(&["ip", "addr", "add", &format!("10.253.{net}.1/24"), "dev", &bed.veth]);
    sh(&["ip", "link", "set", &bed.veth, "up"]);
    sh(&["ip", "-n", &bed.netns, "addr", "add", &format!("10.253.{net}.2/24"), "dev", &peer]);
    sh(&["ip", "-n", &bed.netns, "link", "set", &peer, "up"]);
    sh(&["ip", "-n", &bed.netns, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", &bed.netns, "link", "add", "lan0", "type", "veth", "peer", "name", "home0"]);
    sh(&["ip", "-n", &bed.netns, "link", "set", "home0", "up"]);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp_addr, nbi) = start_acs(&rt, &dir, "host-e2e");
    agent_config(
        &dir,
        "host-e2e",
        cwmp_addr,
        &bed.ovs_prefix,
        &format!("10.253.{net}.0/24"),
        "metrics_listen = \"127.0.0.1:0\"\n",
    );
    bed.agent = Some(start_agent(AGENT_BIN, &dir));
    let metrics_at = bed.agent.as_ref().map(|a| a.addr("metrics")).expect("the agent's metrics listener");

    rt.block_on(async {
        // The agent bootstraps into the ACS.
        let id = "00A0B1-vRGW%2DHost-host%2De2e";
        nbi.wait_device(id, &dir.join("agent.log")).await;
        let task = |body: serde_json::Value| nbi.task(id, body);
        // A template, then an instance of it on S-VLAN 100 / C-VLAN 7: AddObject with its
        // values in the same session.
        let (s, v) = task(json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
            "parameterValues": [["Name", "vrgw-small"], ["Image", "/var/lib/vrgw/images/small"]]}))
        .await;
        assert_eq!(s, 200, "{v}\n{}", bed.log("agent.log"));
        let t = v["result"]["instance"].as_u64().unwrap_or_else(|| panic!("{v}"));
        let (s, v) = task(json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
            "parameterValues": [["Template", format!("{VIRT}Template.{t}")], ["Subscriber", "sub-42"],
                                ["SVLAN", "100", "xsd:unsignedInt"], ["CVLAN", "7", "xsd:unsignedInt"]]}))
        .await;
        assert_eq!(s, 200, "{v}\n{}", bed.log("agent.log"));
        assert_eq!(v["status"], "done", "{v}");
        let n = v["result"]["instance"].as_u64().unwrap_or_else(|| panic!("{v}"));
        let inst = format!("{VIRT}Instance.{n}.");
        let (_, v) = task(json!({"name": "getParameterValues", "parameterNames": [format!("{inst}Status"), format!("{inst}ManagementAddress")]})).await;
        let text = v.to_string();
        assert!(text.contains("Running") && text.contains(&format!("10.253.{net}.2")), "{text}\n{}", bed.log("agent.log"));
        // Its metrics: the vRGW by status, libvirt's calls by operation.
        let http = test_support::http::Http::new();
        let m = http.send(hyper::Method::GET, &format!("http://{metrics_at}/metrics"), &[], bytes::Bytes::new()).await;
        assert_eq!(m.status, 200);
        let m = m.text();
        assert!(m.lines().any(|l| l == "vrgw_instances{status=\"Running\"} 1"), "{m}");
        let defines = m.lines().find_map(|l| l.strip_prefix("libvirt_call_seconds_count{op=\"define\"} "));
        assert!(defines.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= 1), "{m}");

        // The vRGW "boots": its proxy comes up on the management address with the secret the
        // agent gave the instance (a guest reads it from SMBIOS; here from the agent's store).
        let state = hypervisor_agent::state::State::open(&dir.join("agent.db")).expect("agent state");
        let slot = state.slot_of(n as u32).expect("slot").expect("instance has a slot");
        std::fs::write(dir.join("secret"), &slot.secret).expect("secret");
        let proxy = start_proxy(&bed.netns, &format!("10.253.{net}.2:8730"), &dir, "sub-42");
        bed.proxy = Some(proxy);
        // The agent pushes the instance's profile once the proxy answers: the SSID of the
        // profile (named after the instance) replaces the proxy's own factory one.
        let conf = dir.join("proxy-run/dnsmasq.conf");
        let hostapd = dir.join("proxy-run/hostapd.conf");
        let deadline = Instant::now() + Duration::from_secs(20);
        let ssid2: String = format!("vrgw-{n}").bytes().map(|b| format!("{b:02x}")).collect();
        while !std::fs::read_to_string(&hostapd).is_ok_and(|c| c.contains(&format!("ssid2={ssid2}\n"))) {
            assert!(Instant::now() < deadline, "the profile never reached the proxy:\n{}\n{}", bed.log("proxy.log"), bed.log("agent.log"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The OSS changes the subscriber's DHCP pool through the NBI.
        let pool = format!("{inst}Device.DHCPv4.Server.Pool.1.");
        let (s, v) = task(json!({"name": "setParameterValues", "parameterValues": [
            [format!("{pool}MinAddress"), "192.168.1.50"], [format!("{pool}MaxAddress"), "192.168.1.60"]]}))
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "done", "{v}\n{}\n{}", bed.log("agent.log"), bed.log("proxy.log"));
        let text = std::fs::read_to_string(&conf).expect("dnsmasq.conf");
        assert!(text.contains("192.168.1.50") && text.contains("192.168.1.60"), "{text}");
        // A value the vRGW refuses comes back as the proxy's fault, and changes nothing.
        let (_, v) = task(json!({"name": "setParameterValues", "parameterValues": [[format!("{pool}MinAddress"), "192.168.1.70"]]})).await;
        assert_eq!(v["status"], "fault", "{v}");
        assert!(v.to_string().contains("9007"), "{v}");
        assert!(std::fs::read_to_string(&conf).expect("conf").contains("192.168.1.50"));

        // The ACS's parameter cache has the new values.
        let proj = format!("{pool}MinAddress,{pool}MaxAddress");
        let (_, v) = nbi
            .call(
                Method::GET,
                &format!("/devices?query={}&projection={}", enc(&json!({"_id": id}).to_string()), enc(&proj)),
                None,
            )
            .await;
        let text = v.to_string();
        assert!(text.contains("192.168.1.50") && text.contains("192.168.1.60"), "{text}");

        // ScheduleInform: accepted, and a second later the agent informs with 3 SCHEDULED and
        // M ScheduleInform under the task's key.
        let (s, v) = task(json!({"name": "scheduleInform", "delaySeconds": 1})).await;
        assert_eq!((s, &v["status"]), (200, &json!("done")), "{v}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = bed.log("agent.log");
            if log.lines().any(|l| l.contains("informing the ACS") && l.contains("3 SCHEDULED") && l.contains("M ScheduleInform")) {
                break;
            }
            assert!(Instant::now() < deadline, "no scheduled Inform:\n{log}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
