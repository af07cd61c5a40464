//! The `acs` binary's listeners under a flood: on each of CWMP, the NBI and the web form in turn,
//! 10,000 connections that never send a byte and a client that trickles its request head a byte
//! a second; meanwhile a CPE still completes an authenticated session, the OSS still reads
//! `GET /devices` and a browser still gets the log-in page, and the trickler is cut off without
//! an answer. The attack is `http_shell::flood`'s, the same as the shell's own flood test.

use std::net::SocketAddr;
use std::time::Duration;

use http_shell::{flood, raise_nofile};
use hyper::Method;
use test_support::acs::{AcsCommand, AcsProcess};
use test_support::{NbiClient, TempDir};

const TOKEN: &str = "flood-test-token-0123";
const IDLE: usize = 10_000;
/// A request head the trickler never gets to finish.
const HEAD: &[u8] = b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
/// How long each check may take: far under the listeners' 30 s header clock, so an answer in
/// time is one the flood did not hold up until a clock freed a slot.
const IN_TIME: Duration = Duration::from_secs(10);

/// Each listener serves a real client of its own while `label` is flooded.
async fn all_served(acs: &AcsProcess, oss: &NbiClient<'_>, label: &str, round: usize) {
    let sim = acs.sim(&format!("flood-{round}")).await;
    let session = tokio::time::timeout(IN_TIME, sim.session(&[])).await;
    assert!(matches!(session, Ok(Ok(_))), "CWMP session with {label} flooded: {:?}", session.map(|r| r.map(|_| ())));
    let (status, devices) = tokio::time::timeout(IN_TIME, oss.call(Method::GET, "/devices", None))
        .await
        .unwrap_or_else(|_| panic!("GET /devices with {label} flooded: no answer in time"));
    assert_eq!(status, 200, "GET /devices with {label} flooded: {devices}");
    assert!(devices.to_string().contains(&sim.device_id()), "the session's device is listed: {devices}");
    let portal = acs.portal.expect("portal address");
    let (_, page) = flood::ask(portal, HEAD, IN_TIME).await.expect("the web form");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("name=csrf"),
        "the log-in page with {label} flooded: {page:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_serves_its_clients_through_a_flood() {
    // The flood's descriptors in this process; the ACS inherits the limit too.
    let want = IDLE as u64 + 1_000;
    assert!(raise_nofile(want).expect("RLIMIT_NOFILE") >= want, "too few file descriptors for the flood");
    let dir = TempDir::new("acs-flood");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).portal("127.0.0.1:0").start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let portal = acs.portal.expect("portal address");
    all_served(&acs, &oss, "nothing", 0).await;
    let targets: [(&str, SocketAddr); 3] = [("CWMP", acs.cwmp), ("the NBI", acs.nbi), ("the web form", portal)];
    for (round, (label, addr)) in targets.into_iter().enumerate() {
        let trickler = flood::trickle(addr, HEAD);
        let idle = flood::idle(addr, IDLE).await.unwrap_or_else(|e| panic!("flooding {label}: {e}"));
        all_served(&acs, &oss, label, round + 1).await;
        // The trickler had waited longest for its head: it was closed to make room, unanswered.
        let t = tokio::time::timeout(IN_TIME, trickler)
            .await
            .unwrap_or_else(|_| panic!("the trickler on {label} still connected"))
            .expect("join")
            .expect("the trickler connected");
        assert_eq!(t.answer, "", "the trickler on {label} got an answer");
        assert!(t.sent < HEAD.len(), "the trickler on {label} sent its whole head: {t:?}");
        drop(idle);
    }
    assert!(acs.daemon.log().contains("ACS started"), "{}", acs.daemon.log());
}
