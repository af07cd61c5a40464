//! GenieACS's provision scripts (docs/provisions.rst) run by the `acs` binary's embedded engine
//! against simulated CPEs, TR-098 and TR-181: each documented example, the requests it causes
//! (as the simulated device received them) and what the device and the ACS hold after; a script
//! that loops, allocates without bound, throws or calls a failing extension faults its own
//! channel and leaves the session and the other presets sound; a script that does not compile
//! is refused when put, with its line and column.

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::AcsCommand;
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";

async fn put_script(oss: &NbiClient<'_>, name: &str, script: &str) -> (u16, Value) {
    let r = oss.send_bytes(Method::PUT, &format!("/provisions/{name}"), &[], Bytes::from(script.to_string())).await;
    (r.status, r.json)
}

async fn put_preset(oss: &NbiClient<'_>, name: &str, preset: Value) {
    let (s, body) = oss.call(Method::PUT, &format!("/presets/{name}"), Some(preset)).await;
    assert_eq!(s, 200, "{body}");
}

/// The ACS's requests of the last session, without the connection-request credentials it
/// sets at BOOTSTRAP and BOOT (not the scripts').
fn requests(sim: &acs::sim::SimCpe) -> Vec<String> {
    sim.take_requests().into_iter().filter(|r| !r.contains("ConnectionRequest")).collect()
}

fn value(sim: &acs::sim::SimCpe, path: &str) -> String {
    acs::sim::values(sim, path).first().map(|v| v.value.to_lexical().into_owned()).unwrap_or_default()
}

/// The device's record as the NBI shows it.
async fn device(oss: &NbiClient<'_>, id: &str) -> Value {
    let path = format!("/devices?query={}", enc(&json!({"_id": id}).to_string()));
    let (s, devices) = oss.call(Method::GET, &path, None).await;
    assert_eq!(s, 200, "{devices}");
    devices[0].clone()
}

fn cached<'a>(device: &'a Value, path: &str) -> &'a Value {
    &path.split('.').fold(device, |d, seg| &d[seg])["_value"]
}

async fn faults(oss: &NbiClient<'_>) -> Vec<Value> {
    let (s, list) = oss.call(Method::GET, "/faults", None).await;
    assert_eq!(s, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_examples_on_a_tr098_gateway() {
    let dir = TempDir::new("acs-scripts-098");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim_tr098("gw-script-1").await;
    let id = sim.device_id();
    sim.session(&[]).await.expect("the bootstrap session");
    requests(&sim);

    // "Setting the SSID as the last 6 characters of the serial number" (with the gateway's
    // TR-098 paths; the documentation's example mixes `Device.` and `LANDevice`).
    let ssid = r#"let serial = declare("InternetGatewayDevice.DeviceInfo.SerialNumber", {value: 1});
declare("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", null, {value: serial.value[0]});
"#;
    assert_eq!(put_script(&oss, "ssid", ssid).await.0, 200);
    // "Remove "tag1", add "tag2", and read "tag3"", word for word, and what it read logged.
    let tags = r#"declare("Tags.tag1", null, {value: false});
declare("Tags.tag2", null, {value: true});
let tag3 = declare("Tags.tag3", {value: 1});
log("tag3 " + tag3.value[0]);
"#;
    assert_eq!(put_script(&oss, "tags", tags).await.0, 200);
    put_preset(
        &oss,
        "doc",
        json!({"configurations": [
        {"type": "provision", "name": "ssid"}, {"type": "provision", "name": "tags"}]}),
    )
    .await;
    assert_eq!(oss.call(Method::POST, &format!("/devices/{}/tags/tag1", enc(&id)), None).await.0, 200);
    let before = value(&sim, "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID");
    assert_ne!(before, "gw-script-1");

    sim.session(&[]).await.expect("a session");
    // The serial number first (DeviceInfo is below the root and not listed: its subtree in one
    // request, then the value); the SSID is declared only once the script read it. The LAN side
    // is not known at all: the root's next level, then LANDevice's whole subtree, then the
    // SSID's type and value; then the set (not read back: the cache takes it as set). The tags
    // script ran to its end in the first round: tags need no request.
    assert_eq!(
        requests(&sim),
        [
            "GetParameterNames InternetGatewayDevice.DeviceInfo. false",
            "GetParameterValues InternetGatewayDevice.DeviceInfo.SerialNumber",
            "GetParameterNames InternetGatewayDevice. true",
            "GetParameterNames InternetGatewayDevice.LANDevice. false",
            "GetParameterValues InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID",
            "SetParameterValues InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID=gw-script-1",
        ]
    );
    assert_eq!(value(&sim, "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"), "gw-script-1");
    let d = device(&oss, &id).await;
    assert_eq!(cached(&d, "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"), &json!("gw-script-1"));
    assert_eq!(d["_tags"], json!(["tag2"]), "tag1 removed, tag2 added");

    // The device meets every declaration now: the next session sends nothing for them, and no
    // script runs again (nothing it read changed).
    sim.session(&[]).await.expect("a session");
    assert_eq!(requests(&sim), Vec::<String>::new());

    // A user changes the SSID on the device: the cached value (1 is the timestamp: any) still
    // says it holds the serial, so nothing is sent...
    sim.with_model_mut(|m| {
        m.set_parameter_values(
            &[cwmp::ParameterValue::new(
                "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID",
                cwmp::Value::String("mine".into()),
            )],
            "local",
        )
    })
    .expect("a local change");
    sim.session(&[]).await.expect("a session");
    assert_eq!(requests(&sim), Vec::<String>::new());
    // ... until a script wants it fresh: one read, one set. (The cache keeps seconds: a value
    // read in the same second as the session started counts as read in it.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = r#"declare("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", {value: Date.now()});"#;
    assert_eq!(put_script(&oss, "fresh", fresh).await.0, 200);
    put_preset(&oss, "zfresh", json!({"configurations": [{"type": "provision", "name": "fresh"}]})).await;
    sim.session(&[]).await.expect("a session");
    assert_eq!(
        requests(&sim),
        [
            "GetParameterValues InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID",
            "SetParameterValues InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID=gw-script-1",
        ]
    );
    assert_eq!(value(&sim, "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"), "gw-script-1");
    assert!(faults(&oss).await.is_empty(), "{:?}", faults(&oss).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_reboot_and_extensions_on_a_tr181_device() {
    let dir = TempDir::new("acs-scripts-181");
    let ext = dir.join("ext");
    std::fs::create_dir(&ext).expect("ext dir");
    // An extension: the VLAN of a serial number, from the operator's records.
    let crm = ext.join("crm");
    std::fs::write(&crm, "#!/bin/sh\nread -r call\ncase \"$call\" in *vlan-181*) echo 42;; *) echo 'unknown serial' >&2; exit 1;; esac\n")
        .expect("write");
    std::fs::set_permissions(&crm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
        .config(&format!("[scripts]\nextensions_dir = \"{}\"\n", ext.display()))
        .start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("vlan-181").await;
    let id = sim.device_id();
    sim.session(&[]).await.expect("the bootstrap session");
    requests(&sim);
    // Two VLAN terminations the device came with.
    for name in ["old-a", "old-b"] {
        sim.with_model_mut(|m| {
            let n = m.add_object("Device.Ethernet.VLANTermination.", "local").expect("add");
            m.set_parameter_values(
                &[cwmp::ParameterValue::new(
                    format!("Device.Ethernet.VLANTermination.{n}.Alias"),
                    cwmp::Value::String(name.into()),
                )],
                "local",
            )
        })
        .expect("a local instance");
    }

    // The documentation's alias example on this device's table: every other instance goes,
    // the one aliased "wan" is made (with its key), and its VLAN comes from the extension.
    let wan = r#"const now = Date.now();
declare("Device.Ethernet.VLANTermination.[]", null, {path: 0});
declare("Device.Ethernet.VLANTermination.[Alias:wan]", {path: now}, {path: 1});
const serial = declare("DeviceID.SerialNumber", {value: 1});
const vlan = ext("crm", "vlan", serial.value[0]);
declare("Device.Ethernet.VLANTermination.[Alias:wan].VLANID", {value: 1}, {value: vlan});
"#;
    let (st, body) = put_script(&oss, "wan", wan).await;
    assert_eq!(st, 200, "{body}");
    // "Reboot the device only if it hasn't been rebooted in the past 300 seconds".
    let reboot = r#"declare("Reboot", null, {value: Date.now() - (300 * 1000)});"#;
    assert_eq!(put_script(&oss, "recent-reboot", reboot).await.0, 200);
    put_preset(&oss, "wan", json!({"weight": 0, "configurations": [{"type": "provision", "name": "wan"}]})).await;
    put_preset(
        &oss,
        "reboot",
        json!({"weight": 1, "configurations": [{"type": "provision", "name": "recent-reboot"}]}),
    )
    .await;

    sim.session(&[]).await.expect("a session");
    let sent = requests(&sim);
    assert_eq!(
        sent,
        [
            "GetParameterNames Device. true",
            "GetParameterNames Device.Ethernet. false",
            "GetParameterValues Device.Ethernet.VLANTermination.1.Alias Device.Ethernet.VLANTermination.2.Alias",
            "DeleteObject Device.Ethernet.VLANTermination.2.",
            "DeleteObject Device.Ethernet.VLANTermination.1.",
            "AddObject Device.Ethernet.VLANTermination.",
            "SetParameterValues Device.Ethernet.VLANTermination.3.Alias=wan",
            "GetParameterValues Device.Ethernet.VLANTermination.3.",
            "Reboot",
            "SetParameterValues Device.Ethernet.VLANTermination.3.VLANID=42",
        ],
        "Ethernet's subtree listed, the aliases read; then every change of the round in the order declared \
         (the reboot last), then the value the new instance holds"
    );
    let names: Vec<String> = acs::sim::values(&sim, "Device.Ethernet.VLANTermination.")
        .into_iter()
        .filter(|v| v.name.ends_with(".Alias"))
        .map(|v| v.value.to_lexical().into_owned())
        .collect();
    assert_eq!(names, ["wan"]);
    assert_eq!(value(&sim, "Device.Ethernet.VLANTermination.3.VLANID"), "42");

    // Within 300 seconds of that reboot: no reboot; the table listed again (the script asks
    // for it as of the session's start), nothing to change.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sim.session(&[]).await.expect("a session");
    assert_eq!(
        requests(&sim),
        [
            "GetParameterNames Device.Ethernet.VLANTermination. false",
            "GetParameterValues Device.Ethernet.VLANTermination.3.Alias"
        ]
    );
    let d = device(&oss, &id).await;
    assert!(d["Reboot"]["_value"].is_string(), "the last reboot's time: {d}");
    assert!(faults(&oss).await.is_empty(), "{:?}", faults(&oss).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_loops_hogs_or_throws_faults_its_channel_only() {
    let dir = TempDir::new("acs-scripts-faults");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
        .config("[scripts]\ntime_limit_ms = 200\nmemory_limit_mib = 8\n")
        .start();
    let oss = NbiClient::new(acs.nbi, TOKEN);

    // Not stored when it does not compile: the line and column in the answer.
    let (s, e) = put_script(&oss, "broken", "let a = 1;\nlet b = ;\n").await;
    assert_eq!(s, 400, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("SyntaxError") && msg.contains("line 2, column"), "{msg}");
    assert_eq!(oss.call(Method::GET, "/provisions", None).await.1, json!([]));

    for (name, script) in [
        ("loop", "for (;;) {}"),
        ("hog", "const a = [];\nfor (;;) a.push('x'.repeat(100000) + a.length);"),
        ("boom", "let x = declare(\"Device.DeviceInfo.SoftwareVersion\", {value: 1});\nnull.f(x);"),
        ("noext", "ext(\"none\", \"f\");"),
    ] {
        assert_eq!(put_script(&oss, name, script).await.0, 200, "{name}");
        put_preset(&oss, name, json!({"channel": name, "configurations": [{"type": "provision", "name": name}]})).await;
    }
    put_preset(
        &oss,
        "interval",
        json!({"channel": "ok", "configurations": [
        {"type": "value", "name": "Device.ManagementServer.PeriodicInformInterval", "value": 600}]}),
    )
    .await;

    let sim = acs.sim("faulty-1").await;
    sim.session(&[]).await.expect("the session ends normally");
    assert_eq!(value(&sim, "Device.ManagementServer.PeriodicInformInterval"), "600", "the other preset applied");
    let mut got: Vec<(String, String, String)> = faults(&oss)
        .await
        .iter()
        .map(|f| {
            (
                f["channel"].as_str().unwrap_or_default().to_string(),
                f["code"].as_str().unwrap_or_default().to_string(),
                f["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    got.sort();
    let codes: Vec<(&str, &str)> = got.iter().map(|(c, code, _)| (c.as_str(), code.as_str())).collect();
    assert_eq!(
        codes,
        [("boom", "script.TypeError"), ("hog", "script.memory"), ("loop", "script.timeout"), ("noext", "ext")]
    );
    let boom = &got[0].2;
    assert!(boom.contains("provision boom") && boom.contains("(line 2"), "the script and its line: {boom}");

    // The faulted channels are held back at the next Inform (GenieACS's retry delay): their
    // scripts do not run, and the session is as short as a clean device's.
    requests(&sim);
    sim.session(&[]).await.expect("a session");
    assert_eq!(requests(&sim), Vec::<String>::new());
    assert_eq!(faults(&oss).await.len(), 4, "still recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_parameters_and_provisions_tasks_with_scripts() {
    let dir = TempDir::new("acs-scripts-vp");
    let ext = dir.join("ext");
    std::fs::create_dir(&ext).expect("ext dir");
    // GenieACS's `example-ext`, as a program: `get` and `set` of one value per serial number.
    let store = dir.join("ext-store.json");
    let prog = ext.join("example-ext");
    std::fs::write(
        &prog,
        format!(
            "#!/usr/bin/env python3\nimport json, sys, os\ncall = json.load(sys.stdin)\npath = {store:?}\n\
             data = json.load(open(path)) if os.path.exists(path) else {{}}\n\
             if call['function'] == 'set':\n    data[call['args'][0]] = call['args'][1]\n    json.dump(data, open(path, 'w'))\n    print('null')\n\
             else:\n    print(json.dumps(data.get(call['args'][0], 'none yet')))\n",
            store = store.display().to_string()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN)
        .config(&format!("[scripts]\nextensions_dir = \"{}\"\n", ext.display()))
        .start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim_tr098("gw-vp-1").await;
    let id = sim.device_id();
    // A PPP connection with its own MAC address.
    let ppp = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.";
    sim.with_model_mut(|m| {
        let n = m.add_object(ppp, "local")?;
        m.set_parameter_values(
            &[cwmp::ParameterValue::new(
                format!("{ppp}{n}.MACAddress"),
                cwmp::Value::String("00:a0:b1:00:00:99".into()),
            )],
            "local",
        )
    })
    .expect("a PPP connection");
    sim.session(&[]).await.expect("the bootstrap session");
    requests(&sim);

    // "Unified MAC parameter across different device models", word for word.
    let mac = r#"let m = "00:00:00:00:00:00";
let d = declare("Device.WANDevice.*.WANConnectionDevice.*.WANIPConnection.*.MACAddress", {value: Date.now()});
let igd = declare("InternetGatewayDevice.WANDevice.*.WANConnectionDevice.*.WANPPPConnection.*.MACAddress", {value: Date.now()});

if (d.size) {
  for (let p of d) {
    if (p.value[0]) {
      m = p.value[0];
      break;
    }
  }  
}
else if (igd.size) {
  for (let p of igd) {
    if (p.value[0]) {
      m = p.value[0];
      break;
    }
  }  
}

return {writable: false, value: [m, "xsd:string"]};
"#;
    let r = oss.send_bytes(Method::PUT, "/virtual_parameters/MAC", &[], Bytes::from(mac)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    // "Expose an external value as a virtual parameter", word for word.
    let external = r#"let serial = declare("DeviceID.SerialNumber", {value: 1});
if (args[1].value) {
  ext("example-ext", "set", serial.value[0], args[1].value[0]);
  return {writable: true, value: [args[1].value[0], "xsd:string"]};
}
else {
  let v = ext("example-ext", "get", serial.value[0]);
  return {writable: true, value: [v, "xsd:string"]};
}
"#;
    let r = oss.send_bytes(Method::PUT, "/virtual_parameters/external", &[], Bytes::from(external)).await;
    assert_eq!(r.status, 200, "{}", r.json);

    // Read through the NBI: the script runs in the device's session; its declarations are
    // fetched from the device (the Device. root is not this device's: nothing asked of it;
    // WANDevice is known from the Inform's WAN address: its subtree listed at once).
    let (s, t) =
        oss.task(&id, json!({"name": "getParameterValues", "parameterNames": ["VirtualParameters.MAC"]})).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        requests(&sim),
        [
            "GetParameterNames InternetGatewayDevice.WANDevice. false",
            "GetParameterValues InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.MACAddress",
        ]
    );
    let d = device(&oss, &id).await;
    assert_eq!(cached(&d, "VirtualParameters.MAC"), &json!("00:a0:b1:00:00:99"));
    // ... and in queries.
    let q = json!({"VirtualParameters.MAC": "00:a0:b1:00:00:99"}).to_string();
    let (s, found) = oss.call(Method::GET, &format!("/devices?query={}&projection=_id", enc(&q)), None).await;
    assert_eq!((s, found), (200, json!([{"_id": id}])));

    // Written through the NBI: the script gets the value and hands it to the extension.
    let set = json!({"name": "setParameterValues", "parameterValues": [["VirtualParameters.external", "hello"]]});
    let (s, t) = oss.task(&id, set).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(requests(&sim), Vec::<String>::new(), "nothing of the device's own");
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&store).expect("the extension's store")).expect("json");
    assert_eq!(kept, json!({"gw-vp-1": "hello"}));
    assert_eq!(cached(&device(&oss, &id).await, "VirtualParameters.external"), &json!("hello"));
    // Read back from the extension in a later session.
    std::fs::write(&store, r#"{"gw-vp-1": "changed elsewhere"}"#).expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, t) = oss.task(&id, json!({"name": "refreshObject", "objectName": "VirtualParameters"})).await;
    assert_eq!(s, 200, "{t}");
    let d = device(&oss, &id).await;
    assert_eq!(cached(&d, "VirtualParameters.external"), &json!("changed elsewhere"));
    assert_eq!(d["VirtualParameters"]["external"]["_writable"], json!(true));
    requests(&sim);

    // A provisions task naming a script (with its args) beside built-in provisions.
    let r = oss
        .send_bytes(
            Method::PUT,
            "/provisions/settag",
            &[],
            Bytes::from(r#"declare("Tags." + args[0], null, {value: true});"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let task = json!({"name": "provisions", "provisions": [
        ["settag", "from-task"],
        ["value", "InternetGatewayDevice.ManagementServer.PeriodicInformInterval", 900]]});
    let (s, t) = oss.task(&id, task).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(value(&sim, "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"), "900");
    assert_eq!(device(&oss, &id).await["_tags"], json!(["from-task"]));
    // A task naming a script that is not stored faults, naming it.
    let (s, t) = oss.task(&id, json!({"name": "provisions", "provisions": [["nosuch"]]})).await;
    assert_eq!(s, 202, "{t}");
    let f = faults(&oss).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["code"], json!("script.missing"));
    assert!(f[0]["message"].as_str().unwrap_or_default().contains("nosuch"), "{f:?}");
}

/// The built-in provisions declared beside a script (a `provisions` task naming one runs as a
/// whole in the script engine), `commit()` ordering a script's changes, and `clear()` forgetting
/// what the cache held, on a TR-181 device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_ins_beside_scripts_commit_and_clear() {
    let dir = TempDir::new("acs-scripts-builtins");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("builtins-1").await;
    let id = sim.device_id();
    sim.session(&[]).await.expect("the bootstrap session");
    requests(&sim);
    let ms = "Device.ManagementServer.";

    // commit(): the interval is set before the script reads the table and adds to it.
    let ordered = format!(
        r#"declare("{ms}PeriodicInformInterval", null, {{value: 120}});
commit();
declare("Device.Ethernet.VLANTermination.*", {{path: Date.now()}}, {{path: args[0]}});
log("interval " + declare("{ms}PeriodicInformInterval", {{value: 1}}).value[0]);"#
    );
    assert_eq!(put_script(&oss, "ordered", &ordered).await.0, 200);
    let task = json!({"name": "provisions", "provisions": [
        ["ordered", 1],
        ["tag", "built-in", true],
        ["value", format!("{ms}PeriodicInformEnable"), true],
        ["refresh", "Device.DeviceInfo.SoftwareVersion"],
        ["instances", "Device.Ethernet.VLANTermination.*", "+1"],
        ["reboot"]]});
    let (s, t) = oss.task(&id, task).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        requests(&sim),
        [
            // Round 1: everything declared is fetched at once (the script's interval and the
            // built-ins' table and values).
            format!("GetParameterNames {ms} false"),
            "GetParameterNames Device. true".to_string(),
            "GetParameterNames Device.Ethernet. false".to_string(),
            format!("GetParameterValues {ms}PeriodicInformEnable {ms}PeriodicInformInterval"),
            // The script stops at commit() until what it declared before is set: that set goes
            // out with every other value declared so far, before the script goes on to the
            // table (whose exact count agrees with the built-in's relative one), the reboot last.
            format!("SetParameterValues {ms}PeriodicInformEnable=true {ms}PeriodicInformInterval=120"),
            "AddObject Device.Ethernet.VLANTermination.".to_string(),
            "GetParameterValues Device.Ethernet.VLANTermination.1.".to_string(),
            "Reboot".to_string(),
        ]
    );
    assert_eq!(value(&sim, &format!("{ms}PeriodicInformInterval")), "120");
    assert_eq!(value(&sim, &format!("{ms}PeriodicInformEnable")), "true");
    assert_eq!(device(&oss, &id).await["_tags"], json!(["built-in"]));
    let parts: Vec<&Value> = t["result"]["provisions"].as_array().expect("parts").iter().map(|p| &p["name"]).collect();
    assert_eq!(
        parts,
        [
            "getParameterNames",
            "getParameterNames",
            "getParameterNames",
            "getParameterValues",
            "setParameterValues",
            "addObject",
            "reboot"
        ],
        "the task's result lists each request's, as a provisions task's does: {t}"
    );

    // clear(): the next session reads again what the cache held from before it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let clear = format!(
        r#"clear("{ms}PeriodicInformInterval", Date.now());
declare("{ms}PeriodicInformInterval", {{value: 1}});"#
    );
    assert_eq!(put_script(&oss, "clear-it", &clear).await.0, 200);
    let (s, t) = oss.task(&id, json!({"name": "provisions", "provisions": [["clear-it"]]})).await;
    assert_eq!(s, 200, "{t}");
    // Forgotten, and not known to be gone: ManagementServer listed again, the value read.
    assert_eq!(
        requests(&sim),
        [format!("GetParameterNames {ms} false"), format!("GetParameterValues {ms}PeriodicInformInterval")]
    );
    let d = device(&oss, &id).await;
    assert_eq!(cached(&d, &format!("{ms}PeriodicInformInterval")), &json!(120), "read again: {d}");
    assert!(faults(&oss).await.is_empty(), "{:?}", faults(&oss).await);
}

/// The `download` provision: in a preset, a Download at every Inform the preset matches (GenieACS
/// declares it with the session's time; its documentation says to trigger it on events such as
/// `1 BOOT`); beside a script in a `provisions` task, once in the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_download_provision_in_presets_and_beside_scripts() {
    let dir = TempDir::new("acs-scripts-download");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let meta =
        [("fileType", "1 Firmware Upgrade Image"), ("oui", "00A0B1"), ("productClass", "SimCPE"), ("version", "2")];
    let put = oss.send_bytes(Method::PUT, "/files/fw-2.bin", &meta, Bytes::from_static(b"firmware 2")).await;
    assert_eq!(put.status, 200, "{}", put.json);
    put_preset(
        &oss,
        "upgrade",
        json!({"events": {"1 BOOT": true}, "provision": "download", "provisionArgs": "\"1 Firmware Upgrade Image\", \"fw-2.bin\""}),
    )
    .await;
    let sim = acs.sim_tr098("dl-1").await;
    let id = sim.device_id();
    sim.session(&[]).await.expect("the bootstrap session (0 BOOTSTRAP and 1 BOOT)");
    assert_eq!(requests(&sim), ["Download"]);
    assert_eq!(sim.downloaded.lock().map(|d| d.clone()).unwrap_or_default(), b"firmware 2");
    // The TransferComplete comes at the next session; a periodic one downloads nothing.
    sim.session(&["2 PERIODIC"]).await.expect("a periodic session");
    assert_eq!(requests(&sim), Vec::<String>::new());
    // At the next boot, again (as GenieACS).
    sim.session(&["1 BOOT"]).await.expect("a boot");
    assert_eq!(requests(&sim), ["Download"]);

    // Beside a script in a provisions task: sent once, after the script's values.
    assert_eq!(
        put_script(
            &oss,
            "ntp",
            r#"declare("InternetGatewayDevice.Time.NTPServer1", null, {value: "ntp.example.net"});"#
        )
        .await
        .0,
        200
    );
    *sim.downloaded.lock().expect("lock") = Vec::new();
    let task =
        json!({"name": "provisions", "provisions": [["download", "1 Firmware Upgrade Image", "fw-2.bin"], ["ntp"]]});
    let (s, t) = oss.task(&id, task).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        requests(&sim),
        [
            "GetParameterNames InternetGatewayDevice. true",
            "GetParameterNames InternetGatewayDevice.Time. false",
            "GetParameterValues InternetGatewayDevice.Time.NTPServer1",
            "SetParameterValues InternetGatewayDevice.Time.NTPServer1=ntp.example.net",
            "Download",
        ]
    );
    assert_eq!(sim.downloaded.lock().map(|d| d.clone()).unwrap_or_default(), b"firmware 2");
    assert!(faults(&oss).await.is_empty(), "{:?}", faults(&oss).await);
}

/// Many tags in one round, and a password set before a `commit()` (the cache never keeps it, a
/// CPE reads it back empty): the session settles, each sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tags_and_a_password_before_commit_settle() {
    let dir = TempDir::new("acs-scripts-settle");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim_tr098("settle-1").await;
    let id = sim.device_id();
    sim.session(&[]).await.expect("the bootstrap session");
    requests(&sim);
    let ms = "InternetGatewayDevice.ManagementServer.";
    let script = format!(
        r#"for (let i = 0; i < 40; i++) declare("Tags.t" + i, null, {{value: true}});
declare("{ms}STUNPassword", null, {{value: "s3cret-stun"}});
commit();
declare("{ms}STUNEnable", null, {{value: true}});"#
    );
    assert_eq!(put_script(&oss, "settle", &script).await.0, 200);
    put_preset(&oss, "settle", json!({"configurations": [{"type": "provision", "name": "settle"}]})).await;
    sim.session(&[]).await.expect("a session");
    let sent = requests(&sim);
    let sets: Vec<&String> = sent.iter().filter(|r| r.starts_with("SetParameterValues")).collect();
    assert_eq!(
        sets,
        [
            &format!("SetParameterValues {ms}STUNPassword=s3cret-stun"),
            &format!("SetParameterValues {ms}STUNEnable=true")
        ],
        "{sent:?}"
    );
    assert!(faults(&oss).await.is_empty(), "{:?}", faults(&oss).await);
    let tags = device(&oss, &id).await["_tags"].as_array().map_or(0, Vec::len);
    assert_eq!(tags, 40);
}

/// "Default the device to factory settings" word for word, with the documentation's advice to
/// apply it on an event: a FactoryReset once; the device's next Inform (0 BOOTSTRAP) does not
/// match the preset's event again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_reset_as_documented() {
    let dir = TempDir::new("acs-scripts-reset");
    let acs = AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).start();
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("reset-1").await;
    sim.session(&[]).await.expect("the bootstrap session");
    requests(&sim);
    assert_eq!(put_script(&oss, "reset-now", r#"declare("FactoryReset", null, {value: Date.now()});"#).await.0, 200);
    put_preset(
        &oss,
        "reset",
        json!({"events": {"X 00A0B1 Reset": true}, "configurations": [{"type": "provision", "name": "reset-now"}]}),
    )
    .await;
    sim.session(&["X 00A0B1 Reset"]).await.expect("a session with the event");
    assert_eq!(requests(&sim), ["FactoryReset"]);
    let d = device(&oss, &sim.device_id()).await;
    assert!(d["FactoryReset"]["_value"].is_string(), "the reset's time kept: {d}");
    sim.session(&[]).await.expect("the session after the reset");
    assert!(!requests(&sim).contains(&"FactoryReset".to_string()), "once");
    assert!(faults(&oss).await.is_empty(), "{:?}", faults(&oss).await);
}
