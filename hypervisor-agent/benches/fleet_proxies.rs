//! One SetParameterValues touching one parameter in each of N instances (default 200), one
//! session, end to end *with every vRGW running its vrgw-proxy*: NBI → ACS → the agent (libvirt
//! test driver, Open vSwitch) → N real `vrgw-proxy` processes, each with real dnsmasq in a network
//! namespace of its own (as in a guest), validating (dnsmasq's and nft's checkers) and applying.
//!
//! `cargo bench -p hypervisor-agent --bench fleet_proxies` (root, Open vSwitch running, dnsmasq,
//! nft). BENCH_INSTANCES sets N. Everything it makes is removed at the end.
#![allow(missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hypervisor_agent::state::State;
use serde_json::{json, Value};
use test_support::acs::start_acs;
use test_support::agent::{agent_config, start_agent, start_proxy, VIRT};
use test_support::{enc, Daemon, TempDir};

const AGENT: &str = "host-fleet";
/// Every dnsmasq takes an inotify instance; on one kernel (unlike guests, each with its own)
/// 200 of them exceed the default of 128 per user, so the bench raises it for its run.
const INOTIFY: &str = "/proc/sys/fs/inotify/max_user_instances";
const ID: &str = "00A0B1-vRGW%2DHost-host%2Dfleet";

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// What is removed at the end, whatever happens (the temp dir after it, by its own drop).
struct Cleanup {
    tag: u32,
    netns: Vec<String>,
    proxies: Vec<Daemon>,
    prefix: String,
    /// fs.inotify.max_user_instances as it was.
    inotify: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &mut self.proxies {
            p.sigterm();
        }
        std::thread::sleep(Duration::from_millis(500));
        self.proxies.clear(); // SIGKILL to those still running
        for ns in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &format!("hfb{}", self.tag)]).stderr(Stdio::null()).status();
        for br in ["trunk", "park", "s600"] {
            let _ =
                Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{}-{br}", self.prefix)]).status();
        }
        if let Some(v) = &self.inotify {
            let _ = std::fs::write(INOTIFY, v);
        }
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_INSTANCES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let tag = std::process::id() % 1000;
    let dir = TempDir::new("hv-fleet");
    let inotify = std::fs::read_to_string(INOTIFY).ok().map(|v| v.trim().to_string());
    let need = 2 * n + 64;
    if inotify.as_deref().and_then(|v| v.parse::<usize>().ok()).is_some_and(|v| v < need) {
        std::fs::write(INOTIFY, need.to_string()).expect("raising fs.inotify.max_user_instances (root)");
    }
    let mut cleanup = Cleanup { tag, netns: Vec::new(), proxies: Vec::new(), prefix: format!("hf{tag}"), inotify };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs(&rt, &dir, AGENT);
    agent_config(&dir, AGENT, cwmp, &cleanup.prefix, "10.249.0.0/16", "");
    let agent = start_agent(env!("CARGO_BIN_EXE_hypervisor-agent"), &dir);
    let ok = |(s, v): (u16, Value)| {
        assert!(s == 200 && v["status"] == "done", "{s} {v}");
        v
    };

    // N provisioned instances (tasks queued in bulk, run in one session).
    let setup = Instant::now();
    rt.block_on(async {
        nbi.wait_device(ID, &dir.join("agent.log")).await;
        let v = ok(nbi.task(ID, json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
            "parameterValues": [["Image", "/var/lib/vrgw/images/small"]]}))
        .await);
        let template = format!("{VIRT}Template.{}", v["result"]["instance"]);
        for c in 1..=n {
            let path = format!("/devices/{}/tasks", enc(ID));
            let body = json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
                "parameterValues": [["Template", template], ["SVLAN", "600", "xsd:unsignedInt"], ["CVLAN", c.to_string(), "xsd:unsignedInt"]]});
            assert_eq!(nbi.call(hyper::Method::POST, &path, Some(body)).await.0, 202);
        }
        let path = format!("/devices/{}/tasks?connection_request&timeout=120000", enc(ID));
        let (s, v) = nbi.call(hyper::Method::POST, &path, Some(json!({"name": "getParameterValues", "parameterNames": [format!("{VIRT}InstanceNumberOfEntries")]}))).await;
        assert!(s == 200 && v.to_string().contains(&format!("\"{n}\"")), "{s} {v}");
    });

    // Each vRGW "boots": a namespace with its management address and its proxy.
    let slots: Vec<_> = State::open(&dir.join("agent.db")).expect("state").slots().expect("slots");
    let bridge = format!("hfb{tag}");
    sh(&["ip", "link", "add", &bridge, "type", "bridge"]);
    sh(&["ip", "addr", "add", "10.249.0.1/16", "dev", &bridge]);
    sh(&["ip", "link", "set", &bridge, "up"]);
    for s in &slots {
        let Some(inst) = s.instance else { continue };
        let ip = s.mgmt_address.split('/').next().expect("ip").to_string();
        let ns = format!("hf{tag}n{inst}");
        let veth = format!("hf{tag}v{inst}");
        sh(&["ip", "netns", "add", &ns]);
        cleanup.netns.push(ns.clone());
        sh(&["ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        sh(&["ip", "link", "set", &veth, "master", &bridge, "up"]);
        sh(&["ip", "-n", &ns, "addr", "add", &format!("{ip}/16"), "dev", "eth0"]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &ns, "link", "add", "lan0", "type", "veth", "peer", "name", "home0"]);
        sh(&["ip", "-n", &ns, "link", "set", "home0", "up"]);
        let d = dir.join(format!("vrgw-{inst}"));
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("secret"), &s.secret).expect("secret");
        let child = start_proxy(&ns, &format!("{ip}:8730"), &d, &format!("factory-{inst}"));
        cleanup.proxies.push(child);
    }
    // Wait until the agent pushed every profile (the SSID named after the instance).
    let deadline = Instant::now()
        + Duration::from_secs(std::env::var("BENCH_SYNC_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(600));
    loop {
        let synced = slots
            .iter()
            .filter_map(|s| s.instance)
            .filter(|i| {
                let want: String = format!("vrgw-{i}").bytes().map(|b| format!("{b:02x}")).collect();
                std::fs::read_to_string(dir.join(format!("vrgw-{i}/proxy-run/hostapd.conf")))
                    .is_ok_and(|c| c.contains(&format!("ssid2={want}\n")))
            })
            .count();
        if synced == n {
            break;
        }
        assert!(Instant::now() < deadline, "only {synced}/{n} vRGWs got their profiles");
        std::thread::sleep(Duration::from_millis(500));
    }
    let setup = setup.elapsed();

    // The measured set: one parameter in each instance, one session.
    let list: Vec<Value> = (1..=n)
        .map(|i| {
            json!([
                format!("{VIRT}Instance.{i}.Device.DHCPv4.Server.Pool.1.LeaseTime"),
                (7200 + i).to_string(),
                "xsd:int"
            ])
        })
        .collect();
    let mut times = Vec::new();
    for round in 0..3 {
        let list: Vec<Value> = list
            .iter()
            .map(|v| {
                json!([
                    v[0],
                    (v[1].as_str().unwrap_or("0").parse::<usize>().unwrap_or(0) + round).to_string(),
                    "xsd:int"
                ])
            })
            .collect();
        let t = Instant::now();
        let path = format!("/devices/{}/tasks?connection_request&timeout=600000", enc(ID));
        let (s, v) = rt.block_on(nbi.call(
            hyper::Method::POST,
            &path,
            Some(json!({"name": "setParameterValues", "parameterValues": list})),
        ));
        assert!(s == 200 && v["status"] == "done", "{s} {v}");
        times.push(t.elapsed());
    }
    // Every dnsmasq got its new lease time.
    for i in 1..=n {
        let conf = std::fs::read_to_string(dir.join(format!("vrgw-{i}/proxy-run/dnsmasq.conf"))).unwrap_or_default();
        assert!(conf.contains(&format!(",{}", 7200 + i + 2)), "instance {i}: {conf}");
    }
    times.sort();
    println!("hypervisor agent, {n} running vRGWs (vrgw-proxy + dnsmasq each, own network namespace):");
    println!("  setting up {n} instances, their namespaces and proxies, profiles pushed: {:.1} s", setup.as_secs_f64());
    println!(
        "  SetParameterValues, 1 parameter x {n} instances, one session, end to end: median {:.2} s (min {:.2}, max {:.2}; {:.1} ms per instance)",
        times[1].as_secs_f64(),
        times[0].as_secs_f64(),
        times[2].as_secs_f64(),
        times[1].as_secs_f64() * 1e3 / n as f64
    );
    drop(agent);
    drop(cleanup);
}
