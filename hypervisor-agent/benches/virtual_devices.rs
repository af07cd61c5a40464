//! A thousand vRGWs managed as virtual devices (TR-069 Annex J.2) on one agent: the ACS in this
//! process (SQLite), the `hypervisor-agent` binary on libvirt's test driver and real Open vSwitch
//! (no guest runs: each vRGW's data model is its profile, which the agent serves).
//!
//! 1. Made in bulk: N instances of a Virtual template in one session, their devices' first
//!    sessions (BOOTSTRAP) spread at `virtual_start_rate`; how long until the ACS knows all N.
//! 2. At rest (PeriodicInformInterval one day): the agent's RSS and CPU over REST_SECS.
//! 3. A periodic-inform wave: the OSS sets every device's PeriodicInformInterval to 60 s (a
//!    connection request each); over the next 60 s every device informs once, at its own phase:
//!    the ACS's sessions/s, the agent's CPU and RSS, and the latency of a connection-request task
//!    to one device meanwhile.
//! 4. An aligned wave: every device given the same PeriodicInformTime, so all N inform at the
//!    same instant: how many sessions/s the ACS and the agent take from them.
//!
//! `cargo bench -p hypervisor-agent --bench virtual_devices` (root; Open vSwitch running:
//! scripts/start-ovs). BENCH_DEVICES (default 1000), REST_SECS (default 30).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_support::acs::{agent_device, start_acs};
use test_support::agent::{agent_config, start_agent, VIRT};
use test_support::{enc, Daemon, NbiClient, TempDir};

const AGENT: &str = "host-vdb";

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// The agent's resident memory (MiB) and CPU time so far (s), from /proc.
fn usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: field 14 (utime) and 15 (stime) of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (rss_kib / 1024.0, (ticks(11) + ticks(12)) / 100.0)
}

/// Lines of the agent's log that opened a virtual device's session with `event`.
fn sessions_with(dir: &TempDir, event: &str) -> usize {
    let log = test_support::agent::plain_log(dir);
    log.lines().filter(|l| l.contains("informing the ACS device=00A0B1-vRGW-") && l.contains(event)).count()
}

fn failed_sessions(dir: &TempDir) -> usize {
    let log = test_support::agent::plain_log(dir);
    log.lines().filter(|l| l.contains("session failed") && l.contains("device=00A0B1-vRGW-")).count()
}

async fn known_devices(nbi: &NbiClient<'_>) -> usize {
    let q = enc(&json!({"_deviceId._ProductClass": "vRGW"}).to_string());
    let (_, v) = nbi.call(hyper::Method::GET, &format!("/devices?query={q}&projection=_id"), None).await;
    v.as_array().map_or(0, Vec::len)
}

/// How many virtual devices informed at or after `since` (ISO 8601).
async fn informed_since(nbi: &NbiClient<'_>, since: &str) -> usize {
    let q = enc(&json!({"_deviceId._ProductClass": "vRGW", "_lastInform": {"$gte": since}}).to_string());
    let (_, v) = nbi.call(hyper::Method::GET, &format!("/devices?query={q}&projection=_id"), None).await;
    v.as_array().map_or(0, Vec::len)
}

fn percentile(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
}

fn main() {
    let n = env_or("BENCH_DEVICES", 1000);
    let rest = env_or("REST_SECS", 30) as u64;
    let dir = TempDir::new("hv-vdbench");
    let prefix = format!("vb{}", std::process::id() % 1000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs(&rt, &dir, AGENT);
    let config = |rate: u32| format!("periodic_inform_interval = 86400\nvirtual_start_rate = {rate}\n");
    agent_config(&dir, AGENT, cwmp, &prefix, "10.250.0.0/16", &config(50));
    let agent: Daemon = start_agent(env!("CARGO_BIN_EXE_hypervisor-agent"), &dir);
    let host = agent_device(AGENT);
    rt.block_on(async {
        nbi.wait_device(&host, &dir.join("agent.log")).await;
        let ok = |(s, v): (u16, Value)| {
            assert!(s == 200 && v["status"] == "done", "{s} {v}");
            v
        };
        let v = ok(nbi
            .task(&host, json!({"name": "addObject", "objectName": format!("{VIRT}Template."),
                "parameterValues": [["Name", "gw"], ["Image", "/var/lib/vrgw/images/small"],
                                    ["ManagementMode", "Virtual"]]}))
            .await);
        let template = format!("{VIRT}Template.{}", v["result"]["instance"]);

        // 1. N instances queued (as an OSS does in bulk) and made in one session.
        let made = Instant::now();
        for i in 1..=n {
            let path = format!("/devices/{}/tasks", enc(&host));
            let body = json!({"name": "addObject", "objectName": format!("{VIRT}Instance."),
                "parameterValues": [["Template", template], ["Subscriber", format!("sub-{i}")],
                                    ["SVLAN", "500", "xsd:unsignedInt"], ["CVLAN", i.to_string(), "xsd:unsignedInt"]]});
            let (s, v) = nbi.call(hyper::Method::POST, &path, Some(body)).await;
            assert_eq!(s, 202, "{v}");
        }
        // The session may outlast the NBI's wait: then the queue empties when it is over.
        let (s, v) = nbi
            .task(&host, json!({"name": "getParameterValues", "parameterNames": [format!("{VIRT}InstanceNumberOfEntries")]}))
            .await;
        assert!(s == 200 || s == 202, "{s} {v}");
        let queued = format!("/tasks?query={}", enc(&json!({"device": host}).to_string()));
        loop {
            let (s, v) = nbi.call(hyper::Method::GET, &queued, None).await;
            assert_eq!(s, 200, "{v}");
            if v.as_array().is_some_and(Vec::is_empty) {
                break;
            }
            assert!(made.elapsed() < Duration::from_secs(900), "the instances were not made in 900 s: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let session_done = made.elapsed();
        let mut last = 0;
        let mut stalled = Instant::now();
        loop {
            let k = known_devices(&nbi).await;
            if k >= n {
                break;
            }
            if k != last {
                (last, stalled) = (k, Instant::now());
            }
            assert!(stalled.elapsed() < Duration::from_secs(120), "{k} of {n} devices known after a stall");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let all_known = made.elapsed();
        println!("virtual devices: {n} on one agent (libvirt test driver, Open vSwitch), ACS in process (SQLite)");
        println!(
            "  made in bulk: {n} instances in one session {:.1} s; all {n} bootstrapped into the ACS {:.1} s after the start ({:.0} devices/s after the session; start rate 50/s); failed sessions {}",
            session_done.as_secs_f64(),
            all_known.as_secs_f64(),
            n as f64 / (all_known - session_done).as_secs_f64().max(0.001),
            failed_sessions(&dir)
        );

        // 2. At rest.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (_, cpu0) = usage(agent.id());
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(rest)).await;
        let (rss, cpu1) = usage(agent.id());
        println!(
            "  at rest: agent RSS {rss:.1} MiB, CPU {:.2} % of one core over {rest} s",
            100.0 * (cpu1 - cpu0) / t0.elapsed().as_secs_f64()
        );

        // 3. Every device told to inform every 60 s.
        let told = Instant::now();
        let ids: Vec<String> = (1..=n).map(|i| format!("00A0B1-vRGW-sub%2D{i}")).collect();
        let mut told_lat = Vec::new();
        for id in &ids {
            let t = Instant::now();
            ok(nbi
                .task(id, json!({"name": "setParameterValues",
                    "parameterValues": [["Device.ManagementServer.PeriodicInformInterval", "60", "xsd:unsignedInt"]]}))
                .await);
            told_lat.push(t.elapsed());
        }
        let told_secs = told.elapsed().as_secs_f64();
        println!(
            "  {n} connection-request tasks one after another: {told_secs:.1} s ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms",
            n as f64 / told_secs,
            percentile(&mut told_lat, 0.5),
            percentile(&mut told_lat, 0.99)
        );
        let periodic0 = sessions_with(&dir, "2 PERIODIC");
        let (_, cpu0) = usage(agent.id());
        let t0 = Instant::now();
        let one = &ids[n / 2];
        let mut cr = Vec::new();
        let mut peak_rss: f64 = 0.0;
        while t0.elapsed() < Duration::from_secs(60) {
            let t = Instant::now();
            ok(nbi.task(one, json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]})).await);
            cr.push(t.elapsed());
            peak_rss = peak_rss.max(usage(agent.id()).0);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let window = t0.elapsed().as_secs_f64();
        let (_, cpu1) = usage(agent.id());
        let periodic = sessions_with(&dir, "2 PERIODIC") - periodic0;
        println!(
            "  periodic wave (interval 60 s): {periodic} PERIODIC sessions in {window:.0} s = {:.1} sessions/s; agent CPU {:.1} % of one core, peak RSS {peak_rss:.1} MiB",
            periodic as f64 / window,
            100.0 * (cpu1 - cpu0) / window
        );
        println!(
            "  a connection-request task to one device meanwhile: n={} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            cr.len(),
            percentile(&mut cr, 0.5),
            percentile(&mut cr, 0.99),
            percentile(&mut cr, 1.0)
        );

        // 4. Every device told to inform at the same instant (a PeriodicInformTime common to
        //    all, as an operator may set it): one wave of N sessions at once, taken as fast as
        //    the ACS and the agent can.
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) + 600;
        let when = cwmp::DateTime::from_unix(at as i64).as_str().to_string();
        for id in &ids {
            ok(nbi
                .task(id, json!({"name": "setParameterValues",
                    "parameterValues": [["Device.ManagementServer.PeriodicInformTime", when, "xsd:dateTime"]]}))
                .await);
        }
        // The next time of that phase (a multiple of 60 s from it) once all are told: all N at once.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut next = now + (at - now) % 60;
        if next <= now + 1 {
            next += 60;
        }
        let periodic0 = sessions_with(&dir, "2 PERIODIC");
        let failed0 = failed_sessions(&dir);
        tokio::time::sleep(Duration::from_secs(next.saturating_sub(now))).await;
        let t0 = Instant::now();
        let since = cwmp::DateTime::from_unix(next as i64).as_str().to_string();
        let (_, cpu0) = usage(agent.id());
        let (mut opened, mut accepted) = (0, 0);
        let mut peak_rss: f64 = 0.0;
        while accepted < n {
            assert!(t0.elapsed() < Duration::from_secs(300), "{accepted} of {n} Informs of the aligned wave after 300 s");
            tokio::time::sleep(Duration::from_millis(250)).await;
            opened = sessions_with(&dir, "2 PERIODIC") - periodic0;
            accepted = informed_since(&nbi, &since).await;
            peak_rss = peak_rss.max(usage(agent.id()).0);
        }
        let took = t0.elapsed().as_secs_f64();
        assert!(opened >= n, "{opened} sessions opened for {accepted} Informs");
        let (_, cpu1) = usage(agent.id());
        println!(
            "  aligned wave (one PeriodicInformTime for all): {n} Informs accepted by the ACS in {took:.1} s ({:.0} sessions/s); agent CPU {:.0} % of one core, peak RSS {peak_rss:.1} MiB; failed sessions {}",
            n as f64 / took,
            100.0 * (cpu1 - cpu0) / took,
            failed_sessions(&dir) - failed0
        );
    });
    drop(agent);
    for br in ["trunk", "park", "s500"] {
        let _ =
            std::process::Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{prefix}-{br}")]).status();
    }
}
