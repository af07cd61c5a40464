//! Connection requests to the agent binary: Digest only (Basic refused even with the right
//! password), the digest must cover the request's own URI, and a captured header sent again is
//! refused; the right one is accepted once. No ACS answers (its URL is a closed loopback port):
//! the agent's credentials stay the ones of its configuration. Needs Open vSwitch running
//! (scripts/start-ovs).

use std::process::Command;

use hyper::Method;
use test_support::acs::CR_PASSWORD;
use test_support::agent::{agent_config, start_agent};
use test_support::http::Http;
use test_support::TempDir;

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

/// The agent's Open vSwitch bridges, removed when dropped.
struct Bridges(String);

impl Drop for Bridges {
    fn drop(&mut self) {
        for br in ["trunk", "park"] {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{}-{br}", self.0)]).status();
        }
    }
}

#[test]
fn connection_requests_take_a_fresh_digest_for_their_own_uri_and_nothing_else() {
    let dir = TempDir::new("hv-cr");
    let prefix = format!("hr{}", std::process::id() % 1000);
    let _bridges = Bridges(prefix.clone());
    let nowhere = "127.0.0.1:9".parse().expect("address");
    agent_config(&dir, "host-cr", nowhere, &prefix, "10.247.0.0/16", "");
    let agent = start_agent(AGENT_BIN, &dir);
    let base = format!("http://{}", agent.addr("cr"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let http = Http::new();
    let get = |path: &str, auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        rt.block_on(http.send(Method::GET, &format!("{base}{path}"), &headers, ""))
    };
    // A challenge: Digest only.
    let challenge = || {
        let r = get("/", None);
        assert_eq!(r.status, 401);
        let all: Vec<String> =
            r.headers.get_all("www-authenticate").iter().filter_map(|h| h.to_str().ok().map(str::to_string)).collect();
        assert!(!all.is_empty() && all.iter().all(|c| c.starts_with("Digest ")), "{all:?}");
        all[0].clone()
    };
    let log = || std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();

    // Basic with the right password: refused (plain HTTP).
    use base64_free::basic;
    assert_eq!(get("/", Some(&basic("acs", CR_PASSWORD))).status, 401);
    // A digest made for another URI: refused.
    let elsewhere = cwmp::auth::answer(&challenge(), "GET", "/elsewhere", "acs", CR_PASSWORD, "c1").expect("digest");
    assert_eq!(get("/", Some(&elsewhere)).status, 401);
    // A wrong password: refused.
    let wrong = cwmp::auth::answer(&challenge(), "GET", "/", "acs", "not-it", "c2").expect("digest");
    assert_eq!(get("/", Some(&wrong)).status, 401);
    assert!(!log().contains("connection request accepted"), "{}", log());
    // The right one is accepted, once: the same header again is a replay.
    let right = cwmp::auth::answer(&challenge(), "GET", "/", "acs", CR_PASSWORD, "c3").expect("digest");
    assert_eq!(get("/", Some(&right)).status, 200);
    assert_eq!(get("/", Some(&right)).status, 401, "a replayed header was accepted");
    let log = log();
    assert_eq!(log.matches("connection request accepted").count(), 1, "{log}");
    assert!(log.contains("replayed digest"), "{log}");
    assert!(log.contains("Basic authentication is not accepted"), "{log}");
    assert!(!log.contains(CR_PASSWORD), "the password reached the log");
}

/// `Authorization: Basic ...` without a base64 crate.
mod base64_free {
    pub fn basic(user: &str, pass: &str) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let raw = format!("{user}:{pass}").into_bytes();
        let mut out = String::from("Basic ");
        for chunk in raw.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// The connection-request listener under a flood: 10,000 connections that never send a byte and
/// a client that trickles its request head a byte a second; the ACS's connection request is
/// still answered, and the trickler is cut off unanswered.
#[test]
fn a_connection_request_is_answered_through_a_flood() {
    use http_shell::{flood, raise_nofile};
    const IDLE: usize = 10_000;
    const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let in_time = std::time::Duration::from_secs(10);
    let want = IDLE as u64 + 1_000;
    assert!(raise_nofile(want).expect("RLIMIT_NOFILE") >= want, "too few file descriptors for the flood");
    let dir = TempDir::new("hv-cr-flood");
    let prefix = format!("hf{}", std::process::id() % 1000);
    let _bridges = Bridges(prefix.clone());
    let nowhere = "127.0.0.1:9".parse().expect("address");
    agent_config(&dir, "host-cr-flood", nowhere, &prefix, "10.246.0.0/16", "");
    let agent = start_agent(AGENT_BIN, &dir);
    let addr = agent.addr("cr");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let http = Http::new();
        let url = format!("http://{addr}/");
        let trickler = flood::trickle(addr, HEAD);
        let _idle = flood::idle(addr, IDLE).await.expect("the flood");
        let first =
            tokio::time::timeout(in_time, http.send(Method::GET, &url, &[], "")).await.expect("a challenge in time");
        assert_eq!(first.status, 401);
        let challenge = first.header("www-authenticate").expect("a challenge").to_string();
        let right = cwmp::auth::answer(&challenge, "GET", "/", "acs", CR_PASSWORD, "f1").expect("digest");
        let r = tokio::time::timeout(in_time, http.send(Method::GET, &url, &[("authorization", &right)], ""))
            .await
            .expect("an answer in time");
        assert_eq!(r.status, 200, "the connection request through the flood");
        let t = tokio::time::timeout(in_time, trickler).await.expect("the trickler cut off in time").expect("join");
        let t = t.expect("the trickler's connection");
        assert!(t.answer.is_empty() && t.sent < HEAD.len(), "{t:?}");
    });
}
