//! GenieACS's API reference (docs/api-reference.rst) on presets and provisions, example by
//! example, against the `acs` binary; GenieACS's preset shape (weight, events, precondition,
//! schedule, provision) applied to a simulated CPE; provisions, virtual parameters and objects
//! stored, listed and deleted. The reference's examples name TR-098 paths
//! (`InternetGatewayDevice.`); where a preset is applied, the simulated CPE (a TR-181 host)
//! gets the TR-181 parameter of the same kind.

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::AcsCommand;
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";

fn acs_command(dir: &TempDir) -> AcsCommand {
    AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
}

/// `PUT path` with a raw body: the status and the answer's JSON.
async fn put_raw(oss: &NbiClient<'_>, path: &str, body: &[u8]) -> (u16, Value) {
    let r = oss.send_bytes(Method::PUT, path, &[], Bytes::copy_from_slice(body)).await;
    (r.status, r.json)
}

/// The `_id`s of a listing.
fn ids(list: &Value) -> Vec<&str> {
    list.as_array().map(|a| a.iter().filter_map(|p| p["_id"].as_str()).collect()).unwrap_or_default()
}

/// The device's tags, as `GET /devices` shows them.
async fn tags(oss: &NbiClient<'_>, id: &str) -> Vec<String> {
    let path = format!("/devices?query={}&projection=_tags", enc(&json!({"_id": id}).to_string()));
    let (s, devices) = oss.call(Method::GET, &path, None).await;
    assert_eq!(s, 200, "{devices}");
    let mut t: Vec<String> = devices[0]["_tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    t.sort();
    t
}

fn value(sim: &acs::sim::SimCpe, path: &str) -> String {
    acs::sim::values(sim, path).first().map(|v| v.value.to_lexical().into_owned()).unwrap_or_default()
}

/// Changes a value on the simulated device itself (as its user would).
fn set_locally(sim: &acs::sim::SimCpe, path: &str, v: cwmp::Value) {
    sim.with_model_mut(|m| m.set_parameter_values(&[cwmp::ParameterValue::new(path, v)], "local"))
        .unwrap_or_else(|f| panic!("{path}: {f:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_example_on_presets_and_provisions() {
    let dir = TempDir::new("acs-genie-presets");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);

    // PUT /presets/inform, the body exactly as the reference's curl sends it.
    let body = r#"{"weight": 0, "precondition": "{\"_tags\": \"test\"}", "configurations": [{"type": "value", "name": "InternetGatewayDevice.ManagementServer.PeriodicInformEnable", "value": "true"}, {"type": "value", "name": "InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "value": "300"}]}"#;
    assert_eq!(put_raw(&oss, "/presets/inform", body.as_bytes()).await.0, 200);
    let mut expected: Value = serde_json::from_str(body).expect("the reference's body");
    expected["_id"] = json!("inform");
    let r = oss.send(Method::GET, "/presets", None).await;
    assert_eq!((r.status, &r.json), (200, &json!([expected])));
    assert_eq!(r.headers.get("total").and_then(|t| t.to_str().ok()), Some("1"));
    assert_eq!(oss.call(Method::GET, "/presets/inform", None).await, (200, expected.clone()));
    // GenieACS's listing takes a query and a projection on presets as on any collection.
    let (s, w) =
        oss.call(Method::GET, &format!("/presets?query={}&projection=weight", enc(r#"{"weight": 0}"#)), None).await;
    assert_eq!((s, w), (200, json!([{"_id": "inform", "weight": 0}])));

    // The reference's old configuration types, provision among them, are taken too.
    let old = json!({"weight": 1, "configurations": [
        {"type": "value", "name": "InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "value": "300"},
        {"type": "delete_object", "name": "object_parent", "object": "object_name"},
        {"type": "add_object", "name": "object_parent", "object": "object_name"},
        {"type": "provision", "name": "YourProvisionName"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/old-shape", Some(old)).await.0, 200);

    // DELETE /presets/inform: 200, gone; 200 again, as GenieACS answers a delete of nothing.
    assert_eq!(oss.call(Method::DELETE, "/presets/inform", None).await.0, 200);
    let (_, list) = oss.call(Method::GET, "/presets", None).await;
    assert_eq!(ids(&list), ["old-shape"]);
    assert_eq!(oss.call(Method::DELETE, "/presets/inform", None).await.0, 200);
    assert_eq!(oss.call(Method::GET, "/presets/inform", None).await.0, 404);

    // PUT /provisions/mynewprovision with the reference's body: stored as is.
    let script = r#"log("Provision started at " + now);"#;
    assert_eq!(put_raw(&oss, "/provisions/mynewprovision", script.as_bytes()).await.0, 200);
    // GET /provisions/ (the reference's trailing slash): `_id` and `script`.
    let r = oss.send(Method::GET, "/provisions/", None).await;
    assert_eq!((r.status, &r.json), (200, &json!([{"_id": "mynewprovision", "script": script}])));
    assert_eq!(r.headers.get("total").and_then(|t| t.to_str().ok()), Some("1"));
    assert_eq!(
        oss.call(Method::GET, "/provisions/mynewprovision", None).await,
        (200, json!({"_id": "mynewprovision", "script": script}))
    );
    // Replaced by a second PUT.
    assert_eq!(put_raw(&oss, "/provisions/mynewprovision", b"log('v2');").await.0, 200);
    assert_eq!(oss.call(Method::GET, "/provisions", None).await.1[0]["script"], json!("log('v2');"));
    // DELETE /provisions/mynewprovision.
    assert_eq!(oss.call(Method::DELETE, "/provisions/mynewprovision", None).await.0, 200);
    assert_eq!(oss.call(Method::GET, "/provisions/", None).await, (200, json!([])));

    // Methods the collections do not take: 405 with what they take.
    let r = oss.send(Method::POST, "/provisions/x", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers.get("allow").and_then(|a| a.to_str().ok()), Some("GET, HEAD, PUT, DELETE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_presets_and_scripts_are_refused_and_change_nothing() {
    let dir = TempDir::new("acs-genie-presets-bad");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let good = json!({"weight": 3, "configurations": [{"type": "add_tag", "tag": "t"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/p", Some(good.clone())).await.0, 200);

    let refused = [
        (json!({"configurations": [{"type": "launch"}]}), "unknown configuration type \"launch\""),
        (json!({"precondition": "Tags.test IS NOT NULL", "configurations": []}), "expression syntax"),
        (json!({"precondition": "{\"x\": {\"$where\": \"1\"}}", "configurations": []}), "unsupported operator $where"),
        (json!({"weight": "heavy", "configurations": []}), "weight is an integer"),
        (json!({"events": {"0 BOOTSTRAP": "yes"}, "configurations": []}), "events maps event codes"),
        (json!({"schedule": "0 * * * * *", "configurations": []}), "schedule: the duration"),
        (json!({"schedule": "60 0 25 * * *", "configurations": []}), "hour"),
        (json!({"provision": "p", "provisionArgs": "Device.X + 1"}), "provisionArgs"),
        (json!({"configurations": [{"type": "value", "name": "A.B"}]}), "needs value"),
        (json!({"weight": 1}), "configurations (an array) or provision"),
    ];
    for (preset, why) in refused {
        let (s, e) = oss.call(Method::PUT, "/presets/p", Some(preset.clone())).await;
        assert_eq!(s, 400, "{preset}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(why)), "{preset}: {e} should say {why:?}");
    }
    assert_eq!(put_raw(&oss, "/presets/p", b"{not json").await.0, 400);
    let mut stored = good.clone();
    stored["_id"] = json!("p");
    assert_eq!(oss.call(Method::GET, "/presets", None).await.1, json!([stored]));

    // Script names are identifiers; the built-in provisions' names are taken.
    for (path, why) in [
        ("/provisions/a.b", "invalid provision name"),
        ("/provisions/a%20b", "invalid provision name"),
        ("/virtual_parameters/a.b", "invalid virtual parameter name"),
        ("/provisions/refresh", "refresh is a built-in provision"),
    ] {
        let (s, e) = put_raw(&oss, path, b"log(1);").await;
        assert_eq!((s, e["error"].as_str().is_some_and(|m| m.contains(why))), (400, true), "{path}: {e}");
    }
    let (s, e) = put_raw(&oss, "/provisions/long", &vec![b' '; (1 << 20) + 1]).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("a script is at most 1048576 bytes")));
    let (s, e) = put_raw(&oss, "/provisions/latin1", b"log('\xe9');").await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"].as_str().is_some_and(|m| m.starts_with("a script is UTF-8 text")), "{e}");
    assert_eq!(oss.call(Method::GET, "/provisions", None).await.1, json!([]));
    let (s, e) = oss.call(Method::PUT, "/objects/o", Some(json!({"SSID": ["a"]}))).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(oss.call(Method::GET, "/objects", None).await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_parameters_and_objects_are_stored_listed_and_deleted() {
    let dir = TempDir::new("acs-genie-vparams");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let uptime = "const m = declare(\"Device.DeviceInfo.UpTime\", {value: Date.now()});\nreturn {writable: false, value: [m.value[0], \"xsd:unsignedInt\"]};";
    assert_eq!(put_raw(&oss, "/virtual_parameters/upTime", uptime.as_bytes()).await.0, 200);
    assert_eq!(
        put_raw(&oss, "/virtual_parameters/wan_ip-2", b"return {writable: false, value: ['', 'xsd:string']};").await.0,
        200
    );
    let r = oss.send(Method::GET, "/virtual_parameters", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r.json), ["upTime", "wan_ip-2"]);
    assert_eq!(r.json[0]["script"], json!(uptime));
    let (_, one) =
        oss.call(Method::GET, &format!("/virtual_parameters?query={}", enc(r#"{"_id": "upTime"}"#)), None).await;
    assert_eq!(ids(&one), ["upTime"]);
    // A virtual parameter is not a provision.
    assert_eq!(oss.call(Method::GET, "/provisions", None).await.1, json!([]));
    assert_eq!(oss.call(Method::DELETE, "/virtual_parameters/upTime", None).await.0, 200);
    assert_eq!(ids(&oss.call(Method::GET, "/virtual_parameters", None).await.1), ["wan_ip-2"]);
    assert_eq!(oss.call(Method::GET, "/virtual_parameters/upTime", None).await.0, 404);

    // Objects, as GenieACS serves them: PUT, GET /objects, DELETE.
    let wifi = json!({"SSID": "lab", "KeyPassphrase": "s3cret-pass", "_keys": ["SSID"]});
    assert_eq!(oss.call(Method::PUT, "/objects/wifi", Some(wifi)).await.0, 200);
    let (s, list) = oss.call(Method::GET, "/objects", None).await;
    assert_eq!(
        (s, list),
        (200, json!([{"_id": "wifi", "SSID": "lab", "KeyPassphrase": "s3cret-pass", "_keys": ["SSID"]}]))
    );
    assert_eq!(oss.call(Method::DELETE, "/objects/wifi", None).await.0, 200);
    assert_eq!(oss.call(Method::GET, "/objects", None).await.1, json!([]));

    // Kept across a restart.
    let (cwmp, nbi) = (acs.cwmp, acs.nbi);
    drop(acs);
    let acs = acs_command(&dir).cwmp(cwmp).nbi(nbi).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    assert_eq!(ids(&oss.call(Method::GET, "/virtual_parameters", None).await.1), ["wan_ip-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_preset_applies_to_tagged_devices_once() {
    let dir = TempDir::new("acs-genie-presets-apply");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    // The reference's preset on the TR-181 parameters of the same kind.
    let preset = json!({"weight": 0, "precondition": "{\"_tags\": \"test\"}", "configurations": [
        {"type": "value", "name": "Device.ManagementServer.PeriodicInformEnable", "value": "true"},
        {"type": "value", "name": "Device.ManagementServer.PeriodicInformInterval", "value": "300"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/inform", Some(preset)).await.0, 200);
    let sim = acs.sim("preset-ref-1").await;
    let id = sim.device_id();
    set_locally(&sim, "Device.ManagementServer.PeriodicInformInterval", cwmp::Value::UnsignedInt(3600));
    sim.session(&[]).await.expect("bootstrap");
    // Not tagged: untouched.
    assert_eq!(value(&sim, "Device.ManagementServer.PeriodicInformInterval"), "3600");
    assert_eq!(oss.call(Method::POST, &format!("/devices/{}/tags/test", enc(&id)), None).await.0, 200);
    let stats = sim.session(&[]).await.expect("periodic");
    assert_eq!(value(&sim, "Device.ManagementServer.PeriodicInformInterval"), "300");
    assert_eq!(value(&sim, "Device.ManagementServer.PeriodicInformEnable"), "true");
    assert!(stats.requests_served >= 1);
    // The device now holds the preset's values, as the ACS read them back: nothing more is sent.
    let stats = sim.session(&[]).await.expect("periodic");
    assert_eq!(stats.requests_served, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_apply_by_weight_on_their_events_and_preconditions() {
    let dir = TempDir::new("acs-genie-presets-weight");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let code = "Device.DeviceInfo.ProvisioningCode";
    let put = |name: &'static str, p: Value| async move {
        assert_eq!(oss.call(Method::PUT, &format!("/presets/{name}"), Some(p)).await.0, 200, "{name}")
    };
    // On `1 BOOT`: the heavier preset's value wins over the lighter one's, though its name sorts
    // first; the heavier delete_tag wins over the lighter add_tag.
    put("a-heavy", json!({"weight": 10, "events": {"1 BOOT": true},
        "configurations": [{"type": "value", "name": code, "value": "heavy"}, {"type": "delete_tag", "tag": "contested"}]}))
    .await;
    put(
        "b-light",
        json!({"weight": 0, "events": {"1 BOOT": true},
        "configurations": [{"type": "value", "name": code, "value": "light"}, {"type": "add_tag", "tag": "contested"},
                           {"type": "add_tag", "tag": "light"}]}),
    )
    .await;
    // On `1 BOOT` without `0 BOOTSTRAP`, in GenieACS's UI shape with the built-in tag provision.
    put(
        "reboot-only",
        json!({"weight": -5, "events": {"1 BOOT": true, "0 BOOTSTRAP": false},
        "provision": "tag", "provisionArgs": "\"rebooted\", true"}),
    )
    .await;
    // Only where the precondition (a query on a parameter, as a JSON string) holds.
    put(
        "other-model",
        json!({"precondition": "{\"Device.DeviceInfo.ProductClass\": \"NotThis\"}",
        "configurations": [{"type": "add_tag", "tag": "other"}]}),
    )
    .await;
    put(
        "this-serial",
        json!({"precondition": "{\"_deviceId._SerialNumber\": \"preset-w-1\"}",
        "configurations": [{"type": "add_tag", "tag": "mine"}]}),
    )
    .await;
    // Naming a provision that is not stored: kept (as GenieACS keeps it); the rest applies.
    put(
        "missing-provision",
        json!({"events": {"2 PERIODIC": true}, "configurations": [
        {"type": "provision", "name": "notStored", "args": ["x"]}, {"type": "add_tag", "tag": "periodic"}]}),
    )
    .await;
    // A schedule: applies within its window after each time named, else not.
    let hour =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() / 3600 + 12) % 24;
    put(
        "every-minute",
        json!({"schedule": "60 0 * * * * *", "events": {"2 PERIODIC": true},
        "configurations": [{"type": "add_tag", "tag": "scheduled"}]}),
    )
    .await;
    put(
        "twelve-hours-away",
        json!({"schedule": format!("60 0 0 {hour} * * *"),
        "configurations": [{"type": "add_tag", "tag": "unscheduled"}]}),
    )
    .await;

    let sim = acs.sim("preset-w-1").await;
    let id = sim.device_id();
    // BOOTSTRAP and BOOT: the weighted presets apply, not reboot-only.
    sim.session(&[]).await.expect("bootstrap");
    assert_eq!(value(&sim, code), "heavy");
    assert_eq!(tags(&oss, &id).await, ["light", "mine"]);
    // BOOT alone: reboot-only too.
    sim.session(&["1 BOOT"]).await.expect("boot");
    assert_eq!(tags(&oss, &id).await, ["light", "mine", "rebooted"]);
    // PERIODIC: the BOOT presets do not apply; the preset naming a missing provision does.
    set_locally(&sim, code, cwmp::Value::String("changed".into()));
    sim.session(&["2 PERIODIC"]).await.expect("periodic");
    assert_eq!(value(&sim, code), "changed");
    assert_eq!(tags(&oss, &id).await, ["light", "mine", "periodic", "rebooted", "scheduled"]);

    // Deleted presets no longer apply.
    assert_eq!(oss.call(Method::DELETE, &format!("/devices/{}/tags/mine", enc(&id)), None).await.0, 200);
    assert_eq!(oss.call(Method::DELETE, "/presets/this-serial", None).await.0, 200);
    sim.session(&["2 PERIODIC"]).await.expect("periodic");
    assert_eq!(tags(&oss, &id).await, ["light", "periodic", "rebooted", "scheduled"]);
}

/// The rows of the simulated device's vRGW instance table whose Subscriber is `who`: (row
/// path, CVLAN).
fn instances_of(sim: &acs::sim::SimCpe, who: &str) -> Vec<(String, String)> {
    let table = "Device.X_VRGW-ORG_Virtualization.Instance.";
    let all = acs::sim::values(sim, table);
    all.iter()
        .filter(|p| p.name.ends_with(".Subscriber") && p.value.to_lexical() == who)
        .map(|p| {
            let row = p.name.trim_end_matches("Subscriber").to_string();
            (row.clone(), value(sim, &format!("{row}CVLAN")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_object_and_delete_object_follow_the_objects_keys() {
    let dir = TempDir::new("acs-genie-presets-objects");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let table = "Device.X_VRGW-ORG_Virtualization.Instance";
    let object = json!({"Subscriber": "alice", "CVLAN": 7, "_keys": ["Subscriber"]});
    assert_eq!(oss.call(Method::PUT, "/objects/alice", Some(object)).await.0, 200);
    let add = json!({"configurations": [{"type": "add_object", "name": table, "object": "alice"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/alice", Some(add)).await.0, 200);
    let sim = acs.sim("preset-obj-1").await;
    sim.session(&[]).await.expect("bootstrap");
    let rows = instances_of(&sim, "alice");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "7");
    // The instance is there (as the ACS read it back): not added again.
    sim.session(&[]).await.expect("periodic");
    assert_eq!(instances_of(&sim, "alice"), rows);
    // A field not among the keys changes: the same instance gets the new value.
    let object = json!({"Subscriber": "alice", "CVLAN": 9, "_keys": ["Subscriber"]});
    assert_eq!(oss.call(Method::PUT, "/objects/alice", Some(object)).await.0, 200);
    sim.session(&[]).await.expect("periodic");
    assert_eq!(instances_of(&sim, "alice"), [(rows[0].0.clone(), "9".to_string())]);
    // delete_object removes the instances matching the keys.
    let delete = json!({"configurations": [{"type": "delete_object", "name": table, "object": "alice"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/alice", Some(delete)).await.0, 200);
    sim.session(&[]).await.expect("periodic");
    assert_eq!(instances_of(&sim, "alice"), []);
    // The ACS forgot the deleted row: nothing is sent again, nothing faults.
    let stats = sim.session(&[]).await.expect("periodic");
    assert_eq!(stats.requests_served, 0);
    assert_eq!(oss.call(Method::GET, "/faults", None).await, (200, json!([])));
}

/// A preset's request the device refuses: its fault is recorded in the preset's channel, with
/// GenieACS's id `<device>:<channel>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presets_fault_goes_to_its_channel() {
    let dir = TempDir::new("acs-genie-presets-channel");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    // UpTime is read-only on the device: the set is refused (9008).
    let preset = json!({"weight": 0, "channel": "clock", "precondition": "", "configurations": [
        {"type": "value", "name": "Device.DeviceInfo.UpTime", "value": "5"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/uptime", Some(preset)).await.0, 200);
    let sim = acs.sim("preset-channel-1").await;
    sim.session(&[]).await.expect("bootstrap");
    let (_, faults) = oss.call(Method::GET, "/faults", None).await;
    let want = format!("{}:clock", sim.device_id());
    assert_eq!(ids(&faults), vec![want.as_str()], "{faults}");
    assert_eq!(faults[0]["channel"], json!("clock"), "{faults}");
}

/// Preconditions on GenieACS's lifecycle fields: `_registered`, `_lastBootstrap`, `_lastBoot`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_see_the_devices_lifecycle() {
    let dir = TempDir::new("acs-genie-presets-life");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let on = |q: Value, interval: &str| {
        json!({"weight": 0, "precondition": q.to_string(), "configurations": [
            {"type": "value", "name": "Device.ManagementServer.PeriodicInformInterval", "value": interval}]})
    };
    let q = json!({"_registered": {"$gt": "2000-01-01"}, "_lastBootstrap": {"$exists": true}});
    assert_eq!(oss.call(Method::PUT, "/presets/fresh", Some(on(q, "300"))).await.0, 200);
    // Never true: a device that booted has a _lastBoot.
    let never = json!({"_lastBoot": {"$exists": false}});
    let mut later = on(never, "999");
    later["weight"] = json!(1);
    assert_eq!(oss.call(Method::PUT, "/presets/never", Some(later)).await.0, 200);
    let sim = acs.sim("preset-life-1").await;
    set_locally(&sim, "Device.ManagementServer.PeriodicInformInterval", cwmp::Value::UnsignedInt(3600));
    sim.session(&[]).await.expect("bootstrap");
    assert_eq!(value(&sim, "Device.ManagementServer.PeriodicInformInterval"), "300");
}

/// The faults of a device's channel `channel`: (retries, timestamp) of each (none or one).
async fn channel_fault(oss: &NbiClient<'_>, device: &str, channel: &str) -> Option<(Value, Value)> {
    let q = json!({"_id": format!("{device}:{channel}")});
    let (s, faults) = oss.call(Method::GET, &format!("/faults?query={}", enc(&q.to_string())), None).await;
    assert_eq!(s, 200, "{faults}");
    faults.as_array().and_then(|f| f.first()).map(|f| (f["retries"].clone(), f["timestamp"].clone()))
}

/// A faulted channel is held back as GenieACS holds it: its presets are not applied again until
/// the retry time (`retry_delay_secs`, 300 by default, doubled per retry), while other channels'
/// presets go on; DELETE /faults/<device>:<channel> releases it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulted_channel_is_held_back_until_its_fault_is_deleted() {
    let dir = TempDir::new("acs-genie-presets-held");
    let acs = acs_command(&dir).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    // UpTime is read-only on the device: the set is refused (9008).
    let faulting = json!({"channel": "clock", "configurations": [
        {"type": "value", "name": "Device.DeviceInfo.UpTime", "value": "5"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/uptime", Some(faulting)).await.0, 200);
    let interval = "Device.ManagementServer.PeriodicInformInterval";
    let fine = json!({"configurations": [{"type": "value", "name": interval, "value": "300"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/interval", Some(fine)).await.0, 200);
    let sim = acs.sim("preset-held-1").await;
    sim.session(&[]).await.expect("bootstrap");
    let id = sim.device_id();
    let (retries, at) = channel_fault(&oss, &id, "clock").await.expect("the channel faulted");
    assert_eq!(retries, json!(0));
    assert_eq!(value(&sim, interval), "300", "the other channel applied");

    // The next session sends nothing: the faulted channel is held back, the other has nothing
    // to do.
    let stats = sim.session(&[]).await.expect("periodic");
    assert_eq!(stats.requests_served, 0, "the faulted channel's preset is not sent again");
    assert_eq!(channel_fault(&oss, &id, "clock").await, Some((json!(0), at.clone())), "not retried");
    assert!(acs.daemon.log().contains("faulted channel held back"));
    // Other channels go on meanwhile.
    let changed = json!({"configurations": [{"type": "value", "name": interval, "value": "600"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/interval", Some(changed)).await.0, 200);
    sim.session(&[]).await.expect("periodic");
    assert_eq!(value(&sim, interval), "600");
    assert_eq!(channel_fault(&oss, &id, "clock").await, Some((json!(0), at)), "still held");

    // DELETE /faults/<device>:clock releases it: the next session sends it (and it faults again,
    // a new fault: retries from 0).
    let r = oss.send(Method::DELETE, &format!("/faults/{}", enc(&format!("{id}:clock"))), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(channel_fault(&oss, &id, "clock").await, None);
    let stats = sim.session(&[]).await.expect("periodic");
    assert_eq!(stats.requests_served, 1, "the preset's set sent again");
    assert_eq!(channel_fault(&oss, &id, "clock").await.map(|f| f.0), Some(json!(0)));
}

/// With `retry_delay_secs = 0` a faulted channel is due again at once: each session retries it
/// and counts the retry; once its presets run without a fault, the fault goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulted_channel_is_retried_at_its_retry_time_and_cleared_once_clean() {
    let dir = TempDir::new("acs-genie-presets-retry");
    let acs = acs_command(&dir).config("[cwmp]\nretry_delay_secs = 0\n").start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let faulting = json!({"channel": "clock", "configurations": [
        {"type": "value", "name": "Device.DeviceInfo.UpTime", "value": "5"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/uptime", Some(faulting)).await.0, 200);
    let sim = acs.sim("preset-retry-1").await;
    sim.session(&[]).await.expect("bootstrap");
    let id = sim.device_id();
    assert_eq!(channel_fault(&oss, &id, "clock").await.map(|f| f.0), Some(json!(0)));
    for retries in 1..=2 {
        let stats = sim.session(&[]).await.expect("periodic");
        assert_eq!(stats.requests_served, 1, "retried");
        assert_eq!(channel_fault(&oss, &id, "clock").await.map(|f| f.0), Some(json!(retries)));
    }
    // The channel's preset now does what the device takes: applied, and the fault goes.
    let interval = "Device.ManagementServer.PeriodicInformInterval";
    let fixed = json!({"channel": "clock", "configurations": [{"type": "value", "name": interval, "value": "77"}]});
    assert_eq!(oss.call(Method::PUT, "/presets/uptime", Some(fixed)).await.0, 200);
    sim.session(&[]).await.expect("periodic");
    assert_eq!(value(&sim, interval), "77");
    assert_eq!(channel_fault(&oss, &id, "clock").await, None, "cleared once the channel ran clean");
    assert_eq!(oss.call(Method::GET, "/faults", None).await, (200, json!([])));
}
