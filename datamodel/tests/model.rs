//! TR-069 data-model semantics of `Tree` and `DataModel`, on the host, vRGW and TR-098 profiles.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use cwmp::{FaultCode, Notification, ParameterValue, SetParameterAttribute, Value};
use datamodel::{DataModel, Schema, Tree};

const POOLS: &str = "Device.DHCPv4.Server.Pool.";
const INSTANCES: &str = "Device.X_VRGW-ORG_Virtualization.Instance.";

fn vrgw() -> DataModel {
    DataModel::new(Tree::new(Schema::vrgw()))
}

fn host() -> DataModel {
    DataModel::new(Tree::new(Schema::host()))
}

fn get(m: &DataModel, path: &str) -> Value {
    let mut v = m.get_parameter_values(&[path.to_string()]).unwrap_or_else(|f| panic!("{path}: {f}"));
    assert_eq!(v.len(), 1, "{path}");
    v.remove(0).value
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn pv(name: &str, v: Value) -> ParameterValue {
    ParameterValue::new(name, v)
}

#[test]
fn profiles_come_from_the_bbf_definitions() {
    let v = Schema::vrgw();
    let min = v.param("Device.DHCPv4.Server.Pool.{i}.MinAddress").expect("MinAddress");
    assert_eq!(min.data_type.as_deref(), Some("IPv4Address"));
    assert_eq!(min.access, datamodel::schema::Access::ReadWrite);
    let lease = v.param("Device.DHCPv4.Server.Pool.{i}.LeaseTime").expect("LeaseTime");
    assert_eq!(lease.ty, cwmp::XsdType::Int);
    assert_eq!(lease.ranges, vec![(Some(-1), None)]);
    assert_eq!(v.param("Device.WiFi.SSID.{i}.SSID").and_then(|p| p.size), Some((None, Some(32))));
    assert!(v
        .param("Device.WiFi.AccessPoint.{i}.Security.ModeEnabled")
        .is_some_and(|p| p.enums.contains(&"WPA2-Personal".to_string())));
    assert!(v.object("Device.DHCPv4.Server.Pool.{i}.StaticAddress.{i}.").is_some());
    assert!(v.object("Device.ManagementServer.").is_none(), "the vRGW profile has no ManagementServer");
    let h = Schema::host();
    assert!(h.object("Device.ManagementServer.EmbeddedDevice.{i}.").is_some());
    assert!(h.object("Device.Ethernet.VLANTermination.{i}.").is_some());
    assert!(h.object(datamodel::INSTANCE_MOUNT).is_some_and(|o| o.mount));
    assert!(h.param("Device.DHCPv4.Server.PoolNumberOfEntries").is_none());
    // NumberOfEntries of tables outside the profile are dropped.
    assert!(h.param("Device.DeviceInfo.ProcessorNumberOfEntries").is_none());
}

#[test]
fn add_and_delete_objects_keep_numbers_and_counts_true() {
    let mut m = vrgw();
    assert_eq!(get(&m, "Device.DHCPv4.Server.PoolNumberOfEntries"), Value::UnsignedInt(0));
    assert_eq!(m.add_object(POOLS, "k1"), Ok(1));
    assert_eq!(m.add_object(POOLS, "k2"), Ok(2));
    assert_eq!(get(&m, "Device.DHCPv4.Server.PoolNumberOfEntries"), Value::UnsignedInt(2));
    assert_eq!(get(&m, "Device.DHCPv4.Server.Pool.2.Alias"), s("cpe-2"));
    assert_eq!(get(&m, "Device.DHCPv4.Server.Pool.2.LeaseTime"), Value::Int(86400));
    assert_eq!(m.add_object("Device.DHCPv4.Server.Pool.2.StaticAddress.", "k3"), Ok(1));
    assert_eq!(get(&m, "Device.DHCPv4.Server.Pool.2.StaticAddressNumberOfEntries"), Value::UnsignedInt(1));
    m.delete_object("Device.DHCPv4.Server.Pool.2.", "k4").expect("delete");
    assert_eq!(m.parameter_key(), "k4");
    assert_eq!(get(&m, "Device.DHCPv4.Server.PoolNumberOfEntries"), Value::UnsignedInt(1));
    assert_eq!(m.add_object(POOLS, "k5"), Ok(3), "instance numbers are never reused");
    let err = m.get_parameter_values(&["Device.DHCPv4.Server.Pool.2.Enable".into()]).expect_err("gone");
    assert_eq!(err.code, FaultCode::InvalidParameterName);
    assert!(m.get_parameter_values(&["Device.DHCPv4.Server.Pool.2.StaticAddress.1.Yiaddr".into()]).is_err());
    for bad in ["Device.DHCPv4.Server.Pool.2.", "Device.DHCPv4.Server.", "Device.DHCPv4.Server.Pool.1.Enable"] {
        assert_eq!(m.delete_object(bad, "x").map_err(|f| f.code), Err(FaultCode::InvalidParameterName), "{bad}");
    }
    for bad in [
        "Device.DHCPv4.Server.Pool.1.",
        "Device.DeviceInfo.",
        "Device.Nope.",
        "Device.DHCPv4.Server.Pool.7.StaticAddress.",
    ] {
        assert_eq!(m.add_object(bad, "x").map_err(|f| f.code), Err(FaultCode::InvalidParameterName), "{bad}");
    }
    assert_eq!(m.parameter_key(), "k5", "failed operations change no key");
}

#[test]
fn get_parameter_names_both_levels() {
    let mut m = vrgw();
    m.add_object(POOLS, "").expect("add");
    let next = m.get_parameter_names("Device.DHCPv4.Server.", true).expect("names");
    let names: Vec<_> = next.iter().map(|p| (p.name.as_str(), p.writable)).collect();
    assert!(names.contains(&("Device.DHCPv4.Server.Enable", true)));
    assert!(names.contains(&("Device.DHCPv4.Server.PoolNumberOfEntries", false)));
    assert!(names.contains(&("Device.DHCPv4.Server.Pool.", true)));
    assert!(!names.iter().any(|(n, _)| n.contains("Pool.1")), "next level stops at the table");
    let table = m.get_parameter_names(POOLS, true).expect("table");
    assert_eq!(table.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["Device.DHCPv4.Server.Pool.1."]);
    let all = m.get_parameter_names("Device.DHCPv4.Server.", false).expect("all");
    assert_eq!(all[0].name, "Device.DHCPv4.Server.");
    assert!(all.iter().any(|p| p.name == "Device.DHCPv4.Server.Pool.1.MinAddress" && p.writable));
    assert!(all.iter().any(|p| p.name == "Device.DHCPv4.Server.Pool.1.StaticAddress."));
    let one = m.get_parameter_names("Device.DeviceInfo.UpTime", false).expect("one");
    assert_eq!(one.len(), 1);
    assert_eq!(
        m.get_parameter_names("Device.DeviceInfo.UpTime", true).map_err(|f| f.code),
        Err(FaultCode::InvalidArguments)
    );
    assert_eq!(m.get_parameter_names("Device.Nope.", true).map_err(|f| f.code), Err(FaultCode::InvalidParameterName));
    let root = m.get_parameter_names("", true).expect("root");
    assert_eq!(root[0].name, "Device.");
    let everything = m.get_parameter_names("", false).expect("everything");
    assert!(everything.len() > 100, "{}", everything.len());
    assert!(everything.iter().any(|p| p.name == "Device.DHCPv4.Server.Pool.1.StaticAddress."));
}

#[test]
fn set_parameter_values_is_all_or_nothing_with_precise_faults() {
    let mut m = vrgw();
    m.add_object(POOLS, "").expect("add");
    let p = "Device.DHCPv4.Server.Pool.1.";
    let before = m.get_parameter_values(&[p.into()]).expect("before");
    let err = m
        .set_parameter_values(
            &[
                pv(&format!("{p}MinAddress"), s("192.168.1.10")),
                pv(&format!("{p}MaxAddress"), s("192.168.1.300")),
                pv(&format!("{p}Enable"), Value::DateTime(cwmp::DateTime::unknown())),
                pv(&format!("{p}Status"), s("Enabled")),
                pv(&format!("{p}Nope"), s("x")),
                pv(&format!("{p}LeaseTime"), Value::Int(-5)),
            ],
            "bad",
        )
        .expect_err("refused");
    assert_eq!(err.code, FaultCode::InvalidArguments);
    let codes: Vec<_> = err
        .set_parameter_values_faults
        .iter()
        .map(|f| (f.parameter_name.rsplit('.').next().unwrap_or(""), f.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("MaxAddress", FaultCode::InvalidParameterValue),
            ("Enable", FaultCode::InvalidParameterType),
            ("Status", FaultCode::NonWritableParameter),
            ("Nope", FaultCode::InvalidParameterName),
            ("LeaseTime", FaultCode::InvalidParameterValue),
        ]
    );
    assert_eq!(m.get_parameter_values(&[p.into()]).expect("after"), before, "nothing changed");
    assert_eq!(m.parameter_key(), "");

    // Strings carrying valid lexical forms are accepted and stored typed.
    m.set_parameter_values(
        &[
            pv(&format!("{p}MinAddress"), s("192.168.1.10")),
            pv(&format!("{p}LeaseTime"), s("3600")),
            pv(&format!("{p}Enable"), s("true")),
            pv(&format!("{p}DNSServers"), s("192.168.1.1, 9.9.9.9")),
        ],
        "good",
    )
    .expect("applied");
    assert_eq!(get(&m, &format!("{p}LeaseTime")), Value::Int(3600));
    assert_eq!(get(&m, &format!("{p}Enable")), Value::Boolean(true));
    assert_eq!(m.parameter_key(), "good");
    let too_many = m
        .set_parameter_values(&[pv(&format!("{p}DNSServers"), s("1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5"))], "x")
        .expect_err("list too long");
    assert_eq!(too_many.set_parameter_values_faults[0].code, FaultCode::InvalidParameterValue);
    let twice = m
        .set_parameter_values(
            &[pv(&format!("{p}Enable"), Value::Boolean(true)), pv(&format!("{p}Enable"), Value::Boolean(false))],
            "x",
        )
        .expect_err("named twice");
    assert_eq!(twice.set_parameter_values_faults[0].code, FaultCode::InvalidArguments);
}

#[test]
fn write_once_alias_and_unique_keys() {
    let mut m = host();
    m.add_object(INSTANCES, "").expect("1");
    m.add_object(INSTANCES, "").expect("2");
    let i1 = "Device.X_VRGW-ORG_Virtualization.Instance.1.";
    let i2 = "Device.X_VRGW-ORG_Virtualization.Instance.2.";
    m.set_parameter_values(&[pv(&format!("{i1}Alias"), s("home-42"))], "").expect("alias once");
    let again = m.set_parameter_values(&[pv(&format!("{i1}Alias"), s("home-43"))], "").expect_err("twice");
    assert_eq!(again.set_parameter_values_faults[0].code, FaultCode::NonWritableParameter);
    let bad_alias = m.set_parameter_values(&[pv(&format!("{i2}Alias"), s("7home"))], "").expect_err("alias syntax");
    assert_eq!(bad_alias.set_parameter_values_faults[0].code, FaultCode::InvalidParameterValue);

    m.set_parameter_values(
        &[
            pv(&format!("{i1}SVLAN"), Value::UnsignedInt(100)),
            pv(&format!("{i1}CVLAN"), Value::UnsignedInt(7)),
            pv(&format!("{i1}Subscriber"), s("alice")),
        ],
        "",
    )
    .expect("first binding");
    let clash = m
        .set_parameter_values(
            &[pv(&format!("{i2}SVLAN"), Value::UnsignedInt(100)), pv(&format!("{i2}CVLAN"), Value::UnsignedInt(7))],
            "",
        )
        .expect_err("VLAN conflict");
    assert!(clash.set_parameter_values_faults.iter().all(|f| f.code == FaultCode::InvalidParameterValue));
    assert!(clash.set_parameter_values_faults[0].string.contains("SVLAN+CVLAN must be unique"), "{clash:?}");
    assert_eq!(get(&m, &format!("{i2}SVLAN")), Value::UnsignedInt(0));
    let dup = m.set_parameter_values(&[pv(&format!("{i2}Subscriber"), s("alice"))], "").expect_err("subscriber twice");
    assert_eq!(dup.set_parameter_values_faults[0].code, FaultCode::InvalidParameterValue);
    m.set_parameter_values(
        &[pv(&format!("{i2}SVLAN"), Value::UnsignedInt(100)), pv(&format!("{i2}CVLAN"), Value::UnsignedInt(8))],
        "",
    )
    .expect("another C-VLAN is fine");
    let range = m.set_parameter_values(&[pv(&format!("{i2}CVLAN"), Value::UnsignedInt(4095))], "").expect_err("range");
    assert!(range.set_parameter_values_faults[0].string.contains("outside 0..4094"));
}

#[test]
fn notifications_track_value_changes_and_refuse_denied_active() {
    let mut m = host();
    let key = "Device.ManagementServer.ParameterKey";
    m.add_object(INSTANCES, "").expect("add");
    let status = "Device.X_VRGW-ORG_Virtualization.Instance.1.Status";
    let subscriber = "Device.X_VRGW-ORG_Virtualization.Instance.1.Subscriber";
    m.set_parameter_attributes(&[
        SetParameterAttribute {
            name: status.into(),
            notification_change: true,
            notification: Notification::Active,
            access_list_change: false,
            access_list: vec![],
        },
        SetParameterAttribute {
            name: subscriber.into(),
            notification_change: true,
            notification: Notification::Passive,
            access_list_change: true,
            access_list: vec!["Subscriber".into()],
        },
    ])
    .expect("attributes");
    assert_eq!(m.poll_value_changes(), datamodel::ValueChanges::default());
    m.root_mut().set_internal(status, s("Running")).expect("internal update");
    let ch = m.poll_value_changes();
    assert!(ch.active);
    assert_eq!(ch.changed, vec![pv(status, s("Running"))]);
    assert!(m.poll_value_changes().changed.is_empty(), "reported once");
    // The ACS's own change is not reported back; an internal one on a passive parameter is, without urgency.
    m.set_parameter_values(&[pv(subscriber, s("bob"))], "spv-7").expect("set");
    assert!(m.poll_value_changes().changed.is_empty());
    assert_eq!(get(&m, key), s("spv-7"));
    m.root_mut().set_internal(subscriber, s("carol")).expect("internal");
    let ch = m.poll_value_changes();
    assert!(!ch.active);
    assert_eq!(ch.changed.len(), 1);

    let attrs = m.get_parameter_attributes(&[subscriber.into()]).expect("get attrs");
    assert_eq!(attrs[0].notification, Notification::Passive);
    assert_eq!(attrs[0].access_list, vec!["Subscriber".to_string()]);
    let denied = m.set_parameter_attributes(&[SetParameterAttribute {
        name: "Device.X_VRGW-ORG_Virtualization.Instance.1.CPUTime".into(),
        notification_change: true,
        notification: Notification::Active,
        access_list_change: false,
        access_list: vec![],
    }]);
    assert_eq!(denied.map_err(|f| f.code), Err(FaultCode::NotificationRequestRejected));
    let bad = m.set_parameter_attributes(&[SetParameterAttribute {
        name: "Device.Nope".into(),
        notification_change: true,
        notification: Notification::Passive,
        access_list_change: false,
        access_list: vec![],
    }]);
    assert_eq!(bad.map_err(|f| f.code), Err(FaultCode::InvalidParameterName));
}

#[test]
fn vrgw_models_mount_into_the_host_model() {
    let mut m = host();
    assert_eq!(m.add_object(INSTANCES, ""), Ok(1));
    let mount = "Device.X_VRGW-ORG_Virtualization.Instance.1.Device.";
    let mut inner = Tree::new(Schema::vrgw());
    inner.add_object(POOLS).expect("pool");
    m.mount(mount, Box::new(inner));
    let pool = format!("{mount}DHCPv4.Server.Pool.1.");
    assert_eq!(get(&m, &format!("{pool}Alias")), s("cpe-1"));
    let all = m.get_parameter_values(&["Device.".into()]).expect("everything");
    assert!(all.iter().any(|p| p.name == format!("{pool}MinAddress")));
    assert!(all.iter().any(|p| p.name == "Device.X_VRGW-ORG_Virtualization.Instance.1.Status"));
    let names = m.get_parameter_names("Device.X_VRGW-ORG_Virtualization.Instance.1.", true).expect("names");
    assert!(names.iter().any(|p| p.name == mount));
    let deep = m.get_parameter_names(mount, true).expect("into the mount");
    assert!(deep.iter().any(|p| p.name == format!("{mount}DHCPv4.")));
    let below = m.get_parameter_names(INSTANCES, false).expect("all below");
    assert_eq!(below.iter().filter(|p| p.name == mount).count(), 1);
    assert!(below.iter().any(|p| p.name == format!("{pool}LeaseTime")));

    // A set spanning the host and the vRGW: a bad vRGW value refuses the host's too.
    let sub = "Device.X_VRGW-ORG_Virtualization.Instance.1.Subscriber";
    let err = m
        .set_parameter_values(&[pv(sub, s("dave")), pv(&format!("{pool}MinAddress"), s("not-an-ip"))], "x")
        .expect_err("refused");
    assert_eq!(err.set_parameter_values_faults.len(), 1);
    assert_eq!(err.set_parameter_values_faults[0].parameter_name, format!("{pool}MinAddress"));
    assert_eq!(get(&m, sub), s(""));
    m.set_parameter_values(&[pv(sub, s("dave")), pv(&format!("{pool}MinAddress"), s("10.0.0.10"))], "y").expect("both");
    assert_eq!(get(&m, &format!("{pool}MinAddress")), s("10.0.0.10"));
    assert_eq!(m.add_object(&format!("{pool}StaticAddress."), "z"), Ok(1));
    m.delete_object("Device.X_VRGW-ORG_Virtualization.Instance.1.", "w").expect("delete instance");
    assert_eq!(m.mounts().count(), 0, "the mount goes with its instance");
    assert!(m.get_parameter_values(&[format!("{pool}MinAddress")]).is_err());
}

#[test]
fn live_getters_serve_current_values() {
    let ticks = Arc::new(AtomicU32::new(5));
    let mut t = Tree::new(Schema::vrgw());
    let src = ticks.clone();
    t.bind_getter("Device.DeviceInfo.UpTime", Arc::new(move |_| Some(Value::UnsignedInt(src.load(Ordering::SeqCst)))));
    let m = DataModel::new(t);
    assert_eq!(get(&m, "Device.DeviceInfo.UpTime"), Value::UnsignedInt(5));
    ticks.store(6, Ordering::SeqCst);
    assert_eq!(get(&m, "Device.DeviceInfo.UpTime"), Value::UnsignedInt(6));
    let all = m.get_parameter_values(&["Device.DeviceInfo.".into()]).expect("partial");
    assert!(all.contains(&pv("Device.DeviceInfo.UpTime", Value::UnsignedInt(6))));
}

#[test]
fn snapshots_restore_and_refuse_damage() {
    let mut t = Tree::new(Schema::vrgw());
    t.add_object(POOLS).expect("1");
    t.add_object(POOLS).expect("2");
    t.delete_object("Device.DHCPv4.Server.Pool.1.").expect("delete");
    let v = t.validate(&[pv("Device.DHCPv4.Server.Pool.2.Alias", s("lan"))]).expect("valid");
    t.apply(v);
    let json = serde_json::to_string(&t.snapshot()).expect("serialize");
    let snap: datamodel::tree::Snapshot = serde_json::from_str(&json).expect("deserialize");
    let mut back = Tree::restore(Schema::vrgw(), snap).expect("restore");
    assert_eq!(back.snapshot(), t.snapshot());
    assert_eq!(back.add_object(POOLS), Ok(3), "the next instance number survives");
    assert!(back.validate(&[pv("Device.DHCPv4.Server.Pool.2.Alias", s("again"))]).is_err(), "write-once survives");
    let damaged = json.replace("\"unsignedInt\",\"value\":0", "\"string\",\"value\":\"0\"");
    assert_ne!(damaged, json);
    let err = Tree::restore(Schema::vrgw(), serde_json::from_str(&damaged).expect("json")).expect_err("typed wrong");
    assert!(err.contains("stored as xsd:string"), "{err}");
    // Read-only tables take rows from inside the device only.
    assert!(back.add_object("Device.Hosts.Host.").is_err());
    assert_eq!(back.add_object_internal("Device.Hosts.Host."), Ok(1));
    back.delete_object_internal("Device.Hosts.Host.1.").expect("internal delete");
}

#[test]
fn hidden_parameters_read_as_empty_strings() {
    let mut m = datamodel::DataModel::new(datamodel::Tree::new(datamodel::Schema::host()));
    let pw = "Device.ManagementServer.ConnectionRequestPassword";
    let r = m.set_parameter_values(&[cwmp::ParameterValue::new(pw, cwmp::Value::String("s3cret-pass".into()))], "k");
    assert_eq!(r, Ok(0));
    let got = m.get_parameter_values(&[pw.to_string()]).expect("get");
    assert_eq!(got[0].value, cwmp::Value::String(String::new()), "a password never leaves the device");
    let all = m.get_parameter_values(&["Device.ManagementServer.".to_string()]).expect("get");
    assert!(all.iter().all(|p| p.value != cwmp::Value::String("s3cret-pass".into())));
    // The device itself still knows it (to check connection requests).
    assert_eq!(m.root().value(pw), Some(cwmp::Value::String("s3cret-pass".into())));
}

/// A vRGW tree that counts how often it is asked to validate and to apply.
struct Counting {
    tree: Tree,
    validated: Arc<AtomicU32>,
    applied: Arc<AtomicU32>,
}

impl datamodel::Handler for Counting {
    fn get(&self, path: &str) -> Result<Vec<ParameterValue>, cwmp::Fault> {
        self.tree.get(path)
    }
    fn names(&self, path: &str, next_level: bool) -> Result<Vec<cwmp::ParameterInfo>, cwmp::Fault> {
        self.tree.names(path, next_level)
    }
    fn validate_set(&self, values: &[ParameterValue]) -> Result<Vec<ParameterValue>, Vec<cwmp::ParameterFault>> {
        self.validated.fetch_add(1, Ordering::SeqCst);
        datamodel::Handler::validate_set(&self.tree, values)
    }
    fn apply_set(&mut self, values: &[ParameterValue]) -> Result<(), cwmp::Fault> {
        self.applied.fetch_add(1, Ordering::SeqCst);
        datamodel::Handler::apply_set(&mut self.tree, values)
    }
    fn add_object(&mut self, table: &str) -> Result<u32, cwmp::Fault> {
        self.tree.add_object(table)
    }
    fn delete_object(&mut self, object: &str) -> Result<(), cwmp::Fault> {
        self.tree.delete_object(object)
    }
}

#[test]
fn a_set_is_validated_once_into_a_plan_that_its_application_consumes() {
    let mut m = host();
    let (validated, applied) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut mounts = Vec::new();
    for n in 1..=2 {
        assert_eq!(m.add_object(INSTANCES, ""), Ok(n));
        let mut tree = Tree::new(Schema::vrgw());
        tree.add_object(POOLS).expect("pool");
        let mount = format!("{INSTANCES}{n}.Device.");
        m.mount(&mount, Box::new(Counting { tree, validated: validated.clone(), applied: applied.clone() }));
        mounts.push(mount);
    }
    let lease = |i: usize| format!("{}DHCPv4.Server.Pool.1.LeaseTime", mounts[i]);
    let sub = format!("{INSTANCES}1.Subscriber");
    // The ACS's string for an int: the plan holds it in the parameter's type.
    let values = [pv(&lease(0), s("600")), pv(&lease(1), Value::UnsignedInt(700)), pv(&sub, s("erin"))];
    let plan = m.plan_set(&values, "p1").expect("valid");
    assert_eq!(validated.load(Ordering::SeqCst), 2, "one validation per mount");
    let parts: Vec<(String, Vec<ParameterValue>)> =
        plan.mount_parts().iter().map(|p| (p.prefix.clone(), p.values.clone())).collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].1, vec![pv("Device.DHCPv4.Server.Pool.1.LeaseTime", Value::Int(600))]);
    assert_eq!(plan.mount_parts()[1].outer("Device.X"), format!("{}X", mounts[1]));
    assert_eq!(m.apply_set(plan), Ok(0));
    assert_eq!((validated.load(Ordering::SeqCst), applied.load(Ordering::SeqCst)), (2, 2), "not validated again");
    assert_eq!(get(&m, &lease(0)), Value::Int(600));
    assert_eq!(get(&m, &sub), s("erin"));
    assert_eq!(m.parameter_key(), "p1");

    // A caller may apply the mounts' parts itself (all at once); when it fails, neither the
    // root's values nor the key change.
    let plan = m.plan_set(&[pv(&lease(1), Value::UnsignedInt(800)), pv(&sub, s("frank"))], "p2").expect("valid");
    let fault = m
        .apply_set_with(plan, |plan| {
            let name = plan.mount_parts()[0].outer("Device.DHCPv4.Server.Pool.1.LeaseTime");
            Err(plan.refused(vec![cwmp::ParameterFault {
                parameter_name: name,
                code: FaultCode::InvalidParameterValue,
                string: "refused by the device".into(),
            }]))
        })
        .expect_err("refused");
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    assert_eq!(fault.string, "1 of 2 parameters refused; nothing was changed");
    assert_eq!(fault.set_parameter_values_faults[0].parameter_name, lease(1));
    assert_eq!((get(&m, &sub), m.parameter_key()), (s("erin"), "p1"));
    assert_eq!(applied.load(Ordering::SeqCst), 2, "the caller applied nothing");

    // A refused value in one mount: the plan is refused whole, nothing applied anywhere.
    let bad = m.plan_set(&[pv(&lease(0), s("900")), pv(&lease(1), s("soon"))], "p3").expect_err("refused");
    assert_eq!(bad.set_parameter_values_faults.len(), 1);
    assert_eq!(bad.set_parameter_values_faults[0].parameter_name, lease(1));
    assert_eq!(applied.load(Ordering::SeqCst), 2);
    assert_eq!(get(&m, &lease(0)), Value::Int(600));
}

#[test]
fn tr098_gateway_sets_keys_reads_hidden_and_adds_connections() {
    let mut m = DataModel::new(datamodel::factory::tr098_gateway("GW-1", "4.2.1").expect("factory"));
    let wlan = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.";
    let key = format!("{wlan}PreSharedKey.1.PreSharedKey");
    let psk = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let status =
        m.set_parameter_values(&[pv(&format!("{wlan}SSID"), s("home-net")), pv(&key, s(psk))], "set-1").expect("set");
    assert_eq!(status, 0);
    // The ParameterKey is the TR-098 root's.
    assert_eq!(get(&m, "InternetGatewayDevice.ManagementServer.ParameterKey"), s("set-1"));
    assert_eq!(get(&m, &format!("{wlan}SSID")), s("home-net"));
    // A key reads back empty; the device holds it.
    assert_eq!(get(&m, &key), s(""));
    assert_eq!(m.root().value(&key), Some(s(psk)));
    // A bad value changes nothing: the SSID is at most 32 characters.
    let f = m.set_parameter_values(&[pv(&format!("{wlan}SSID"), s(&"x".repeat(33)))], "set-2").expect_err("too long");
    assert_eq!(f.code, FaultCode::InvalidArguments);
    assert_eq!(get(&m, "InternetGatewayDevice.ManagementServer.ParameterKey"), s("set-1"));
    // AddObject of a PPP connection beside the IP one; the count follows.
    let cd = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.";
    assert_eq!(m.add_object(&format!("{cd}WANPPPConnection."), "add-1").expect("add"), 1);
    assert_eq!(get(&m, &format!("{cd}WANPPPConnectionNumberOfEntries")), Value::UnsignedInt(1));
    assert_eq!(get(&m, &format!("{cd}WANIPConnectionNumberOfEntries")), Value::UnsignedInt(1));
    // Tables TR-098 makes read-only refuse AddObject.
    let f = m.add_object(&format!("{wlan}PreSharedKey."), "add-2").expect_err("fixed rows");
    assert_eq!(f.code, FaultCode::InvalidParameterName);
    // The whole tree reads from the root, every name under it.
    let all = m.get_parameter_values(&["InternetGatewayDevice.".into()]).expect("all");
    assert!(all.len() > 200, "{}", all.len());
    assert!(all.iter().all(|p| p.name.starts_with("InternetGatewayDevice.")));
}
