//! The customer web form over HTTP against the real `acs` binary and a simulated host agent whose
//! data model holds two subscribers' vRGWs (each a factory vRGW tree mounted at its instance):
//! accounts through the NBI, log-in with CSRF and rate limits, cookies, validation that changes
//! nothing, a change applied to the subscriber's own vRGW only, another subscriber's ids giving
//! nothing, and the profile applied again to a replacement instance.

use std::collections::HashMap;

use acs::sim::SimCpe;
use cwmp::Value;
use hyper::Method;
use serde_json::json;
use test_support::acs::{AcsCommand, AcsProcess};
use test_support::http::{Http, Response};
use test_support::{enc, NbiClient, TempDir};

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

    // A replacement instance for alice (the old one deleted, a new one added): her profile is
    // applied to it once the ACS sees it.
    sim.with_model_mut(|m| m.root_mut().delete_object_internal(&format!("{INST}{alice}.")).expect("delete"));
    let again = add_instance(&sim, "alice");
    let (s, _) = oss.call(Method::POST, &read_host, Some(read_instances)).await;
    assert_eq!(s, 200);
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
