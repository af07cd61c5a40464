//! Attacks on the ACS's identities, played against the `acs` binary: each case asserts that the
//! attack is refused and that nothing was stored or changed.
//!
//! - a CPE informing under another device's DeviceId;
//! - a captured Digest header replayed, and a login guessed with a user that does not exist;
//! - a ConnectionRequestURL pointing at a listener of the attacker's (no credential in clear);
//! - CPE credentials managed through the NBI: bound to their device, never shown, never stored
//!   in clear, refused once removed;
//! - a host reporting a MigrationURI of its choosing (only registered hosts' URIs go out).
//!
//! A host claiming another host's subscriber is in `portal.rs` (it needs the web form).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use acs::sim::SimCpe;
use base64::Engine as _;
use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::{cwmp_post, digest, finish_session, sim_host, AcsCommand, CR, SIM_PREFIX};
use test_support::http::Http;
use test_support::{enc, NbiClient, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "attack-suite-token-0123";

fn acs_command(dir: &TempDir) -> AcsCommand {
    AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
}

/// The devices the ACS knows.
async fn device_ids(oss: &NbiClient<'_>) -> Vec<String> {
    let (s, devices) = oss.call(Method::GET, "/devices?projection=_id", None).await;
    assert_eq!(s, 200);
    let mut ids: Vec<String> =
        devices.as_array().expect("a list").iter().filter_map(|d| d["_id"].as_str().map(str::to_string)).collect();
    ids.sort();
    ids
}

/// A device as the NBI shows it.
async fn device(oss: &NbiClient<'_>, id: &str) -> Value {
    let (s, d) = oss.call(Method::GET, &format!("/devices?query={}", enc(&json!({"_id": id}).to_string())), None).await;
    assert_eq!(s, 200);
    d[0].clone()
}

/// A simulated CPE that logs in as `user`/`pass` and whose connection requests go to `cr`.
fn sim(acs: SocketAddr, serial: &str, user: &str, pass: &str, cr: SocketAddr) -> Arc<SimCpe> {
    SimCpe::new(serial, &format!("http://{acs}/"), user, pass, cr, CR)
}

fn unreachable() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpe_cannot_inform_as_another_device() {
    let dir = TempDir::new("acs-attack-identity");
    let victim = format!("{SIM_PREFIX}victim");
    let acs = acs_command(&dir)
        .config(&format!(
            "[[cwmp.cpe_credentials]]\nusername = \"one\"\npassword = \"one-secret\"\ndevice = \"{victim}\"\n"
        ))
        .start();
    let oss = NbiClient::new(acs.nbi, TOKEN);

    // The credential of one device, used to inform as another: refused, nothing stored.
    let attacker = sim(acs.cwmp, "attacker", "one", "one-secret", unreachable());
    let err = attacker.session(&[]).await.expect_err("an Inform as another device is refused");
    assert!(err.contains("401"), "{err}");
    assert_eq!(device_ids(&oss).await, Vec::<String>::new(), "the refused Inform stored nothing");
    // The fleet credential (any DeviceId with the simulated CPEs' prefix) cannot inform as a
    // device of another product class.
    let http = Http::new();
    let forged = sim(acs.cwmp, "x", "cpe", "cpe-secret", unreachable())
        .inform_envelope(&["0 BOOTSTRAP"])
        .replace("<ProductClass>SimCPE</ProductClass>", "<ProductClass>Other</ProductClass>");
    assert!(forged.contains("<ProductClass>Other</ProductClass>"), "the forged Inform names another class");
    let first = cwmp_post(&http, acs.cwmp, forged.clone(), None, None).await;
    assert_eq!(first.status, 401);
    let auth = digest(&first.challenges, "cpe", "cpe-secret", "f0");
    let refused = cwmp_post(&http, acs.cwmp, forged, None, Some(&auth)).await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert!(refused.cookie.is_none(), "no session for a refused Inform");
    assert_eq!(device_ids(&oss).await, Vec::<String>::new());

    // The device the credential is bound to informs with it.
    let owner = sim(acs.cwmp, "victim", "one", "one-secret", unreachable());
    owner.session(&[]).await.expect("the bound device informs");
    assert_eq!(device_ids(&oss).await, vec![victim.clone()]);
    let before = device(&oss, &victim).await;
    // And the attacker still cannot, now that the device exists: its record is unchanged.
    attacker.session(&[]).await.expect_err("still refused");
    assert_eq!(device(&oss, &victim).await, before);
    let log = acs.daemon.log();
    assert!(
        log.lines().any(|l| l.contains("refused an Inform")
            && l.contains("user=one")
            && l.contains("device=00A0B1-SimCPE-attacker")),
        "the refusal is logged with both identities: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_digest_header_cannot_be_replayed_and_unknown_users_look_like_wrong_passwords() {
    let dir = TempDir::new("acs-attack-replay");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let http = Http::new();
    let cpe = sim(acs.cwmp, "replayed", "cpe", "cpe-secret", unreachable());
    cpe.session(&[]).await.expect("bootstrap");
    let id = cpe.device_id();

    // A session by hand; its Authorization header is what an eavesdropper captures.
    let inform = cpe.inform_envelope(&["2 PERIODIC"]);
    let first = cwmp_post(&http, acs.cwmp, inform.clone(), None, None).await;
    assert_eq!(first.status, 401);
    let captured = digest(&first.challenges, "cpe", "cpe-secret", "c0ffee");
    let ok = cwmp_post(&http, acs.cwmp, inform.clone(), None, Some(&captured)).await;
    assert_eq!(ok.status, 200);
    finish_session(&http, acs.cwmp, &cpe, &ok.cookie.expect("cookie")).await;
    let before = device(&oss, &id).await;

    // The same header again, with the same Inform (the nonce is still within its lifetime).
    let replay = cwmp_post(&http, acs.cwmp, inform.clone(), None, Some(&captured)).await;
    assert_eq!(replay.status, 401, "a replayed header is refused: {:?}", replay.body);
    assert!(replay.cookie.is_none());
    assert!(!replay.challenges.is_empty(), "with fresh challenges");
    // A header made for another URI (as captured from a request elsewhere) does not open a
    // session at `/`, though its nonce and password are right.
    let c = cwmp_post(&http, acs.cwmp, inform.clone(), None, None).await;
    let elsewhere = c
        .challenges
        .iter()
        .find_map(|c| acs::auth::answer(c, "POST", "/elsewhere", "cpe", "cpe-secret", "e1"))
        .expect("digest");
    let moved = cwmp_post(&http, acs.cwmp, inform.clone(), None, Some(&elsewhere)).await;
    assert_eq!(moved.status, 401);
    assert!(moved.cookie.is_none());
    assert_eq!(device(&oss, &id).await, before, "nothing of the replays changed the device");

    // A wrong password and a user that does not exist get the same answer.
    let c = cwmp_post(&http, acs.cwmp, inform.clone(), None, None).await;
    let wrong =
        cwmp_post(&http, acs.cwmp, inform.clone(), None, Some(&digest(&c.challenges, "cpe", "nope", "1"))).await;
    let c = cwmp_post(&http, acs.cwmp, inform.clone(), None, None).await;
    let nobody =
        cwmp_post(&http, acs.cwmp, inform.clone(), None, Some(&digest(&c.challenges, "nobody", "nope", "1"))).await;
    assert_eq!((wrong.status, nobody.status), (401, 401));
    assert_eq!(wrong.body, nobody.body);
    assert_eq!(wrong.challenges.len(), nobody.challenges.len());
    // Basic over plain HTTP is refused even with the right password, and not offered.
    assert!(c.challenges.iter().all(|c| !c.starts_with("Basic")), "{:?}", c.challenges);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("cpe:cpe-secret"));
    let plain = cwmp_post(&http, acs.cwmp, inform, None, Some(&basic)).await;
    assert_eq!(plain.status, 401);
    assert_eq!(device(&oss, &id).await, before);
}

/// A listener of the attacker's: answers every request with 401 and `challenge`, and keeps what
/// arrived.
async fn trap(challenge: &'static str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let mut got = Vec::new();
                // One request per connection (the ACS opens one per attempt).
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                keep.lock().expect("lock").push(String::from_utf8_lossy(&got).into_owned());
                let answer = format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_request_url_pointing_elsewhere_gets_no_credential_in_clear() {
    let dir = TempDir::new("acs-attack-cr");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);

    for (serial, challenge) in [
        ("lure-basic", "Basic realm=\"trap\""),
        ("lure-digest", "Digest realm=\"trap\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5"),
    ] {
        let (trap_addr, seen) = trap(challenge).await;
        let cpe = sim(acs.cwmp, serial, "cpe", "cpe-secret", trap_addr);
        cpe.session(&[]).await.expect("bootstrap");
        // The ACS gave the device credentials of its own at bootstrap.
        let (user, pass) = cpe.cr_credentials();
        assert_ne!((user.as_str(), pass.as_str()), CR, "the factory credentials were replaced");
        assert!(pass.len() >= 16, "a generated password: {pass:?}");

        let r = oss
            .send(
                Method::POST,
                &format!("/devices/{}/tasks?connection_request&timeout=2000", enc(&cpe.device_id())),
                Some(json!({"name": "reboot"})),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        assert_eq!(r.json["status"], json!("pending"), "the task waits for the device's next Inform");
        let seen = seen.lock().expect("lock").clone();
        assert!(!seen.is_empty(), "the ACS did try the URL it was given");
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        for req in &seen {
            let lower = req.to_ascii_lowercase();
            assert!(!lower.contains("authorization: basic"), "{serial}: Basic sent in clear: {req}");
            assert!(!req.contains(&pass) && !req.contains(&b64), "{serial}: the password went out: {req}");
        }
        if serial == "lure-digest" {
            // Digest is answered (the password itself never leaves), keyed to this device only.
            assert!(
                seen.iter().any(|r| r.contains("Digest username=\"") && r.contains(&user)),
                "the Digest answer names the device's own user: {seen:?}"
            );
        }
    }
    // Two devices never share a connection-request password.
    let a = sim(acs.cwmp, "cr-a", "cpe", "cpe-secret", unreachable());
    let b = sim(acs.cwmp, "cr-b", "cpe", "cpe-secret", unreachable());
    a.session(&[]).await.expect("a");
    b.session(&[]).await.expect("b");
    assert_ne!(a.cr_credentials().1, b.cr_credentials().1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpe_credentials_through_the_nbi_are_bound_hidden_and_hashed() {
    let dir = TempDir::new("acs-attack-nbi-creds");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let device = format!("{SIM_PREFIX}nbi%2D1"); // serial nbi-1, escaped as GenieACS does
    let password = "a-long-secret-of-nbi-1";

    // Bad bodies: 400 with the reason, nothing kept.
    for (body, why) in [
        (json!({"password": "short", "device": device}), "at least 8"),
        (json!({"password": password}), "exactly one of device"),
        (json!({"password": password, "device": device, "devicePrefix": SIM_PREFIX}), "exactly one of device"),
        (json!({"password": password, "device": "a\nb"}), "control characters"),
        // The id unescaped: its '-' inside the serial would pass for a separator.
        (json!({"password": password, "device": format!("{SIM_PREFIX}nbi-1")}), "written %2D"),
        // A fleet credential proxies nothing: only a host's (one device) names its virtual devices.
        (json!({"password": password, "devicePrefix": SIM_PREFIX, "proxies": "00A0B1-vRGW-"}), "goes with a device"),
        (json!({"password": password, "device": device, "proxies": ""}), "DeviceId prefix of 1 to 256"),
    ] {
        let r = oss.send(Method::PUT, "/cpe-credentials/nbi-1", Some(body)).await;
        assert_eq!(r.status, 400, "{:?}", r.json);
        assert!(r.json.to_string().contains(why), "{}", r.json);
    }
    let r = oss.send(Method::PUT, "/cpe-credentials/cpe", Some(json!({"password": password, "device": device}))).await;
    assert_eq!(r.status, 409, "a user of the configuration file is changed there");
    assert_eq!(oss.call(Method::GET, "/cpe-credentials", None).await.1, json!([]));

    let r =
        oss.send(Method::PUT, "/cpe-credentials/nbi-1", Some(json!({"password": password, "device": device}))).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let (s, list) = oss.call(Method::GET, "/cpe-credentials", None).await;
    assert_eq!(s, 200);
    assert_eq!(list, json!([{"_id": "nbi-1", "device": device}]), "user and scope, never a secret");

    // It speaks for its device and for no other.
    sim(acs.cwmp, "nbi-1", "nbi-1", password, unreachable()).session(&[]).await.expect("the bound device");
    sim(acs.cwmp, "nbi-2", "nbi-1", password, unreachable()).session(&[]).await.expect_err("another device");
    assert_eq!(device_ids(&oss).await, vec![device.clone()]);

    // The store keeps no password in clear (SQLite's file and WAL, or PostgreSQL's data, read
    // while the ACS runs).
    let bytes = test_support::acs::store_contents(&dir.join("acs.db"));
    assert!(bytes.windows(device.len()).any(|w| w == device.as_bytes()), "the credential is in what was read");
    assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "the store holds the password");

    // A host's credential names the virtual devices it proxies; the listing shows it.
    let r = oss
        .send(
            Method::PUT,
            "/cpe-credentials/nbi-1",
            Some(json!({"password": password, "device": device, "proxies": "00A0B1-vRGW-"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let (_, list) = oss.call(Method::GET, "/cpe-credentials", None).await;
    assert_eq!(list, json!([{"_id": "nbi-1", "device": device, "proxies": "00A0B1-vRGW-"}]));

    // Removed: refused from the next session on.
    assert_eq!(oss.send(Method::DELETE, "/cpe-credentials/nbi-1", None).await.status, 200);
    assert_eq!(oss.send(Method::DELETE, "/cpe-credentials/nbi-1", None).await.status, 404);
    sim(acs.cwmp, "nbi-1", "nbi-1", password, unreachable()).session(&[]).await.expect_err("removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_reported_migration_uri_is_never_handed_to_another_host() {
    let dir = TempDir::new("acs-attack-peers");
    let (src_uri, dst_uri) = ("qemu+tls://src.dc.example/system", "qemu+tls://dst.dc.example/system");
    let acs = acs_command(&dir)
        .config(&format!(
            "[[hosts]]\ndevice = \"{SIM_PREFIX}src\"\nmigration_uri = \"{src_uri}\"\n\
             [[hosts]]\ndevice = \"{SIM_PREFIX}dst\"\nmigration_uri = \"{dst_uri}\"\n"
        ))
        .start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let (src, dst, rogue) = (acs.sim("src").await, acs.sim("dst").await, acs.sim("rogue").await);
    // The source lies about where peers reach it.
    sim_host(&src, "qemu+tcp://attacker.example/system", true);
    sim_host(&dst, "qemu+tcp://attacker.example/system", false);
    sim_host(&rogue, "qemu+tcp://attacker.example/system", false);
    for h in [&src, &dst, &rogue] {
        h.session(&[]).await.expect("bootstrap");
    }
    let migrate = format!("/devices/{}/instances/1/migrate", enc(&src.device_id()));

    // A live migration with a host that is not registered: refused at once, nothing recorded.
    let r = oss.send(Method::POST, &migrate, Some(json!({"target": rogue.device_id(), "mode": "live"}))).await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert!(r.json.to_string().contains("not registered"), "{}", r.json);
    assert_eq!(oss.call(Method::GET, "/migrations", None).await.1, json!([]));

    // Between registered hosts it runs (and fails here: the simulated target does not prepare),
    // and the peer URI it hands the target is the registered one.
    let r = oss
        .send(Method::POST, &migrate, Some(json!({"target": dst.device_id(), "mode": "live", "stepTimeout": 3})))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let id = r.json["_id"].as_str().expect("id").to_string();
    let mut record = Value::Null;
    for _ in 0..200 {
        record = oss.call(Method::GET, &format!("/migrations/{id}"), None).await.1;
        if record["status"] != json!("running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(record["status"], json!("failed"), "{record}");
    assert!(record["error"].to_string().contains("could not prepare"), "{record}");
    // Done tasks too: a query naming `status` sees every status.
    let every = json!({"device": dst.device_id(), "status": {"$exists": true}});
    let (_, tasks) = oss.call(Method::GET, &format!("/tasks?query={}", enc(&every.to_string())), None).await;
    let add = tasks.as_array().expect("tasks").iter().find(|t| t["name"] == json!("addObject")).expect("the prepare");
    let peer = add["parameterValues"]
        .as_array()
        .expect("values")
        .iter()
        .find(|p| p[0] == json!("Migration.Peer"))
        .map(|p| p[1].clone());
    assert_eq!(peer, Some(json!(src_uri)), "{add}");
    // No request the ACS sent any host carries the reported URI (the reads' results do).
    let every = json!({"status": {"$exists": true}});
    let (_, all) = oss.call(Method::GET, &format!("/tasks?query={}", enc(&every.to_string())), None).await;
    for t in all.as_array().expect("tasks") {
        assert!(!t["parameterValues"].to_string().contains("attacker.example"), "a reported URI went out: {t}");
    }
    assert!(acs.daemon.log().contains("the registered one is used"));
}
