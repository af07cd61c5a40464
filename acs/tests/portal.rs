//! The customer web form over HTTP against the real `acs` binary and a simulated host agent whose
//! data model holds two subscribers' vRGWs (each a factory vRGW tree mounted at its instance):
//! accounts through the NBI, log-in with CSRF and rate limits, cookies, validation that changes
//! nothing, a change applied to the subscriber's own vRGW only, another subscriber's ids giving
//! nothing, and the profile applied again to a replacement instance. Then log-in storms: many
//! wrong passwords at once refused before any hash, the hash cap answering 503, another account
//! still logging in, and `X-Forwarded-For` heeded only from a trusted proxy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use acs::sim::SimCpe;
use cwmp::Value;
use hyper::Method;
use serde_json::json;
use test_support::acs::{AcsCommand, AcsProcess};
use test_support::http::{Http, Response};
use test_support::{enc, NbiClient, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const TOKEN: &str = "portal-test-token-0123";
const INST: &str = "Device.X_VRGW-ORG_Virtualization.Instance.";

/// A browser: cookies kept per name.
struct Browser {
    base: String,
    cookies: HashMap<String, String>,
    set_cookie_lines: Vec<String>,
}

impl Browser {
    fn new(acs: &AcsProcess) -> Browser {
        Browser {
            base: format!("http://{}", acs.portal.expect("portal address")),
            cookies: HashMap::new(),
            set_cookie_lines: Vec::new(),
        }
    }

    async fn req(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Response {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let body = form.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
        let r = Http::new()
            .send(
                Method::from_bytes(method.as_bytes()).expect("method"),
                &format!("{}{path}", self.base),
                &[("cookie", &cookie), ("content-type", "application/x-www-form-urlencoded")],
                body,
            )
            .await;
        for v in r.headers.get_all("set-cookie") {
            let line = v.to_str().expect("ascii").to_string();
            let (kv, _) = line.split_once(';').unwrap_or((&line, ""));
            let (k, val) = kv.split_once('=').expect("name=value");
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
            self.set_cookie_lines.push(line);
        }
        r
    }

    fn csrf(page: &str) -> String {
        let at = page.find("name=csrf value=\"").expect("a CSRF field") + "name=csrf value=\"".len();
        page[at..at + page[at..].find('"').expect("end")].to_string()
    }

    async fn login(&mut self, user: &str, pass: &str) -> Response {
        let page = self.req("GET", "/login", &[]).await;
        let csrf = Self::csrf(&page.text());
        self.req("POST", "/login", &[("csrf", &csrf), ("username", user), ("password", pass)]).await
    }
}

/// A host whose instances `n` serve `subscriber`, each with a factory vRGW mounted.
fn add_instance(sim: &SimCpe, subscriber: &str) -> u32 {
    sim.with_model_mut(|m| {
        let n = m.root_mut().add_object_internal(INST).expect("instance");
        m.root_mut().set_internal(&format!("{INST}{n}.Subscriber"), Value::String(subscriber.into())).expect("set");
        m.mount(&format!("{INST}{n}.Device."), Box::new(datamodel::factory::vrgw(subscriber)));
        n
    })
}

fn value(sim: &SimCpe, path: &str) -> String {
    acs::sim::values(sim, path).first().map(|p| p.value.to_string()).unwrap_or_default()
}

async fn follow_apply(b: &mut Browser, location: &str) -> String {
    for _ in 0..100 {
        let r = b.req("GET", location, &[]).await;
        if !r.text().contains("http-equiv=refresh") {
            return r.text();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the apply never finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_change_their_own_vrgw_and_nothing_else() {
    let dir = TempDir::new("acs-portal");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).portal("127.0.0.1:0").start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("portal-host").await;
    let alice = add_instance(&sim, "alice");
    let bob = add_instance(&sim, "bob");
    sim.session(&[]).await.expect("first session");
    let dev = sim.device_id();
    // The OSS reads the host: the ACS now knows both vRGWs.
    let read_host = format!("/devices/{}/tasks?connection_request&timeout=10000", enc(&dev));
    let read_instances = json!({"name": "getParameterValues", "parameterNames": [INST]});
    let (s, _) = oss.call(Method::POST, &read_host, Some(read_instances.clone())).await;
    assert_eq!(s, 200);
    // The OSS places each subscriber on their instance: the ACS's record of whose vRGW is where
    // (what the host reports is not taken for it).
    let place = |n: u32, who: &str| json!({"name": "setParameterValues", "parameterValues": [[format!("{INST}{n}.Subscriber"), who]]});
    assert_eq!(oss.call(Method::POST, &read_host, Some(place(alice, "alice"))).await.0, 200);
    assert_eq!(oss.call(Method::POST, &read_host, Some(place(bob, "bob"))).await.0, 200);

    // Accounts through the NBI.
    assert_eq!(oss.call(Method::PUT, "/subscribers/alice", Some(json!({"password": "alice-password"}))).await.0, 201);
    assert_eq!(oss.call(Method::PUT, "/subscribers/bob", Some(json!({"password": "bob-password"}))).await.0, 201);
    assert_eq!(oss.call(Method::PUT, "/subscribers/carol", Some(json!({"password": "short"}))).await.0, 400);
    let (_, list) = oss.call(Method::GET, "/subscribers", None).await;
    assert_eq!(list[0]["_id"], "alice");
    assert_eq!(list[0]["vrgw"], json!({"device": dev, "instance": alice}));
    assert!(!list.to_string().contains("argon2"), "no password hashes through the NBI");

    // Log-in: a form from elsewhere (no log-in token) is refused; wrong passwords are limited.
    let mut b = Browser::new(&acs);
    let r = b.req("POST", "/login", &[("username", "alice"), ("password", "alice-password")]).await;
    assert_eq!(r.status, 403);
    let mut bob_b = Browser::new(&acs);
    for _ in 0..5 {
        assert_eq!(bob_b.login("bob", "wrong-password").await.status, 401);
    }
    let r = bob_b.login("bob", "bob-password").await;
    assert_eq!(r.status, 429, "the right password after 5 failures is still refused");
    assert!(r.text().contains("Too many failed attempts"));
    assert_eq!(b.login("nobody", "whatever-password").await.status, 401);

    let r = b.login("alice", "alice-password").await;
    assert_eq!(r.status, 303);
    let session_line =
        b.set_cookie_lines.iter().rev().find(|l| l.starts_with("__Host-vrgw_portal=")).expect("session cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session_line.contains(attr), "{attr} missing: {session_line}");
    }
    let page = b.req("GET", "/lan", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("value=\"192.168.1.100\""), "alice's current pool is shown");
    assert!(page.text().contains("<label for=pool_min>"), "labelled fields");
    assert!(page.text().contains("<form method=post action=/lan "));
    assert!(b.req("GET", "/wifi", &[]).await.text().contains("<form method=post action=/wifi "));
    let csrf = Browser::csrf(&page.text());
    let tasks_before = oss.call(Method::GET, "/tasks", None).await.1.as_array().map_or(0, Vec::len);
    let good = |min: &'static str, max: &'static str| {
        vec![
            ("lan_address", "192.168.1.1"),
            ("lan_mask", "255.255.255.0"),
            ("pool_min", min),
            ("pool_max", max),
            ("lease_hours", "12"),
            ("dns_servers", ""),
            ("static_leases", "02:00:00:00:00:07 192.168.1.7"),
        ]
    };

    // Without the session's CSRF token: refused, nothing changes.
    let r = b.req("POST", "/lan", &good("192.168.1.50", "192.168.1.59")).await;
    assert_eq!(r.status, 403);
    // Invalid: refused with the message next to the field and what was typed kept.
    let mut bad = good("192.168.1.50", "10.1.1.1");
    bad.push(("csrf", &csrf));
    let r = b.req("POST", "/lan", &bad).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("<form method=post action=/lan "), "the page posts to itself again");
    assert!(r.text().contains("value=\"10.1.1.1\""));
    assert!(
        r.text()
            .contains("id=\"pool_max-err\">Last address handed out 10.1.1.1 is outside the LAN subnet 192.168.1.0/24."),
        "{}",
        r.text()
    );
    let tasks_after = oss.call(Method::GET, "/tasks", None).await.1.as_array().map_or(0, Vec::len);
    assert_eq!(tasks_before, tasks_after, "a refused form queues nothing");
    assert_eq!(value(&sim, &format!("{INST}{alice}.Device.DHCPv4.Server.Pool.1.MaxAddress")), "192.168.1.199");

    // Valid: saved, applied to alice's vRGW through the host, followed to the result.
    let mut ok = good("192.168.1.50", "192.168.1.59");
    ok.push(("csrf", &csrf));
    let r = b.req("POST", "/lan", &ok).await;
    assert_eq!(r.status, 303);
    let location = r.headers.get("location").and_then(|l| l.to_str().ok()).expect("location").to_string();
    let done = follow_apply(&mut b, &location).await;
    assert!(done.contains("Done: your gateway uses the new settings."), "{done}");
    assert_eq!(value(&sim, &format!("{INST}{alice}.Device.DHCPv4.Server.Pool.1.MinAddress")), "192.168.1.50");
    assert_eq!(
        value(&sim, &format!("{INST}{alice}.Device.DHCPv4.Server.Pool.1.StaticAddress.1.Chaddr")),
        "02:00:00:00:00:07"
    );
    assert_eq!(
        value(&sim, &format!("{INST}{bob}.Device.DHCPv4.Server.Pool.1.MinAddress")),
        "192.168.1.100",
        "bob's vRGW untouched"
    );

    // Another subscriber's ids get nothing: bob's instance named in the request is ignored, and
    // bob's tasks are not shown.
    let page = b.req("GET", &format!("/lan?subscriber=bob&instance={bob}"), &[]).await;
    assert!(page.text().contains("value=\"192.168.1.50\""), "still alice's own values");
    let (_, t) = oss.call(Method::POST, &format!("/devices/{}/tasks", enc(&dev)),
        Some(json!({"name": "setParameterValues", "profile": true, "parameterValues": [[format!("{INST}{bob}.Device.WiFi.SSID.1.SSID"), "bob-net", "xsd:string"]]}))).await;
    let r = b
        .req(
            "GET",
            &format!(
                "/applying?tasks={}",
                t["_id"].as_i64().or_else(|| t["_id"].as_str().and_then(|s| s.parse().ok())).expect("task id")
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("bob"));

    // A vRGW that refuses the settings: the page says so in words.
    let wifi = b.req("GET", "/wifi", &[]).await;
    let csrf2 = Browser::csrf(&wifi.text());
    assert_eq!(csrf2, csrf);
    let r = b
        .req(
            "POST",
            "/wifi",
            &[
                ("csrf", &csrf),
                ("ssid", "alice-net"),
                ("wifi_enable", "on"),
                ("security", "WPA2-Personal"),
                ("passphrase", "alice-wifi-pass"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let location = r.headers.get("location").and_then(|l| l.to_str().ok()).expect("location").to_string();
    let done = follow_apply(&mut b, &location).await;
    assert!(done.contains("Done"), "{done}");
    assert_eq!(value(&sim, &format!("{INST}{alice}.Device.WiFi.SSID.1.SSID")), "alice-net");

    // A replacement instance for alice (the old one deleted, a new one added, and the OSS places
    // her there): her profile is applied to it.
    sim.with_model_mut(|m| m.root_mut().delete_object_internal(&format!("{INST}{alice}.")).expect("delete"));
    let again = add_instance(&sim, "alice");
    let (s, _) = oss.call(Method::POST, &read_host, Some(read_instances)).await;
    assert_eq!(s, 200);
    assert_eq!(oss.call(Method::POST, &read_host, Some(place(again, "alice"))).await.0, 200);
    for _ in 0..100 {
        if value(&sim, &format!("{INST}{again}.Device.WiFi.SSID.1.SSID")) == "alice-net" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(value(&sim, &format!("{INST}{again}.Device.WiFi.SSID.1.SSID")), "alice-net");
    assert_eq!(value(&sim, &format!("{INST}{again}.Device.DHCPv4.Server.Pool.1.MaxAddress")), "192.168.1.59");

    // Log-out ends the session: its cookie no longer opens a page.
    let token = b.cookies.get("__Host-vrgw_portal").cloned().expect("session");
    let r = b.req("POST", "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    b.cookies.insert("__Host-vrgw_portal".into(), token);
    let r = b.req("GET", "/lan", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.headers.get("location").and_then(|l| l.to_str().ok()), Some("/login"));
}

/// A subscriber whose gateway is a physical TR-181 gateway (the OSS names it): the same pages,
/// the settings applied to that device's own `Device.`, its status shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_gateway_is_physical_uses_the_same_pages() {
    let dir = TempDir::new("acs-portal-gw");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).portal("127.0.0.1:0").start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let gw = acs.sim_gateway("carol-gw").await;
    gw.session(&[]).await.expect("the gateway's BOOTSTRAP");
    let dev = gw.device_id();
    // The account first names nothing; bad gateways are refused, nothing kept.
    assert_eq!(oss.call(Method::PUT, "/subscribers/carol", Some(json!({"password": "carol-password"}))).await.0, 201);
    for (body, status) in [
        (json!({"gateway": "00A0B1-SimCPE-carol-gw"}), 400), // '-' in a part is written %2D
        (json!({"gateway": 7}), 400),
        (json!({"gateway": dev, "colour": "red"}), 400),
    ] {
        let (s, v) = oss.call(Method::PUT, "/subscribers/carol", Some(body)).await;
        assert_eq!(s, status, "{v}");
    }
    assert_eq!(oss.call(Method::PUT, "/subscribers/dave", Some(json!({"gateway": dev}))).await.0, 400, "no password");
    let (_, list) = oss.call(Method::GET, "/subscribers", None).await;
    assert_eq!((list[0]["gateway"].clone(), list.as_array().map(Vec::len)), (json!(null), Some(1)), "{list}");
    assert_eq!(oss.call(Method::PUT, "/subscribers/carol", Some(json!({"gateway": dev}))).await.0, 200);
    let (_, list) = oss.call(Method::GET, "/subscribers", None).await;
    assert_eq!((list[0]["gateway"].clone(), list[0]["vrgw"].clone()), (json!(dev), json!(null)), "{list}");
    // What the gateway holds now, as the page shows it.
    let read = format!("/devices/{}/tasks?connection_request&timeout=10000", enc(&dev));
    let (s, _) = oss
        .call(Method::POST, &read, Some(json!({"name": "getParameterValues", "parameterNames": ["Device.DHCPv4."]})))
        .await;
    assert_eq!(s, 200);

    let mut b = Browser::new(&acs);
    assert_eq!(b.login("carol", "carol-password").await.status, 303);
    let page = b.req("GET", "/lan", &[]).await;
    assert!(page.text().contains("value=\"192.168.1.100\""), "the gateway's current pool: {}", page.text());
    let csrf = Browser::csrf(&page.text());
    let r = b
        .req(
            "POST",
            "/lan",
            &[
                ("csrf", &csrf),
                ("lan_address", "192.168.1.1"),
                ("lan_mask", "255.255.255.0"),
                ("pool_min", "192.168.1.20"),
                ("pool_max", "192.168.1.29"),
                ("lease_hours", "12"),
                ("dns_servers", ""),
                ("static_leases", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.headers.get("location").and_then(|l| l.to_str().ok()).expect("location").to_string();
    let done = follow_apply(&mut b, &location).await;
    assert!(done.contains("Done: your gateway uses the new settings."), "{done}");
    assert_eq!(value(&gw, "Device.DHCPv4.Server.Pool.1.MinAddress"), "192.168.1.20");
    assert_eq!(value(&gw, "Device.DHCPv4.Server.Pool.1.MaxAddress"), "192.168.1.29");
    assert_eq!(value(&gw, "Device.DHCPv4.Server.Pool.1.LeaseTime"), "43200");
    let status = b.req("GET", "/", &[]).await;
    assert!(status.text().contains("<td>running</td>"), "{}", status.text());
    assert!(status.text().contains("<td>192.168.1.1</td>"), "{}", status.text());

    // A factory-reset gateway gets the subscriber's settings again at its BOOTSTRAP.
    let (s, _) = oss.call(Method::POST, &read, Some(json!({"name": "factoryReset"}))).await;
    assert_eq!(s, 200);
    for _ in 0..100 {
        if value(&gw, "Device.DHCPv4.Server.Pool.1.MinAddress") == "192.168.1.20" {
            break;
        }
        gw.session(&[]).await.expect("a session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(value(&gw, "Device.DHCPv4.Server.Pool.1.MinAddress"), "192.168.1.20");
}

/// A subscriber whose gateway is a TR-098 gateway (`InternetGatewayDevice.`): the same pages,
/// its current values shown under their TR-181 labels, the settings applied under TR-098's names
/// (the WPA2 passphrase to `PreSharedKey.1.KeyPassphrase`, the mode as `BeaconType` 11i), and
/// what TR-098 has no name for (WPA3, fixed addresses) refused on the page with nothing saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_gateway_speaks_tr098_uses_the_same_pages() {
    let dir = TempDir::new("acs-portal-098");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).portal("127.0.0.1:0").start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let gw = acs.sim_tr098("erin-gw").await;
    gw.session(&[]).await.expect("the gateway's BOOTSTRAP");
    let dev = gw.device_id();
    let body = json!({"password": "erin-password", "gateway": dev});
    assert_eq!(oss.call(Method::PUT, "/subscribers/erin", Some(body)).await.0, 201);
    let read = format!("/devices/{}/tasks?connection_request&timeout=10000", enc(&dev));
    let lan = "InternetGatewayDevice.LANDevice.1.";
    let (s, _) =
        oss.call(Method::POST, &read, Some(json!({"name": "getParameterValues", "parameterNames": [lan]}))).await;
    assert_eq!(s, 200);
    let hcm = format!("{lan}LANHostConfigManagement.");
    let wlan = format!("{lan}WLANConfiguration.1.");
    let pool_before = value(&gw, &format!("{hcm}MinAddress"));
    assert!(!pool_before.is_empty());

    let mut b = Browser::new(&acs);
    assert_eq!(b.login("erin", "erin-password").await.status, 303);
    let page = b.req("GET", "/lan", &[]).await;
    assert!(page.text().contains(&format!("value=\"{pool_before}\"")), "the gateway's pool: {}", page.text());
    let csrf = Browser::csrf(&page.text());
    let lan_form = |leases: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("lan_address", value(&gw, &format!("{hcm}IPInterface.1.IPInterfaceIPAddress"))),
            ("lan_mask", "255.255.255.0".to_string()),
            ("pool_min", "192.168.1.20".to_string()),
            ("pool_max", "192.168.1.29".to_string()),
            ("lease_hours", "12".to_string()),
            ("dns_servers", String::new()),
            ("static_leases", leases.to_string()),
        ]
    };
    // Fixed addresses: TR-098 has no name for them here; refused, nothing saved or sent.
    let form = lan_form("02:00:00:00:00:01 192.168.1.21");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.req("POST", "/lan", &form).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("takes no fixed addresses"), "{}", r.text());
    assert_eq!(value(&gw, &format!("{hcm}MinAddress")), pool_before);
    let (_, subs) = oss.call(Method::GET, "/subscribers", None).await;
    assert_eq!(subs[0]["profile"].get("values"), None, "nothing saved: {subs}");

    let form = lan_form("");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.req("POST", "/lan", &form).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.headers.get("location").and_then(|l| l.to_str().ok()).expect("location").to_string();
    let done = follow_apply(&mut b, &location).await;
    assert!(done.contains("Done: your gateway uses the new settings."), "{done}");
    assert_eq!(value(&gw, &format!("{hcm}MinAddress")), "192.168.1.20");
    assert_eq!(value(&gw, &format!("{hcm}MaxAddress")), "192.168.1.29");
    assert_eq!(value(&gw, &format!("{hcm}DHCPLeaseTime")), "43200");

    // Wi-Fi: WPA3 refused; WPA2 with a passphrase goes under TR-098's names.
    let page = b.req("GET", "/wifi", &[]).await;
    let csrf = Browser::csrf(&page.text());
    let wifi = |mode: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("ssid", "erin-home".to_string()),
            ("wifi_enable", "on".to_string()),
            ("security", mode.to_string()),
            ("passphrase", "correct horse battery".to_string()),
        ]
    };
    let form = wifi("WPA3-Personal");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.req("POST", "/wifi", &form).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("offers WPA2 or an open network, not WPA3-Personal"), "{}", r.text());
    assert!(!r.text().contains("correct horse battery"), "the passphrase is not echoed");
    assert_ne!(value(&gw, &format!("{wlan}SSID")), "erin-home");
    let form = wifi("WPA2-Personal");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.req("POST", "/wifi", &form).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.headers.get("location").and_then(|l| l.to_str().ok()).expect("location").to_string();
    let done = follow_apply(&mut b, &location).await;
    assert!(done.contains("Done: your gateway uses the new settings."), "{done}");
    assert_eq!(value(&gw, &format!("{wlan}SSID")), "erin-home");
    assert_eq!(value(&gw, &format!("{wlan}BeaconType")), "11i");
    assert_eq!(value(&gw, &format!("{wlan}IEEE11iAuthenticationMode")), "PSKAuthentication");
    let secret = gw.with_model_mut(|m| m.root().value(&format!("{wlan}PreSharedKey.1.KeyPassphrase")));
    assert_eq!(secret, Some(Value::String("correct horse battery".into())));
    // The page shows the mode back under its TR-181 label.
    let page = b.req("GET", "/wifi", &[]).await;
    assert!(page.text().contains("value=\"erin-home\""), "{}", page.text());
    assert!(page.text().contains("<option value=\"WPA2-Personal\" selected"), "{}", page.text());
}

/// Attack: a host that reports another host's subscriber on an instance of its own gets nothing
/// of that subscriber (no profile, no Wi-Fi passphrase), and the subscriber's vRGW stays where the
/// ACS placed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_claiming_another_hosts_subscriber_gets_nothing_of_theirs() {
    let dir = TempDir::new("acs-portal-claim");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).portal("127.0.0.1:0").start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let (host, liar) = (acs.sim("claim-host").await, acs.sim("claim-liar").await);
    let real = add_instance(&host, "alice");
    let claimed = add_instance(&liar, "alice");
    let read = json!({"name": "getParameterValues", "parameterNames": [INST]});
    let tasks_of = |dev: &str| format!("/devices/{}/tasks?connection_request&timeout=10000", enc(dev));
    for sim in [&host, &liar] {
        sim.session(&[]).await.expect("first session");
        assert_eq!(oss.call(Method::POST, &tasks_of(&sim.device_id()), Some(read.clone())).await.0, 200);
    }
    let placed =
        json!({"name": "setParameterValues", "parameterValues": [[format!("{INST}{real}.Subscriber"), "alice"]]});
    assert_eq!(oss.call(Method::POST, &tasks_of(&host.device_id()), Some(placed)).await.0, 200);
    assert_eq!(oss.call(Method::PUT, "/subscribers/alice", Some(json!({"password": "alice-password"}))).await.0, 201);

    // Alice sets her Wi-Fi: it reaches her vRGW.
    let mut b = Browser::new(&acs);
    assert_eq!(b.login("alice", "alice-password").await.status, 303);
    let csrf = Browser::csrf(&b.req("GET", "/wifi", &[]).await.text());
    let form = [
        ("csrf", csrf.as_str()),
        ("ssid", "alice-net"),
        ("wifi_enable", "on"),
        ("security", "WPA2-Personal"),
        ("passphrase", "alice-wifi-pass"),
    ];
    let r = b.req("POST", "/wifi", &form).await;
    assert_eq!(r.status, 303);
    let location = r.headers.get("location").and_then(|l| l.to_str().ok()).expect("location").to_string();
    assert!(follow_apply(&mut b, &location).await.contains("Done"));
    assert_eq!(value(&host, &format!("{INST}{real}.Device.WiFi.SSID.1.SSID")), "alice-net");

    // The liar informs and is read again, still claiming her: nothing of hers is queued for it.
    liar.session(&["2 PERIODIC"]).await.expect("session");
    assert_eq!(oss.call(Method::POST, &tasks_of(&liar.device_id()), Some(read.clone())).await.0, 200);
    let (_, tasks) = oss
        .call(Method::GET, &format!("/tasks?query={}", enc(&json!({"device": liar.device_id()}).to_string())), None)
        .await;
    let tasks = tasks.as_array().expect("tasks").clone();
    assert!(tasks.iter().all(|t| t["name"] == json!("getParameterValues")), "only the OSS's reads: {tasks:?}");
    assert!(!serde_json::to_string(&tasks).expect("json").contains("alice-wifi-pass"));
    assert_ne!(value(&liar, &format!("{INST}{claimed}.Device.WiFi.SSID.1.SSID")), "alice-net");
    assert_ne!(
        value(&liar, &format!("{INST}{claimed}.Device.WiFi.AccessPoint.1.Security.KeyPassphrase")),
        "alice-wifi-pass"
    );
    let (_, list) = oss.call(Method::GET, "/subscribers", None).await;
    assert_eq!(list[0]["vrgw"], json!({"device": host.device_id(), "instance": real}));
    // Her page still shows her own vRGW.
    assert!(b.req("GET", "/wifi", &[]).await.text().contains("value=\"alice-net\""));
    let log = acs.daemon.log();
    assert!(log.contains("a host reports a subscriber the ACS did not place there"), "{log}");
}

/// The address the log-in storm tests' ACS trusts as its reverse proxy.
const PROXY: [u8; 4] = [127, 0, 0, 2];

/// An ACS with the web form on, trusting [`PROXY`]'s `X-Forwarded-For`, with subscribers alice
/// and bob (no vRGW needed to log in).
async fn storm_acs(dir: &TempDir) -> AcsProcess {
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
        .config("[portal]\ntrusted_proxies = [\"127.0.0.2\"]\n")
        .portal("127.0.0.1:0")
        .start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    for (id, pass) in [("alice", "alice-password"), ("bob", "bob-password")] {
        let (s, _) = oss.call(Method::PUT, &format!("/subscribers/{id}"), Some(json!({"password": pass}))).await;
        assert_eq!(s, 201);
    }
    acs
}

/// What one log-in got: its status and `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
}

/// One log-in form posted from the loopback address `from` (the whole of 127.0.0.0/8 is this
/// host's), with a log-in token of the test's own and `headers` added.
async fn post_login(portal: SocketAddr, from: [u8; 4], user: &str, pass: &str, headers: &[(&str, &str)]) -> Answer {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("bind the client's address");
    let mut s = socket.connect(portal).await.expect("connect");
    let token = "storm-login-token-0123456789";
    let body = format!("csrf={token}&username={}&password={}", enc(user), enc(pass));
    let mut req = format!(
        "POST /login HTTP/1.1\r\nHost: portal\r\nConnection: close\r\nCookie: __Host-vrgw_login={token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await.expect("answered").expect("read");
    let text = String::from_utf8_lossy(&out);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
    let retry_after = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("retry-after").then(|| v.trim().to_string())
    });
    Answer { status, retry_after }
}

/// Every answer to `n` log-ins posted at once by `login(i)`.
async fn storm<F, Fut>(n: usize, login: F) -> Vec<Answer>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        set.spawn(login(i));
    }
    let mut out = Vec::new();
    while let Some(a) = set.join_next().await {
        out.push(a.expect("join"));
    }
    out
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_storm_is_refused_before_hashing_and_another_account_still_logs_in() {
    let dir = TempDir::new("acs-portal-storm");
    let acs = storm_acs(&dir).await;
    let portal = acs.portal.expect("portal address");

    // 200 wrong passwords for alice at once, from one client. Each attempt is counted before its
    // hash, so only the first five are checked (401); the other 195 are refused unhashed (429).
    let answers = storm(200, |_| post_login(portal, [127, 0, 0, 1], "alice", "wrong-password", &[])).await;
    assert_eq!((count(&answers, 401), count(&answers, 429)), (5, 195), "{answers:?}");
    // Alice herself now waits out the window; bob, from the same address, logs in.
    assert_eq!(post_login(portal, [127, 0, 0, 1], "alice", "alice-password", &[]).await.status, 429);
    assert_eq!(post_login(portal, [127, 0, 0, 1], "bob", "bob-password", &[]).await.status, 303);

    // A storm the counters cannot stop (every attempt a new id from a new client behind the
    // trusted proxy) meets the hash cap: past the cores' hashes and their waiting line, log-ins
    // are answered 503 with Retry-After at once instead of queueing.
    let answers = storm(100, |i| {
        let (user, client) = (format!("nobody-{i}"), format!("198.51.{}.{}", i / 200, i % 200 + 1));
        async move { post_login(portal, PROXY, &user, "wrong-password", &[("X-Forwarded-For", &client)]).await }
    })
    .await;
    let (checked, busy) = (count(&answers, 401), count(&answers, 503));
    assert_eq!(checked + busy, 100, "{answers:?}");
    assert!(checked >= 1 && busy >= 1, "{checked} checked, {busy} turned away: {answers:?}");
    assert!(answers.iter().filter(|a| a.status == 503).all(|a| a.retry_after.as_deref() == Some("2")), "{answers:?}");
    // Those turned away were not counted as failures; the right password still works after it.
    assert_eq!(
        post_login(portal, PROXY, "bob", "bob-password", &[("X-Forwarded-For", "198.51.100.77")]).await.status,
        303
    );
    assert!(acs.daemon.log().contains("every hash slot taken"), "the ACS logs the turned-away log-ins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_for_does_not_dodge_the_client_counter() {
    let dir = TempDir::new("acs-portal-xff");
    let acs = storm_acs(&dir).await;
    let portal = acs.portal.expect("portal address");

    // Not from the trusted proxy: every attempt names another client in X-Forwarded-For (and
    // another id, so the id's own limit of five never applies), yet all count against the
    // sender's address: twenty are checked, then it is refused.
    for i in 0..25 {
        let forged = format!("203.0.113.{}", i + 1);
        let a = post_login(
            portal,
            [127, 0, 0, 3],
            &format!("guess-{i}"),
            "wrong-password",
            &[("X-Forwarded-For", &forged)],
        )
        .await;
        assert_eq!(a.status, if i < 20 { 401 } else { 429 }, "attempt {i}");
    }
    assert_eq!(post_login(portal, [127, 0, 0, 3], "bob", "bob-password", &[]).await.status, 429);
    // Another address is not affected.
    assert_eq!(post_login(portal, [127, 0, 0, 4], "bob", "bob-password", &[]).await.status, 303);

    // From the trusted proxy, the header names the client: 198.51.100.1 uses up its twenty...
    let via = |client: &'static str| [("X-Forwarded-For", client)];
    for i in 0..21 {
        let a = post_login(portal, PROXY, &format!("try-{i}"), "wrong-password", &via("198.51.100.1")).await;
        assert_eq!(a.status, if i < 20 { 401 } else { 429 }, "attempt {i} through the proxy");
    }
    assert_eq!(post_login(portal, PROXY, "bob", "bob-password", &via("198.51.100.1")).await.status, 429);
    // ... while another client behind the same proxy logs in, even one that wrote the locked
    // address in front of the proxy's own entry.
    assert_eq!(post_login(portal, PROXY, "bob", "bob-password", &via("198.51.100.2")).await.status, 303);
    assert_eq!(post_login(portal, PROXY, "bob", "bob-password", &via("198.51.100.1, 198.51.100.3")).await.status, 303);
}
