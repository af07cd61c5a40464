//! GenieACS's API reference (docs/api-reference.rst), the parts about devices, as tests against
//! the `acs` binary: every curl example of it that concerns devices, then what GenieACS's NBI
//! source does where the reference is silent (`skip`, `limit`, `sort`, the `total` header,
//! `HEAD`, 405 with `Allow`, the device record's dates). The devices are a simulated TR-181 CPE
//! (`acs.sim`) and TR-098 gateways that inform by hand with the parameters GenieACS's examples
//! name.

use std::net::SocketAddr;

use hyper::Method;
use serde_json::{json, Value};
use test_support::acs::{cwmp_post, digest, AcsCommand, AcsProcess};
use test_support::http::Http;
use test_support::{enc, NbiClient, TempDir};

const TOKEN: &str = "test-token-0123456789";

/// The gateways' credential: one for each OUI of GenieACS's examples (user = the OUI).
const GW_PASSWORD: &str = "gw-secret-0123";

fn start(dir: &TempDir) -> AcsProcess {
    let creds: String = ["202BC1", "00236a"]
        .iter()
        .map(|oui| {
            format!(
                "[[cwmp.cpe_credentials]]\nusername = \"{oui}\"\npassword = \"{GW_PASSWORD}\"\ndevice_prefix = \"{oui}-\"\n\n"
            )
        })
        .collect();
    AcsCommand::new(env!("CARGO_BIN_EXE_acs"), &dir.join("acs.db"), TOKEN).config(&creds).start()
}

/// The MAC address of GenieACS's example.
const MAC: &str = "20:2B:C1:E0:06:65";
const WAN_MAC: &str = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress";

/// A TR-098 gateway's session by hand: an Inform with `events` and the parameters GenieACS's
/// examples read, then an empty POST; the ACS ends the session (204). Its device id.
async fn tr098_session(addr: SocketAddr, oui: &str, class: &str, serial: &str, events: &[&str]) -> String {
    use cwmp::{Body, DateTime, DeviceId, Envelope, Event, Inform, ParameterValue, Value as V};
    let p = |name: &str, v: &str| ParameterValue { name: name.into(), value: V::String(v.into()) };
    let device_id = DeviceId {
        manufacturer: "Zyxel".into(),
        oui: oui.into(),
        product_class: class.into(),
        serial_number: serial.into(),
    };
    let id = device_id.key();
    let inform = Inform {
        device_id,
        events: events.iter().map(|e| Event::new(e)).collect(),
        max_envelopes: 1,
        current_time: DateTime::from_unix(1_795_302_534),
        retry_count: 0,
        parameter_list: vec![
            p("InternetGatewayDevice.DeviceInfo.Manufacturer", "Zyxel"),
            p("InternetGatewayDevice.DeviceInfo.ModelName", "BM632w"),
            p("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "V1.00"),
            ParameterValue { name: "InternetGatewayDevice.DeviceInfo.UpTime".into(), value: V::UnsignedInt(3600) },
            p("InternetGatewayDevice.ManagementServer.ConnectionRequestURL", "http://127.0.0.1:9/"),
            p("InternetGatewayDevice.ManagementServer.ParameterKey", ""),
            p(WAN_MAC, MAC),
        ],
    };
    let body = Envelope::new(cwmp::CwmpNs::V1_2, Some("1".into()), Body::Inform(inform)).encode();
    let http = Http::new();
    let first = cwmp_post(&http, addr, body.clone(), None, None).await;
    assert_eq!(first.status, 401);
    let auth = digest(&first.challenges, oui, GW_PASSWORD, "abcd");
    let opened = cwmp_post(&http, addr, body, None, Some(&auth)).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    let cookie = opened.cookie.expect("a session cookie");
    // A new device is given connection-request credentials (a SetParameterValues) first.
    let mut reply = cwmp_post(&http, addr, bytes::Bytes::new(), Some(&cookie), None).await;
    let mut asked = 0;
    let mut set: Vec<ParameterValue> = Vec::new();
    while reply.status == 200 {
        let env = Envelope::decode(&reply.body, &cwmp::Limits::default()).expect("a request from the ACS");
        let done = match &env.body {
            Body::SetParameterValues(spv) => {
                set.extend(spv.parameter_list.iter().cloned());
                Body::SetParameterValuesResponse(cwmp::SetParameterValuesResponse { status: 0 })
            }
            Body::GetParameterValues(gpv) => {
                let parameter_list = set.iter().filter(|p| gpv.parameter_names.contains(&p.name)).cloned().collect();
                Body::GetParameterValuesResponse(cwmp::GetParameterValuesResponse { parameter_list })
            }
            other => panic!("unexpected request {other:?}"),
        };
        let answer = Envelope::new(env.ns, env.header.id.clone(), done).encode();
        reply = cwmp_post(&http, addr, answer, Some(&cookie), None).await;
        asked += 1;
        assert!(asked < 5, "a session that does not end");
    }
    assert_eq!(reply.status, 204, "the session ends: {:?}", reply.body);
    id
}

/// `GET` of a path: status, total header, body.
async fn get(oss: &NbiClient<'_>, path: &str) -> (u16, Option<usize>, Value) {
    let r = oss.send(Method::GET, path, None).await;
    let total = r.headers.get("total").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (r.status, total, r.json)
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array().expect("an array of devices").iter().map(|d| d["_id"].as_str().expect("_id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_examples_about_devices() {
    let dir = TempDir::new("acs-genieacs-devices");
    let acs = start(&dir);
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let gw = tr098_session(acs.cwmp, "202BC1", "BM632w", "0000000", &["2 PERIODIC"]).await;
    assert_eq!(gw, "202BC1-BM632w-0000000");
    let sim = acs.sim("genie-1").await;
    sim.session(&[]).await.expect("bootstrap session");

    // Find a device by its ID (the reference writes `/devices/?query=`, with the slash).
    let (s, total, devices) = get(&oss, "/devices/?query=%7B%22_id%22%3A%22202BC1-BM632w-0000000%22%7D").await;
    assert_eq!((s, total, ids(&devices)), (200, Some(1), vec![gw.as_str()]));
    let d = &devices[0];
    assert_eq!(
        d["_deviceId"],
        json!({"_Manufacturer": "Zyxel", "_OUI": "202BC1", "_ProductClass": "BM632w", "_SerialNumber": "0000000"})
    );
    for date in ["_registered", "_lastInform"] {
        assert!(d[date].as_str().is_some_and(|t| t.ends_with('Z')), "{date}: {d}");
    }
    assert!(d.get("_lastBoot").is_none() && d.get("_lastBootstrap").is_none(), "never booted here: {d}");
    let info = &d["InternetGatewayDevice"]["DeviceInfo"];
    assert_eq!(d["InternetGatewayDevice"]["_object"], json!(true));
    assert_eq!(info["ModelName"]["_value"], json!("BM632w"));
    assert_eq!(info["ModelName"]["_type"], json!("xsd:string"));
    assert!(info["ModelName"]["_timestamp"].is_string());
    assert_eq!(info["UpTime"]["_value"], json!(3600), "typed by its xsd type");

    // Find a device by its MAC address.
    let (s, total, devices) = get(&oss, "/devices/?query=%7B%22InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress%22%3A%2220:2B:C1:E0:06:65%22%7D").await;
    assert_eq!((s, total, ids(&devices)), (200, Some(1), vec![gw.as_str()]));

    // Devices that have not informed in the last 7 days (of 2017): none; since then, both.
    let (s, total, devices) = get(
        &oss,
        "/devices/?query=%7B%22_lastInform%22%3A%7B%22%24lt%22%3A%222017-12-11%2013%3A16%3A23%20%2B0000%22%7D%7D",
    )
    .await;
    assert_eq!((s, total, devices), (200, Some(0), json!([])));
    let since = enc(&json!({"_lastInform": {"$gt": "2017-12-11 13:16:23 +0000"}}).to_string());
    let (_, total, devices) = get(&oss, &format!("/devices?query={since}")).await;
    assert_eq!((total, ids(&devices).len()), (Some(2), 2));

    // Specific parameters of a device.
    let (s, _, devices) = get(&oss, "/devices?query=%7B%22_id%22%3A%22202BC1-BM632w-0000000%22%7D&projection=InternetGatewayDevice.DeviceInfo.ModelName,InternetGatewayDevice.DeviceInfo.Manufacturer").await;
    assert_eq!(s, 200);
    let d = &devices[0];
    let keys: Vec<&String> = d.as_object().expect("a device").keys().collect();
    assert_eq!(keys, ["InternetGatewayDevice", "_id"], "only the projection and _id: {d}");
    let shown: Vec<&String> =
        d["InternetGatewayDevice"]["DeviceInfo"].as_object().expect("DeviceInfo").keys().collect();
    assert_eq!(shown, ["Manufacturer", "ModelName"]);
    assert!(d["InternetGatewayDevice"].get("_object").is_none(), "an ancestor of what is projected is bare");

    // Assign the tag "testing", find by it, remove it.
    let r = oss.send(Method::POST, "/devices/202BC1-BM632w-0000000/tags/testing", None).await;
    assert_eq!(r.status, 200);
    let tagged = format!("/devices?query={}", enc(&json!({"_tags": "testing"}).to_string()));
    let (_, total, devices) = get(&oss, &tagged).await;
    assert_eq!((total, ids(&devices)), (Some(1), vec![gw.as_str()]));
    assert_eq!(devices[0]["_tags"], json!(["testing"]));
    let r = oss.send(Method::DELETE, "/devices/202BC1-BM632w-0000000/tags/testing", None).await;
    assert_eq!(r.status, 200);
    let (_, total, _) = get(&oss, &tagged).await;
    assert_eq!(total, Some(0));

    // Delete the device: gone with its cache; it registers again at its next Inform.
    let r = oss.send(Method::DELETE, "/devices/202BC1-BM632w-000001", None).await;
    assert_eq!(r.status, 200, "an unknown device: 200, as GenieACS answers");
    let by_id = format!("/devices?query={}", enc(&json!({"_id": gw}).to_string()));
    let (_, _, before) = get(&oss, &by_id).await;
    let r = oss.send(Method::DELETE, &format!("/devices/{}", enc(&gw)), None).await;
    assert_eq!(r.status, 200);
    let (_, total, devices) = get(&oss, &by_id).await;
    assert_eq!((total, devices), (Some(0), json!([])));
    let (_, total, _) = get(&oss, "/devices").await;
    assert_eq!(total, Some(1), "the other device stays");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    tr098_session(acs.cwmp, "202BC1", "BM632w", "0000000", &["2 PERIODIC"]).await;
    let (_, total, after) = get(&oss, &by_id).await;
    assert_eq!(total, Some(1), "registered again");
    assert!(
        after[0]["_registered"].as_str() > before[0]["_registered"].as_str(),
        "a new registration: {} then {}",
        before[0]["_registered"],
        after[0]["_registered"]
    );
    assert!(after[0].get("_tags").is_none());
}

/// The reference's device id `00236a-96318REF-SR360NA0A4%2D0003196` is serial number
/// `SR360NA0A4-0003196` escaped as GenieACS escapes it; the `%` is encoded once more in the
/// URL's query (`%252D`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_id_with_a_percent_sign_is_found_as_the_reference_encodes_it() {
    let dir = TempDir::new("acs-genieacs-percent");
    let acs = start(&dir);
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let id = tr098_session(acs.cwmp, "00236a", "96318REF", "SR360NA0A4-0003196", &["2 PERIODIC"]).await;
    assert_eq!(id, "00236a-96318REF-SR360NA0A4%2D0003196");
    let (s, total, devices) =
        get(&oss, "/devices/?query=%7B%22_id%22%3A%2200236a-96318REF-SR360NA0A4%252D0003196%22%7D").await;
    assert_eq!((s, total, ids(&devices)), (200, Some(1), vec![id.as_str()]));
    let r = oss.send(Method::DELETE, "/devices/00236a-96318REF-SR360NA0A4%252D0003196", None).await;
    assert_eq!(r.status, 200);
    let (_, total, _) = get(&oss, "/devices").await;
    assert_eq!(total, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_limit_sort_total_head_and_405_as_genieacs_answers() {
    let dir = TempDir::new("acs-genieacs-paging");
    let acs = start(&dir);
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let mut all = Vec::new();
    for serial in ["0003", "0001", "0002", "0004"] {
        all.push(tr098_session(acs.cwmp, "202BC1", "BM632w", serial, &["2 PERIODIC"]).await);
    }
    let sim = acs.sim("genie-boot").await;
    sim.session(&[]).await.expect("bootstrap session");
    all.push(sim.device_id());
    all.sort();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();

    // Paging: skip and limit after the sort, total before them.
    let (s, total, devices) = get(&oss, "/devices?skip=1&limit=2&projection=_id").await;
    assert_eq!((s, total, ids(&devices)), (200, Some(5), all[1..3].to_vec()));
    let (_, total, devices) = get(&oss, "/devices?limit=0&projection=_id").await;
    assert_eq!((total, ids(&devices).len()), (Some(5), 5), "limit=0: no limit, as in MongoDB");
    let (_, _, devices) = get(&oss, "/devices?skip=9").await;
    assert_eq!(devices, json!([]));
    for bad in [
        "skip=-1",
        "limit=x",
        "sort=%7B%22_id%22%3A2%7D",
        "sort=nope",
        "query=%7B%22_id%22%3A%7B%22%24where%22%3A1%7D%7D",
    ] {
        let r = oss.send(Method::GET, &format!("/devices?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.json);
        assert!(r.json["error"].is_string(), "{bad}");
    }

    // Sort: descending by id; by a parameter's value (GenieACS appends `._value`), a device
    // without it first when ascending; by _lastBoot.
    let (_, _, devices) = get(&oss, &format!("/devices?sort={}&projection=_id", enc(r#"{"_id":-1}"#))).await;
    let mut desc = all.clone();
    desc.reverse();
    assert_eq!(ids(&devices), desc);
    let by_model = enc(r#"{"InternetGatewayDevice.DeviceInfo.ModelName":1,"_deviceId._SerialNumber":-1}"#);
    let (_, _, devices) = get(&oss, &format!("/devices?sort={by_model}&projection=_id")).await;
    let got = ids(&devices);
    assert_eq!(got[0], sim.device_id(), "no ModelName: first");
    assert_eq!(got[1..], ["202BC1-BM632w-0004", "202BC1-BM632w-0003", "202BC1-BM632w-0002", "202BC1-BM632w-0001"]);
    let (_, _, devices) = get(&oss, &format!("/devices?sort={}&limit=1", enc(r#"{"_lastBoot":-1}"#))).await;
    assert_eq!(ids(&devices), [sim.device_id()]);
    let d = &devices[0];
    assert!(d["_lastBoot"].is_string() && d["_lastBootstrap"].is_string(), "the simulator booted: {d}");

    // A query on a parameter with and without `._value`, $in, $regex, $ne, $or, $and.
    for (q, want) in [
        (json!({"InternetGatewayDevice.DeviceInfo.UpTime._value": {"$gte": 3600}}), 4),
        (json!({"InternetGatewayDevice.DeviceInfo.UpTime": "3600"}), 4),
        (json!({"_deviceId._SerialNumber": {"$in": ["0001", "0004", "nope"]}}), 2),
        (json!({"_id": {"$regex": "^202bc1-.*-000[12]$", "$options": "i"}}), 2),
        (json!({"_deviceId._SerialNumber": "000*"}), 4),
        (json!({"_deviceId._OUI": {"$ne": "202BC1"}}), 1),
        (json!({"$or": [{"_deviceId._SerialNumber": "0001"}, {"_lastBootstrap": {"$exists": true}}]}), 2),
        (
            json!({"$and": [{"_registered": {"$gt": "2020-01-01T00:00:00Z"}}, {"_lastBoot": {"$lt": 4_102_444_800_000_i64}}]}),
            1,
        ),
    ] {
        let (s, total, devices) = get(&oss, &format!("/devices?query={}&projection=_id", enc(&q.to_string()))).await;
        assert_eq!((s, total, ids(&devices).len()), (200, Some(want), want), "{q}");
    }

    // HEAD: the headers (total) and no body.
    let query = enc(&json!({"_deviceId._OUI": "202BC1"}).to_string());
    let r = Http::new()
        .send(
            Method::HEAD,
            &format!("http://{}/devices?query={query}", acs.nbi),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!((r.status, r.header("total"), r.body.len()), (200, Some("4"), 0));
    assert_eq!(r.header("content-type"), Some("application/json"));

    // 405 with Allow where GenieACS answers it; 404 elsewhere.
    for (method, path, allow) in [
        (Method::POST, "/devices", "GET, HEAD"),
        (Method::PUT, "/devices/", "GET, HEAD"),
        (Method::GET, "/devices/202BC1-BM632w-0001", "DELETE"),
        (Method::GET, "/devices/202BC1-BM632w-0001/tasks", "POST"),
        (Method::PUT, "/devices/202BC1-BM632w-0001/tags/x", "POST, DELETE"),
    ] {
        let r = oss.send(method.clone(), path, None).await;
        let got = r.headers.get("allow").and_then(|v| v.to_str().ok());
        assert_eq!((r.status, got), (405, Some(allow)), "{method} {path}: {}", r.json);
    }
    let r = oss.send(Method::GET, "/devices/a/nothing", None).await;
    assert_eq!(r.status, 404);
}

/// Device `id`'s record, limited to `projection` when given.
async fn record(oss: &NbiClient<'_>, id: &str, projection: Option<&str>) -> Value {
    let mut path = format!("/devices?query={}", enc(&json!({"_id": id}).to_string()));
    if let Some(p) = projection {
        path.push_str(&format!("&projection={}", enc(p)));
    }
    let (s, total, devices) = get(oss, &path).await;
    assert_eq!((s, total), (200, Some(1)), "{devices}");
    devices[0].clone()
}

/// How many devices match `query`.
async fn count(oss: &NbiClient<'_>, query: Value) -> Option<usize> {
    let (s, total, devices) = get(oss, &format!("/devices?query={}", enc(&query.to_string()))).await;
    assert_eq!(s, 200, "{query}: {devices}");
    total
}

/// The node of `path` (an object's with or without its trailing dot) in a device record.
fn node<'v>(d: &'v Value, path: &str) -> &'v Value {
    path.trim_end_matches('.').split('.').fold(d, |v, k| &v[k])
}

/// Runs a task on the simulated CPE (a connection request); its result.
async fn run(oss: &NbiClient<'_>, id: &str, task: Value) -> Value {
    let (s, done) = oss.task(id, task.clone()).await;
    assert_eq!(s, 200, "{task}: {done}");
    done["result"].clone()
}

/// What GetParameterNames and GetParameterAttributes tell is in the device record as GenieACS
/// keeps it (`_object`, `_writable`, an object's `_timestamp`, `_notification`, `_accessList`,
/// `_attributesTimestamp`), projected field by field and queried; a refreshObject shows every
/// object it walked, empty tables included; what the device no longer has is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_gpn_and_gpa_tell_is_in_the_device_record() {
    let dir = TempDir::new("acs-genieacs-path-info");
    let acs = start(&dir);
    let oss = NbiClient::new(acs.nbi, TOKEN);
    let sim = acs.sim("genie-info").await;
    sim.session(&[]).await.expect("bootstrap session");
    let id = sim.device_id();
    let ms = "Device.ManagementServer.";
    let key = format!("{ms}ParameterKey");
    let interval = format!("{ms}PeriodicInformInterval");
    let before = record(&oss, &id, None).await;
    assert!(node(&before, &key).get("_writable").is_none(), "not listed yet: unknown");
    assert_eq!(node(&before, &key)["_object"], json!(false), "a parameter read is no object");

    // getParameterNames: every name's `_object` and `_writable`; the object listed, when.
    let result = run(&oss, &id, json!({"name": "getParameterNames", "parameterPath": ms, "nextLevel": true})).await;
    let names = result["parameters"].as_array().expect("names").clone();
    assert!(names.len() > 5, "{names:?}");
    let d = record(&oss, &id, None).await;
    for n in &names {
        let at = node(&d, n[0].as_str().expect("a name"));
        assert_eq!((&at["_object"], &at["_writable"]), (&n[1], &n[2]), "{n}: {at}");
    }
    let listed = node(&d, ms)["_timestamp"].as_str().expect("the object listed: its _timestamp").to_string();
    assert!(listed.ends_with('Z'), "{listed}");
    assert_eq!(node(&d, ms)["_object"], json!(true));
    assert_eq!(node(&d, &key)["_writable"], json!(false));
    assert_eq!(node(&d, &interval)["_writable"], json!(true));
    // Projected field by field, queried.
    let p = record(&oss, &id, Some(&format!("{key}._writable,{ms}_timestamp,{interval}._object"))).await;
    assert_eq!(
        p["Device"],
        json!({"ManagementServer": {"_timestamp": listed, "ParameterKey": {"_writable": false},
                                    "PeriodicInformInterval": {"_object": false}}}),
        "{p}"
    );
    let mine = |q: Value| {
        let mut q = q;
        q["_id"] = json!(id);
        q
    };
    assert_eq!(count(&oss, mine(json!({format!("{key}._writable"): false}))).await, Some(1));
    assert_eq!(count(&oss, mine(json!({format!("{key}._writable"): true}))).await, Some(0));
    assert_eq!(
        count(&oss, mine(json!({format!("{interval}._writable"): true, "Device.ManagementServer._object": true})))
            .await,
        Some(1)
    );
    assert_eq!(count(&oss, mine(json!({format!("{ms}_timestamp"): {"$gte": listed}}))).await, Some(1));

    // setParameterAttributes (read back) and getParameterAttributes: `_notification`,
    // `_accessList` and when they were read.
    run(&oss, &id, json!({"name": "setParameterAttributes", "parameterList": [[interval, 2, ["Subscriber"]]]})).await;
    let url = format!("{ms}URL");
    run(&oss, &id, json!({"name": "getParameterAttributes", "parameterNames": [url]})).await;
    let d = record(&oss, &id, None).await;
    assert_eq!(
        (&node(&d, &interval)["_notification"], &node(&d, &interval)["_accessList"]),
        (&json!(2), &json!(["Subscriber"]))
    );
    assert_eq!((&node(&d, &url)["_notification"], &node(&d, &url)["_accessList"]), (&json!(0), &json!([])));
    assert!(node(&d, &url)["_attributesTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{d}");
    let listed_url = names.iter().find(|n| n[0] == json!(url)).expect("URL listed");
    assert_eq!(node(&d, &url)["_writable"], listed_url[2], "what GetParameterNames told is kept");
    let p = record(&oss, &id, Some(&format!("{interval}._accessList,{interval}._notification"))).await;
    assert_eq!(
        p["Device"],
        json!({"ManagementServer": {"PeriodicInformInterval": {"_notification": 2, "_accessList": ["Subscriber"]}}})
    );
    assert_eq!(count(&oss, mine(json!({format!("{interval}._accessList"): "Subscriber"}))).await, Some(1));
    assert_eq!(count(&oss, mine(json!({format!("{interval}._notification"): {"$gte": 2}}))).await, Some(1));
    assert_eq!(count(&oss, mine(json!({format!("{url}._notification"): {"$gt": 0}}))).await, Some(0));

    // Bulk tasks and presets' preconditions read it as queries do.
    let bulk = |q: Value| format!("/tasks?query={}", enc(&mine(q).to_string()));
    let read = json!({"name": "getParameterValues", "parameterNames": [key]});
    for (writable, queued) in [(false, 1), (true, 0)] {
        let (s, r) =
            oss.call(Method::POST, &bulk(json!({format!("{key}._writable"): writable})), Some(read.clone())).await;
        assert_eq!((s, r["tasks"].as_array().map(Vec::len)), (200, Some(queued)), "_writable {writable}: {r}");
    }
    for (name, writable) in [("listed-writable", true), ("listed-read-only", false)] {
        let precondition = json!({format!("{interval}._writable"): writable}).to_string();
        let preset =
            json!({"weight": 0, "precondition": precondition, "configurations": [{"type": "add_tag", "tag": name}]});
        let (s, r) = oss.call(Method::PUT, &format!("/presets/{name}"), Some(preset)).await;
        assert_eq!(s, 200, "{r}");
    }
    sim.session(&["2 PERIODIC"]).await.expect("a periodic session");
    let d = record(&oss, &id, None).await;
    assert_eq!(d["_tags"], json!(["listed-writable"]), "{d}");

    // refreshObject: every object walked is in the record, empty tables too, with `_writable`
    // and the time its children were listed; every parameter with its `_writable`.
    let virt = "Device.X_VRGW-ORG_Virtualization.";
    let truth = sim.with_model(|m| m.get_parameter_names(virt, false)).expect("the device's names");
    let empty: Vec<&str> = truth
        .iter()
        .map(|i| i.name.as_str())
        .filter(|o| o.ends_with('.') && !truth.iter().any(|i| !i.name.ends_with('.') && i.name.starts_with(o)))
        .collect();
    assert!(!empty.is_empty(), "an empty table to show: {truth:?}");
    run(&oss, &id, json!({"name": "refreshObject", "objectName": virt})).await;
    let d = record(&oss, &id, None).await;
    // The object refreshed was listed below itself only (next level, as GenieACS walks): its own
    // writability is the business of its parent's listing, unknown here.
    assert_eq!(node(&d, virt).get("_writable"), None);
    for i in truth.iter().filter(|i| i.name != virt) {
        let at = node(&d, &i.name);
        assert_eq!(
            (&at["_object"], &at["_writable"]),
            (&json!(i.name.ends_with('.')), &json!(i.writable)),
            "{}: {at}",
            i.name
        );
        if i.name.ends_with('.') {
            assert!(at["_timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{}: {at}", i.name);
        } else {
            assert!(at.get("_value").is_some(), "{}: {at}", i.name);
        }
    }
    for e in &empty {
        let own: Vec<&String> =
            node(&d, e).as_object().expect("an object").keys().filter(|k| k.starts_with('_')).collect();
        assert_eq!(own, ["_object", "_timestamp", "_writable"], "{e}");
    }

    // A row listed (getParameterNames of the whole table: its parameters known, never read),
    // then gone from the device: the next listing forgets it and all below it.
    let (table, n) = empty
        .iter()
        .find_map(|o| sim.with_model_mut(|m| m.root_mut().add_object_internal(o).ok()).map(|n| (*o, n)))
        .expect("a table");
    let row = format!("{table}{n}.");
    let whole = json!({"name": "getParameterNames", "parameterPath": table, "nextLevel": false});
    run(&oss, &id, whole.clone()).await;
    let d = record(&oss, &id, None).await;
    let shown = node(&d, &row);
    assert_eq!((&shown["_object"], &shown["_writable"]), (&json!(true), &json!(true)), "{d}");
    let leaves: Vec<(&String, &Value)> =
        shown.as_object().expect("a row").iter().filter(|(k, _)| !k.starts_with('_')).collect();
    assert!(!leaves.is_empty(), "{shown}");
    for (k, leaf) in &leaves {
        assert_eq!(leaf["_object"], json!(false), "{k}");
        assert!(leaf.get("_writable").is_some() && leaf.get("_value").is_none(), "listed, not read: {k}: {leaf}");
    }
    sim.with_model_mut(|m| m.root_mut().delete_object_internal(&row)).expect("deleted on the device");
    run(&oss, &id, whole).await;
    let d = record(&oss, &id, None).await;
    assert!(node(&d, table).get(n.to_string()).is_none(), "forgotten: {}", node(&d, table));
    assert_eq!(node(&d, table)["_object"], json!(true), "the table stays");
}
