//! A TR-098 gateway (`InternetGatewayDevice.`: the simulated CPE's TR-098 model, as a real
//! gateway reports itself) managed through the `acs` binary the way GenieACS's API reference
//! manages one: it bootstraps, presets apply on "0 BOOTSTRAP" (the whole tree read into the
//! parameter cache, the inform interval set), the reference's query by WAN MAC address finds it,
//! projections, then tasks with a connection request: setParameterValues of the Wi-Fi SSID and
//! key, refreshObject of a subtree, getParameterValues, addObject of a PPP connection and a
//! download by file name.

use bytes::Bytes;
use cwmp::Value as V;
use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::{AcsCommand, CR};
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";
const MS: &str = "InternetGatewayDevice.ManagementServer.";
const WLAN: &str = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.";
const WAN_IP: &str = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.";

/// The device record's value at `path` (GenieACS's shape: nested objects, `_value` at a leaf).
fn cached<'a>(device: &'a Value, path: &str) -> &'a Value {
    &path.split('.').fold(device, |d, seg| &d[seg])["_value"]
}

/// The value the simulated gateway holds at `path` (hidden ones included).
fn held(sim: &acs::sim::SimCpe, path: &str) -> Option<V> {
    sim.with_model(|m| m.root().value(path))
}

/// The one device `query` finds, with `projection` if given.
async fn one_device(oss: &NbiClient<'_>, query: Value, projection: Option<&str>) -> Value {
    let mut path = format!("/devices?query={}", enc(&query.to_string()));
    if let Some(p) = projection {
        path.push_str(&format!("&projection={p}"));
    }
    let (s, devices) = oss.call(Method::GET, &path, None).await;
    assert_eq!(s, 200, "{devices}");
    let list = devices.as_array().unwrap_or_else(|| panic!("a list: {devices}"));
    assert_eq!(list.len(), 1, "{query} finds one device: {devices}");
    list[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tr098_gateway_is_cached_queried_provisioned_and_upgraded() {
    let dir = TempDir::new("acs-tr098");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);

    // Presets on "0 BOOTSTRAP": read the whole tree (what GenieACS's bootstrap provision does),
    // and set the inform interval.
    let refresh = json!({"precondition": {"_deviceId._ProductClass": "SimCPE"}, "events": {"0 BOOTSTRAP": true},
        "configurations": [{"type": "refresh", "names": ["InternetGatewayDevice."]}]});
    assert_eq!(oss.call(Method::PUT, "/presets/bootstrap", Some(refresh)).await.0, 200);
    let interval = json!({"precondition": {"_deviceId._ProductClass": "SimCPE"}, "events": {"0 BOOTSTRAP": true},
        "configurations": [{"type": "value", "name": format!("{MS}PeriodicInformInterval"), "value": 300}]});
    assert_eq!(oss.call(Method::PUT, "/presets/inform-interval", Some(interval)).await.0, 200);

    let sim = acs.sim_tr098("gw-098-1").await;
    let id = sim.device_id();
    assert_eq!(held(&sim, &format!("{MS}PeriodicInformInterval")), Some(V::UnsignedInt(3600)), "the factory's");
    sim.session(&[]).await.expect("the bootstrap session");

    // The preset applied on the device, and the ACS gave it connection-request credentials of
    // its own at InternetGatewayDevice.ManagementServer.
    assert_eq!(held(&sim, &format!("{MS}PeriodicInformInterval")), Some(V::UnsignedInt(300)));
    let (user, pass) = sim.cr_credentials();
    assert!(!user.is_empty() && pass.len() >= 16, "{user:?} {pass:?}");
    assert_ne!((user.as_str(), pass.as_str()), CR, "not the factory credentials");

    // GenieACS's api-reference example: the device by its WAN MAC address, in the cache from
    // the bootstrap's read of the tree.
    let Some(V::String(mac)) = held(&sim, &format!("{WAN_IP}MACAddress")) else { panic!("a WAN MAC address") };
    let device = one_device(&oss, json!({format!("{WAN_IP}MACAddress"): mac}), None).await;
    assert_eq!(device["_id"], json!(id));
    let other = json!({format!("{WAN_IP}MACAddress"): "00:a0:b1:00:00:00"}).to_string();
    let (s, none) = oss.call(Method::GET, &format!("/devices?query={}", enc(&other)), None).await;
    assert_eq!((s, none), (200, json!([])), "another MAC address finds no device");
    // The Inform's parameters, as a TR-098 gateway sends them.
    let Some(V::String(wan_ip)) = held(&sim, &format!("{WAN_IP}ExternalIPAddress")) else { panic!("a WAN address") };
    for (path, want) in [
        (
            "InternetGatewayDevice.DeviceSummary",
            json!(held(&sim, "InternetGatewayDevice.DeviceSummary").map(|v| v.to_lexical().into_owned())),
        ),
        ("InternetGatewayDevice.DeviceInfo.HardwareVersion", json!("SGW-098 rev.B")),
        ("InternetGatewayDevice.DeviceInfo.ProvisioningCode", json!("FACTORY")),
        ("InternetGatewayDevice.DeviceInfo.SerialNumber", json!("gw-098-1")),
        ("InternetGatewayDevice.LANDevice.1.Hosts.Host.1.HostName", json!("laptop")),
        (&format!("{WAN_IP}ExternalIPAddress"), json!(wan_ip)),
    ] {
        assert_eq!(cached(&device, path), &want, "{path}");
    }
    assert!(cached(&device, "InternetGatewayDevice.DeviceSummary")
        .as_str()
        .is_some_and(|s| s.starts_with("InternetGatewayDevice:1.")));

    // A projection: only the two parameters (and _id).
    let projection = "InternetGatewayDevice.DeviceInfo.ModelName,InternetGatewayDevice.DeviceInfo.Manufacturer";
    let d = one_device(&oss, json!({"_id": id}), Some(projection)).await;
    let keys: Vec<&String> = d.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    assert_eq!(keys, ["InternetGatewayDevice", "_id"], "{d}");
    assert_eq!(
        d["InternetGatewayDevice"].as_object().map(|o| o.keys().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["DeviceInfo"])
    );
    assert_eq!(cached(&d, "InternetGatewayDevice.DeviceInfo.ModelName"), &json!("SimGW-098"));
    assert_eq!(cached(&d, "InternetGatewayDevice.DeviceInfo.Manufacturer"), &json!("vRGW Project"));

    // setParameterValues of the SSID and the pre-shared key, through a connection request
    // (Digest with the credentials the ACS set).
    let psk = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let (s, task) = oss
        .task(
            &id,
            json!({"name": "setParameterValues", "parameterValues": [
                [format!("{WLAN}SSID"), "home-net"], [format!("{WLAN}PreSharedKey.1.PreSharedKey"), psk]]}),
        )
        .await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    assert_eq!(held(&sim, &format!("{WLAN}SSID")), Some(V::String("home-net".into())));
    assert_eq!(held(&sim, &format!("{WLAN}PreSharedKey.1.PreSharedKey")), Some(V::String(psk.into())));
    let d = one_device(&oss, json!({"_id": id}), Some(&format!("{WLAN}SSID"))).await;
    assert_eq!(cached(&d, &format!("{WLAN}SSID")), &json!("home-net"));
    // Queries see the new value.
    one_device(&oss, json!({format!("{WLAN}SSID"): "home-net"}), Some("_id")).await;

    // refreshObject of a subtree: a host that joined the LAN since is read into the cache.
    sim.with_model_mut(|m| {
        let r = m.root_mut();
        let n = r.add_object_internal("InternetGatewayDevice.LANDevice.1.Hosts.Host.").expect("a host row");
        let host = format!("InternetGatewayDevice.LANDevice.1.Hosts.Host.{n}.");
        r.set_internal(&format!("{host}HostName"), V::String("phone".into())).expect("host name");
        r.set_internal(&format!("{host}MACAddress"), V::String("3c:22:fb:10:20:31".into())).expect("mac");
    });
    let (s, task) =
        oss.task(&id, json!({"name": "refreshObject", "objectName": "InternetGatewayDevice.LANDevice.1.Hosts"})).await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    let d = one_device(&oss, json!({"_id": id}), Some("InternetGatewayDevice.LANDevice.1.Hosts")).await;
    assert_eq!(cached(&d, "InternetGatewayDevice.LANDevice.1.Hosts.Host.2.HostName"), &json!("phone"), "{d}");
    assert_eq!(cached(&d, "InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries"), &json!(2), "{d}");

    // getParameterValues: the cache follows the device.
    let uptime = "InternetGatewayDevice.DeviceInfo.UpTime";
    sim.with_model_mut(|m| m.root_mut().set_internal(uptime, V::UnsignedInt(7200)).expect("uptime"));
    let (s, task) = oss.task(&id, json!({"name": "getParameterValues", "parameterNames": [uptime]})).await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    let d = one_device(&oss, json!({"_id": id}), Some(uptime)).await;
    assert_eq!(cached(&d, uptime), &json!(7200), "{d}");

    // addObject of a PPP connection beside the IP one.
    let cd = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.";
    let (s, task) = oss.task(&id, json!({"name": "addObject", "objectName": format!("{cd}WANPPPConnection")})).await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    assert_eq!(task["result"]["instance"], json!(1), "{task}");
    assert_eq!(held(&sim, &format!("{cd}WANPPPConnectionNumberOfEntries")), Some(V::UnsignedInt(1)));
    assert!(held(&sim, &format!("{cd}WANPPPConnection.1.Username")).is_some());

    // A download by file name: the gateway fetches the signed URL and reports TransferComplete.
    let meta =
        [("fileType", "1 Firmware Upgrade Image"), ("oui", "00A0B1"), ("productClass", "SimCPE"), ("version", "4.3.0")];
    let put =
        oss.send_bytes(Method::PUT, "/files/sgw-098-4.3.0.bin", &meta, Bytes::from_static(b"SGW-098 image")).await;
    assert_eq!(put.status, 200);
    let (s, task) = oss.task(&id, json!({"name": "download", "file": "sgw-098-4.3.0.bin"})).await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    assert_eq!(task["result"]["transferComplete"], json!(true), "{task}");
    assert_eq!(sim.downloaded.lock().map(|d| d.clone()).unwrap_or_default(), b"SGW-098 image");
}

/// GenieACS's API reference's task examples word for word (its request bodies and its
/// `?timeout=3000&connection_request` form) on a TR-098 gateway whose serial number holds a
/// character GenieACS escapes in device ids (`-` as `%2D`, so `%252D` in the URL): each answers
/// 200 with the task, and the gateway holds (and the ACS caches) what the task did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_references_task_examples_run_word_for_word_on_a_tr098_gateway() {
    let dir = TempDir::new("acs-tr098-examples");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim_tr098("SR552NA084-0003269").await;
    sim.session(&[]).await.expect("the bootstrap session");
    let id = sim.device_id();
    assert_eq!(id, "00A0B1-SimCPE-SR552NA084%2D0003269", "GenieACS's escaping of a serial number");
    let path = format!("/devices/{}/tasks?timeout=3000&connection_request", enc(&id));
    assert!(path.contains("SR552NA084%252D0003269"), "{path}");
    let device = id.as_str();
    let run = |body: &'static str| {
        let path = path.clone();
        let oss = &oss;
        async move {
            let task: Value = serde_json::from_str(body).expect("the reference's JSON");
            let r = oss.send(Method::POST, &path, Some(task.clone())).await;
            assert_eq!(r.status, 200, "{body} -> {}", r.json);
            assert_eq!((&r.json["name"], &r.json["device"]), (&task["name"], &json!(device)), "{}", r.json);
            r.json
        }
    };
    let record = || async {
        // The reference's query by `_id` (the id URL-encoded once more in the query string).
        let (s, devices) =
            oss.call(Method::GET, &format!("/devices/?query={}", enc(&json!({"_id": device}).to_string())), None).await;
        assert_eq!(s, 200, "{devices}");
        devices[0].clone()
    };
    let time = "InternetGatewayDevice.Time.";
    let cd = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.";

    // getParameterValues: the gateway's NTP server changed since the bootstrap; the record
    // holds the three values the gateway holds now.
    sim.with_model_mut(|m| {
        m.root_mut().set_internal(&format!("{time}NTPServer1"), V::String("ntp.example.net".into())).expect("ntp")
    });
    run(r#"{"name": "getParameterValues", "parameterNames": ["InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnectionNumberOfEntries", "InternetGatewayDevice.Time.NTPServer1", "InternetGatewayDevice.Time.Status"] }"#).await;
    let d = record().await;
    assert_eq!(cached(&d, &format!("{time}NTPServer1")), &json!("ntp.example.net"), "{d}");
    assert_eq!(cached(&d, &format!("{cd}1.WANIPConnectionNumberOfEntries")), &json!(1), "{d}");
    let Some(V::String(status)) = held(&sim, &format!("{time}Status")) else { panic!("a Time.Status") };
    assert_eq!(cached(&d, &format!("{time}Status")), &json!(status));

    // refreshObject: a connection device the gateway made since is read into the cache.
    let n = sim.with_model_mut(|m| m.root_mut().add_object_internal(cd).expect("a WANConnectionDevice"));
    run(r#"{"name": "refreshObject", "objectName": "InternetGatewayDevice.WANDevice.1.WANConnectionDevice"}"#).await;
    let d = record().await;
    assert_eq!(cached(&d, &format!("{cd}{n}.WANIPConnectionNumberOfEntries")), &json!(0), "{d}");

    // setParameterValues: one value, then several (JSON booleans and text, no types given).
    sim.with_model_mut(|m| {
        m.root_mut()
            .set_internal("InternetGatewayDevice.ManagementServer.UpgradesManaged", V::Boolean(true))
            .expect("set")
    });
    run(r#"{"name": "setParameterValues", "parameterValues": [["InternetGatewayDevice.ManagementServer.UpgradesManaged",false]]}"#).await;
    assert_eq!(held(&sim, &format!("{MS}UpgradesManaged")), Some(V::Boolean(false)));
    run(r#"{"name": "setParameterValues", "parameterValues": [["InternetGatewayDevice.ManagementServer.UpgradesManaged", false], ["InternetGatewayDevice.Time.Enable", true], ["InternetGatewayDevice.Time.NTPServer1", "pool.ntp.org"]]}"#).await;
    assert_eq!(held(&sim, &format!("{time}Enable")), Some(V::Boolean(true)));
    assert_eq!(held(&sim, &format!("{time}NTPServer1")), Some(V::String("pool.ntp.org".into())));
    assert_eq!(cached(&record().await, &format!("{time}NTPServer1")), &json!("pool.ntp.org"));

    // addObject, then deleteObject of the row it made (the reference deletes row 1).
    let task = run(r#"{"name":"addObject","objectName":"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection"}"#).await;
    assert_eq!(task["result"]["instance"], json!(1), "{task}");
    assert!(held(&sim, &format!("{cd}1.WANPPPConnection.1.Enable")).is_some());
    run(r#"{"name":"deleteObject","objectName":"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1"}"#).await;
    assert_eq!(held(&sim, &format!("{cd}1.WANPPPConnection.1.Enable")), None);
    assert_eq!(held(&sim, &format!("{cd}1.WANPPPConnectionNumberOfEntries")), Some(V::UnsignedInt(0)));

    // download by file name alone.
    let meta = [
        ("fileType", "3 Vendor Configuration File"),
        ("oui", "00A0B1"),
        ("productClass", "SimCPE"),
        ("version", "6.42"),
    ];
    let put = oss.send_bytes(Method::PUT, "/files/mipsbe-6-42-lite.xml", &meta, Bytes::from_static(b"<config/>")).await;
    assert_eq!(put.status, 200);
    let task = run(r#"{"name": "download", "file": "mipsbe-6-42-lite.xml"}"#).await;
    assert_eq!(task["result"]["transferComplete"], json!(true), "{task}");
    assert_eq!(sim.downloaded.lock().map(|d| d.clone()).unwrap_or_default(), b"<config/>");

    // reboot: the gateway's next session says "1 BOOT" ("M Reboot"), which the record keeps.
    assert!(record().await.get("_lastBoot").is_some(), "booted at its first session");
    let before = record().await["_lastBoot"].clone();
    run(r#"{"name": "reboot"}"#).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the next second
    sim.session(&[]).await.expect("the session after the reboot");
    assert_ne!(record().await["_lastBoot"], before, "a boot recorded after the reboot");

    // factoryReset: the gateway is back to its factory values and bootstraps again.
    run(r#"{"name": "factoryReset"}"#).await;
    sim.session(&[]).await.expect("the session after the reset");
    // The connection device made since the bootstrap is gone (its NTP server is the factory's
    // own pool.ntp.org, so that value tells nothing).
    assert_eq!(held(&sim, &format!("{cd}{n}.WANIPConnectionNumberOfEntries")), None, "factory values");
    assert!(held(&sim, &format!("{cd}1.WANIPConnectionNumberOfEntries")).is_some(), "the factory's own device");
    let (s, done) = oss
        .call(Method::GET, &format!("/tasks?query={}", enc(&json!({"device": id, "status": "done"}).to_string())), None)
        .await;
    assert_eq!((s, done.as_array().map(Vec::len)), (200, Some(9)), "{done}");
}

/// GenieACS's `provisions` task with its built-in provisions on a TR-098 gateway: a value, a
/// tag, an instance with its alias, a refresh, turned into requests from what the ACS holds of
/// the gateway; the same provisions again send nothing (the gateway meets them); a preset's
/// `instances` provision; a provision that is neither a built-in nor a script's name, or a
/// built-in's wrong arguments, refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisions_task_runs_the_built_in_provisions() {
    let dir = TempDir::new("acs-tr098-provisions");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim_tr098("prov-1").await;
    sim.session(&[]).await.expect("the bootstrap session");
    let id = sim.device_id();
    let ppp = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.";
    let ntp = "InternetGatewayDevice.Time.NTPServer1";
    let provisions = json!([
        ["value", ntp, "ntp.example.net"],
        ["tag", "provisioned", true],
        ["instances", format!("{ppp}[Name:\"pppoe-isp\"]"), 1],
    ]);
    let mut first = provisions.as_array().expect("list").clone();
    first.push(json!(["refresh", "InternetGatewayDevice.Time."]));
    let (s, task) = oss.task(&id, json!({"name": "provisions", "provisions": first})).await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    assert_eq!(task["provisions"], json!(first), "stored as given: {task}");
    let parts: Vec<&Value> =
        task["result"]["provisions"].as_array().expect("parts").iter().map(|p| &p["name"]).collect();
    assert_eq!(parts, ["setParameterValues", "addObject", "refreshObject"], "{task}");
    assert_eq!(held(&sim, ntp), Some(V::String("ntp.example.net".into())));
    assert_eq!(held(&sim, &format!("{ppp}1.Name")), Some(V::String("pppoe-isp".into())));
    let d = one_device(&oss, json!({"_id": id}), None).await;
    assert_eq!(d["_tags"], json!(["provisioned"]), "{d}");
    assert_eq!(cached(&d, &format!("{ppp}1.Name")), &json!("pppoe-isp"), "{d}");

    // The gateway meets them now: the task is done without a request.
    let sets = sim.sets_applied.load(std::sync::atomic::Ordering::SeqCst);
    let (s, task) = oss.task(&id, json!({"name": "provisions", "provisions": provisions})).await;
    assert_eq!((s, &task["status"]), (200, &json!("done")), "{task}");
    assert_eq!(task["result"], json!({"provisions": []}), "{task}");
    assert_eq!(sim.sets_applied.load(std::sync::atomic::Ordering::SeqCst), sets);
    assert_eq!(held(&sim, &format!("{ppp}2.Name")), None, "no second connection");

    // A preset's `instances` provision: as many PPP connections as it says at each periodic
    // Inform, and no more.
    let preset = json!({"weight": 0, "precondition": "", "events": {"2 PERIODIC": true},
        "configurations": [{"type": "provision", "name": "instances", "args": [format!("{ppp}*"), 2]}]});
    let (s, r) = oss.call(Method::PUT, "/presets/two-ppp", Some(preset)).await;
    assert_eq!(s, 200, "{r}");
    for _ in 0..2 {
        sim.session(&["2 PERIODIC"]).await.expect("a periodic session");
        assert!(held(&sim, &format!("{ppp}2.Name")).is_some(), "a second connection");
        assert_eq!(held(&sim, &format!("{ppp}3.Name")), None, "no third");
    }

    // Not a provision's name, or a built-in's wrong arguments: 400 with the reason, nothing queued.
    for (p, why) in [(json!(["my provision", 1]), "nor a script's name"), (json!(["tag", "t"]), "tag takes")] {
        let r = oss
            .send(
                Method::POST,
                &format!("/devices/{}/tasks", enc(&id)),
                Some(json!({"name": "provisions", "provisions": [p]})),
            )
            .await;
        assert_eq!(r.status, 400, "{:?}", r.json);
        assert!(r.json.to_string().contains(why), "{:?}", r.json);
    }
    let (_, open) =
        oss.call(Method::GET, &format!("/tasks?query={}", enc(&json!({"device": id}).to_string())), None).await;
    assert_eq!(open, json!([]));
}
