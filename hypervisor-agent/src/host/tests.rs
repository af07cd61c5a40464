//! The host against real libvirt (its test driver, in this process) and real Open vSwitch.

use super::*;
use crate::compute::{DomState, Libvirt};
use crate::vlan::{Binding, Ovs};
use cwmp::{AddObject, Body, DeleteObject, GetParameterValues, ParameterValue, SetParameterValues};

// The tables as the wire spells them (the code under test builds them from the generated
// `datamodel::virtualization` paths; these stay literal so that a wrong generation shows).
const TEMPLATE: &str = "Device.X_VRGW-ORG_Virtualization.Template.";
const POOL: &str = "Device.X_VRGW-ORG_Virtualization.Pool.";
const INSTANCE: &str = "Device.X_VRGW-ORG_Virtualization.Instance.";

/// Alias, VLANID, TPID, LowerLayers of a VLAN termination row.
type VlanRow = (String, u32, u32, String);

struct Bed {
    host: Host,
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    agent: String,
    lv: Arc<Libvirt>,
    ovs: Arc<Ovs>,
}

fn cfg(agent: &str, dir: &std::path::Path) -> HostConfig {
    HostConfig {
        agent_id: agent.into(),
        domain_type: "test".into(),
        container_type: Some("test".into()),
        mgmt_bridge: "vrgw-mgmt".into(),
        mgmt_base: Ipv4Addr::new(10, 99, 0, 0),
        mgmt_prefix: 16,
        wan_bridge: "vrgw-wan".into(),
        overlay_dir: dir.join("overlays"),
        secret_dir: dir.join("secrets"),
        secret_owner: None,
        tb_cache_mib: None,
        proxy_port: 8730,
        port_prefix: agent.into(),
        migration_uri: Some("test:///default".into()),
        // The second is on the list and answers nothing (nothing listens on port 1).
        migration_peers: vec!["test:///default".into(), "qemu+tcp://127.0.0.1:1/system".into()],
        proxy_deadlines: Default::default(),
        pool_warmup: None,
        console_log_dir: None,
    }
}

/// A host named `agent` (also its switch prefix), its store in a fresh folder.
fn bed(agent: &str) -> Bed {
    bed_with(agent, |_| {})
}

/// The same with its settings changed by `tweak`.
fn bed_with(agent: &str, tweak: fn(&mut HostConfig)) -> Bed {
    let dir = std::env::temp_dir().join(format!("hv-host-{agent}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let ovs = Arc::new(Ovs::new(agent, None));
    for br in ["trunk", "park", "s100", "s200"] {
        let _ =
            std::process::Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{agent}-{br}")]).status();
    }
    let lv = Arc::new(Libvirt::open("test:///default").expect("libvirt test driver"));
    let state = State::open(&dir.join("agent.db")).expect("state");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let mut c = cfg(agent, &dir);
    tweak(&mut c);
    let host = Host::open(c, state, lv.clone(), ovs.clone(), rt.handle().clone()).expect("host");
    Bed { host, rt, dir, agent: agent.into(), lv, ovs }
}

impl Bed {
    fn reopen(self) -> Bed {
        self.reopen_with(|_| {})
    }

    fn reopen_with(self, tweak: fn(&mut HostConfig)) -> Bed {
        let Bed { host, rt, dir, agent, lv, ovs } = self;
        drop(host);
        let state = State::open(&dir.join("agent.db")).expect("state");
        let mut c = cfg(&agent, &dir);
        tweak(&mut c);
        let host = Host::open(c, state, lv.clone(), ovs.clone(), rt.handle().clone()).expect("host");
        Bed { host, rt, dir, agent, lv, ovs }
    }

    fn add(&mut self, table: &str) -> u32 {
        match self.host.handle(&Body::AddObject(AddObject { object_name: table.into(), parameter_key: "k".into() })) {
            Body::AddObjectResponse(r) => r.instance_number,
            other => panic!("AddObject {table}: {other:?}"),
        }
    }

    fn set(&mut self, values: &[(&str, Value)]) -> Body {
        self.host.handle(&Body::SetParameterValues(SetParameterValues {
            parameter_list: values.iter().map(|(n, v)| ParameterValue::new(*n, v.clone())).collect(),
            parameter_key: "k".into(),
        }))
    }

    fn get(&mut self, name: &str) -> Value {
        match self.host.handle(&Body::GetParameterValues(GetParameterValues { parameter_names: vec![name.into()] })) {
            Body::GetParameterValuesResponse(mut r) => r.parameter_list.remove(0).value,
            other => panic!("GPV {name}: {other:?}"),
        }
    }

    fn s(&mut self, name: &str) -> String {
        match self.get(name) {
            Value::String(s) => s,
            other => panic!("{name} is {other:?}"),
        }
    }

    fn u(&mut self, name: &str) -> u32 {
        match self.get(name) {
            Value::UnsignedInt(n) => n,
            other => panic!("{name} is {other:?}"),
        }
    }

    fn fill(&mut self) {
        for _ in 0..100 {
            if !self.host.pool_step().expect("pool step") {
                return;
            }
        }
        panic!("the pool never settled");
    }

    /// A template and an enabled pool of it with `size` suspended instances.
    fn template_and_pool(&mut self, size: u32) -> (u32, u32) {
        let t = self.add(TEMPLATE);
        let pool = self.add(POOL);
        let tp = format!("{TEMPLATE}{t}");
        let r = self.set(&[
            (&format!("{tp}.Name"), Value::String("openwrt-like".into())),
            (&format!("{tp}.Image"), Value::String("/var/lib/vrgw/images/base".into())),
            (&format!("{tp}.MemoryKiB"), Value::UnsignedInt(98304)),
            (&format!("{POOL}{pool}.Template"), Value::String(tp.clone())),
            (&format!("{POOL}{pool}.TargetSize"), Value::UnsignedInt(size)),
            (&format!("{POOL}{pool}.Enable"), Value::Boolean(true)),
        ]);
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
        self.fill();
        (t, pool)
    }

    /// (Alias, VLANID, TPID, LowerLayers) of every VLAN termination row, and the embedded
    /// devices' references.
    fn topology(&mut self) -> (Vec<VlanRow>, Vec<String>) {
        let vt = "Device.Ethernet.VLANTermination.";
        let mut rows = Vec::new();
        for i in self.host.model.root().instances(vt) {
            let p = format!("{vt}{i}.");
            let lower = self.s(&format!("{p}LowerLayers"));
            let lower = match lower.strip_prefix(vt) {
                Some(n) => format!("vt:{}", self.s(&format!("{vt}{n}.Alias"))),
                None => lower,
            };
            rows.push((
                self.s(&format!("{p}Alias")),
                self.u(&format!("{p}VLANID")),
                self.u(&format!("{p}TPID")),
                lower,
            ));
        }
        rows.sort();
        let ed = "Device.ManagementServer.EmbeddedDevice.";
        let mut refs: Vec<String> =
            self.host.model.root().instances(ed).into_iter().map(|i| self.s(&format!("{ed}{i}.Reference"))).collect();
        refs.sort();
        (rows, refs)
    }

    fn owned(&self) -> Vec<(String, DomState)> {
        self.lv.owned(&self.agent).expect("owned").into_iter().map(|d| (d.name, d.state)).collect()
    }

    fn bindings(&self) -> Vec<Binding> {
        self.ovs.bindings().expect("bindings")
    }

    fn clean(self) {
        clean_after(&self.lv, &self.agent, &self.dir);
    }
}

/// Removes what host `agent` left: its domains, its bridges, its folder.
fn clean_after(lv: &Libvirt, agent: &str, dir: &std::path::Path) {
    for d in lv.owned(agent).unwrap_or_default() {
        let _ = lv.undefine(&d.name);
    }
    for br in ["trunk", "park", "s100", "s200"] {
        let _ =
            std::process::Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{agent}-{br}")]).status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn fault_names(b: &Body) -> Vec<(String, u32)> {
    match b {
        Body::Fault(f) => {
            f.set_parameter_values_faults.iter().map(|p| (p.parameter_name.clone(), p.code.code())).collect()
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn pool_fills_and_drains_with_progress_in_its_parameters() {
    let mut b = bed("hvpool");
    let (_, pool) = b.template_and_pool(3);
    let pp = format!("{POOL}{pool}.");
    assert_eq!(b.u(&format!("{pp}Ready")), 3);
    assert_eq!(b.u(&format!("{pp}Suspended")), 3);
    assert_eq!(b.s(&format!("{pp}Status")), "Idle");
    assert_eq!(b.owned().iter().filter(|(_, s)| *s == DomState::Paused).count(), 3);
    // Pooled instances wait on the parking VLAN, bound to no subscriber.
    assert!(b.bindings().is_empty());
    assert!(matches!(
        b.set(&[(&format!("{pp}TargetSize"), Value::UnsignedInt(1))]),
        Body::SetParameterValuesResponse(_)
    ));
    assert_eq!(b.s(&format!("{pp}Status")), "Draining");
    b.fill();
    assert_eq!(b.u(&format!("{pp}Ready")), 1);
    assert_eq!(b.owned().len(), 1);
    assert!(matches!(b.set(&[(&format!("{pp}Enable"), Value::Boolean(false))]), Body::SetParameterValuesResponse(_)));
    b.fill();
    assert_eq!(b.s(&format!("{pp}Status")), "Disabled");
    assert!(b.owned().is_empty());
    b.clean();
}

#[test]
fn pool_instances_are_suspended_once_their_proxy_answers_and_replaced_when_it_never_does() {
    // Management addresses on loopback (slot n is 127.0.0.(n+1)), so a listener here plays the
    // booted guest's proxy.
    let mut b = bed_with("hvwarm", |c| {
        c.mgmt_base = Ipv4Addr::new(127, 0, 0, 0);
        c.mgmt_prefix = 8;
        c.proxy_port = 18730;
        c.pool_warmup = Some(std::time::Duration::from_secs(60));
    });
    let (_, pool) = b.template_and_pool(1);
    let pp = format!("{POOL}{pool}.");
    // Started, not suspended: nothing answers on 127.0.0.2:18730 yet.
    assert_eq!(b.owned(), vec![("hvwarm-1".to_string(), DomState::Running)]);
    assert_eq!(b.u(&format!("{pp}Ready")), 0);
    assert_eq!(b.s(&format!("{pp}Status")), "Filling");
    assert!(!b.host.pool_step().expect("step"), "nothing changes while the guest boots");
    let proxy = std::net::TcpListener::bind("127.0.0.2:18730").expect("listen as slot 1's proxy");
    assert!(b.host.pool_step().expect("step"));
    assert_eq!(b.owned(), vec![("hvwarm-1".to_string(), DomState::Paused)]);
    assert_eq!(b.u(&format!("{pp}Ready")), 1);
    assert_eq!(b.s(&format!("{pp}Status")), "Idle");
    drop(proxy);

    // A guest that never answers is destroyed when the warm-up time is over, and replaced.
    let mut b = b.reopen_with(|c| {
        c.mgmt_base = Ipv4Addr::new(127, 0, 0, 0);
        c.mgmt_prefix = 8;
        c.proxy_port = 18730;
        c.pool_warmup = Some(std::time::Duration::ZERO);
    });
    assert!(matches!(
        b.set(&[(&format!("{pp}TargetSize"), Value::UnsignedInt(2))]),
        Body::SetParameterValuesResponse(_)
    ));
    assert!(b.host.pool_step().expect("step"), "starts slot 2");
    assert!(b.owned().contains(&("hvwarm-2".to_string(), DomState::Running)));
    assert!(b.host.pool_step().expect("step"), "gives up on slot 2");
    assert!(!b.owned().iter().any(|(d, _)| d == "hvwarm-2"));
    assert!(b.host.pool_step().expect("step"), "starts slot 3");
    assert!(b.owned().contains(&("hvwarm-3".to_string(), DomState::Running)));
    assert_eq!(b.u(&format!("{pp}Ready")), 1, "the booted one stays pooled");
    b.clean();
}

#[test]
fn add_object_takes_a_pooled_instance_then_cold_starts_when_the_pool_is_empty() {
    let mut b = bed("hvprov");
    let (t, pool) = b.template_and_pool(1);
    let tp = format!("{TEMPLATE}{t}");
    let pooled = b.owned();
    assert_eq!(pooled.len(), 1);

    let i1 = b.add(INSTANCE);
    let ip = format!("{INSTANCE}{i1}.");
    assert_eq!(b.s(&format!("{ip}Status")), "Defining");
    let r = b.set(&[
        (&format!("{ip}Subscriber"), Value::String("sub-0001".into())),
        (&format!("{ip}Template"), Value::String(tp.clone())),
        (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{ip}CVLAN"), Value::UnsignedInt(7)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(b.s(&format!("{ip}Status")), "Running", "{}", b.s(&format!("{ip}LastError")));
    // The pooled domain itself now serves the subscriber, on its VLANs.
    assert_eq!(b.owned(), vec![(pooled[0].0.clone(), DomState::Running)]);
    let slot = b.host.state().slot_of(i1).expect("slot").expect("assigned");
    assert_eq!(b.bindings(), vec![Binding { port: format!("hvprovl{}", slot.id), svlan: 100, cvlan: 7 }]);
    assert_eq!(b.s(&format!("{ip}ManagementAddress")), slot.mgmt_address.split('/').next().expect("ip"));
    assert!(b.u(&format!("{ip}MemoryKiB")) > 0);
    assert_eq!(b.u(&format!("{POOL}{pool}.Ready")), 0, "the pool lent its instance");

    // Pool empty (and not refilled yet): the next subscriber gets a cold-started domain.
    let i2 = b.add(INSTANCE);
    let ip2 = format!("{INSTANCE}{i2}.");
    let r = b.set(&[
        (&format!("{ip2}Template"), Value::String(tp)),
        (&format!("{ip2}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{ip2}CVLAN"), Value::UnsignedInt(8)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(b.s(&format!("{ip2}Status")), "Running");
    assert_eq!(b.owned().len(), 2);
    assert_eq!(b.bindings().iter().map(|x| x.cvlan).collect::<Vec<_>>(), vec![7, 8]);
    // The trunk in TR-181 terms: the S-VLAN on the trunk, each C-VLAN stacked on it.
    let (rows, refs) = b.topology();
    let trunk = "Device.Ethernet.Interface.1".to_string();
    assert_eq!(
        rows,
        vec![
            ("cvlan-100-7".into(), 7, 0x8100, "vt:svlan-100".into()),
            ("cvlan-100-8".into(), 8, 0x8100, "vt:svlan-100".into()),
            ("svlan-100".into(), 100, 0x88A8, trunk.clone()),
        ]
    );
    assert_eq!(refs, vec![format!("{ip}Device."), format!("{ip2}Device.")]);
    b.fill();
    assert_eq!(b.u(&format!("{POOL}{pool}.Ready")), 1, "the pool refilled");
    assert_eq!(b.owned().len(), 3);

    // Requested states.
    for (want, dom) in [("Suspended", DomState::Paused), ("Stopped", DomState::ShutOff), ("Running", DomState::Running)]
    {
        assert!(matches!(
            b.set(&[(&format!("{ip}RequestedState"), Value::String(want.into()))]),
            Body::SetParameterValuesResponse(_)
        ));
        let st = b.lv.state(&slot.domain).expect("state");
        assert_eq!(st, Some(dom), "{want}");
        assert_eq!(b.s(&format!("{ip}Status")), want, "the status shows the requested state");
    }

    // Moving a subscriber to another S-VLAN rebinds its port and drops the empty S-VLAN's
    // bridge only when nothing else uses it.
    assert!(matches!(b.set(&[(&format!("{ip}SVLAN"), Value::UnsignedInt(200))]), Body::SetParameterValuesResponse(_)));
    assert!(b.bindings().contains(&Binding { port: format!("hvprovl{}", slot.id), svlan: 200, cvlan: 7 }));

    // DeleteObject destroys, undefines and frees the VLANs.
    let r = b.host.handle(&Body::DeleteObject(DeleteObject { object_name: ip.clone(), parameter_key: "k".into() }));
    assert!(matches!(r, Body::DeleteObjectResponse(_)), "{r:?}");
    assert_eq!(b.lv.state(&slot.domain).expect("state"), None);
    assert!(b.bindings().iter().all(|x| x.svlan != 200), "S-VLAN 200 had only that subscriber");
    let (rows, refs) = b.topology();
    assert_eq!(
        rows,
        vec![("cvlan-100-8".into(), 8, 0x8100, "vt:svlan-100".into()), ("svlan-100".into(), 100, 0x88A8, trunk)]
    );
    assert_eq!(refs, vec![format!("{ip2}Device.")]);
    assert_eq!(b.host.state().slot_of(i1).expect("slot"), None);
    b.clean();
}

#[test]
fn bad_sets_are_refused_whole_with_a_fault_per_parameter() {
    let mut b = bed("hvbad");
    let (t, _) = b.template_and_pool(0);
    let tp = format!("{TEMPLATE}{t}");
    let i1 = b.add(INSTANCE);
    let i2 = b.add(INSTANCE);
    let (p1, p2) = (format!("{INSTANCE}{i1}."), format!("{INSTANCE}{i2}."));
    let ok = b.set(&[
        (&format!("{p1}Template"), Value::String(tp.clone())),
        (&format!("{p1}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{p1}CVLAN"), Value::UnsignedInt(7)),
    ]);
    assert!(matches!(ok, Body::SetParameterValuesResponse(_)), "{ok:?}");
    let before = b.owned();

    // The same VLAN pair twice: 9007 on the second instance, and the first part of the set
    // (a valid subscriber for instance 1) is not applied either.
    let r = b.set(&[
        (&format!("{p1}Subscriber"), Value::String("sub-1".into())),
        (&format!("{p2}Template"), Value::String(tp.clone())),
        (&format!("{p2}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{p2}CVLAN"), Value::UnsignedInt(7)),
    ]);
    let f = fault_names(&r);
    assert!(f.iter().all(|(_, c)| *c == 9007) && f.iter().any(|(n, _)| n.starts_with(&p2)), "{f:?}");
    assert_eq!(b.s(&format!("{p1}Subscriber")), "");
    assert_eq!(b.s(&format!("{p2}Status")), "Defining");

    // A template that does not exist, an out-of-range VLAN, a bad enumeration: each named.
    let r = b.set(&[
        (&format!("{p2}Template"), Value::String(format!("{TEMPLATE}99"))),
        (&format!("{p2}CVLAN"), Value::UnsignedInt(5000)),
    ]);
    let names: Vec<String> = fault_names(&r).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec![format!("{p2}Template")], "template reference checked first");
    let r = b.set(&[
        (&format!("{p2}CVLAN"), Value::UnsignedInt(5000)),
        (&format!("{p2}RequestedState"), Value::String("Flying".into())),
    ]);
    let mut names: Vec<String> = fault_names(&r).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, vec![format!("{p2}CVLAN"), format!("{p2}RequestedState")]);
    // The template of a provisioned instance is fixed.
    let t2 = b.add(TEMPLATE);
    let r = b.set(&[(&format!("{p1}Template"), Value::String(format!("{TEMPLATE}{t2}")))]);
    assert_eq!(fault_names(&r), vec![(format!("{p1}Template"), 9007)]);
    assert_eq!(b.owned(), before, "no refused set touched a domain");
    b.clean();
}

#[test]
fn restart_finishes_interrupted_work_and_keeps_instances() {
    let mut b = bed("hvcrash");
    let (t, pool) = b.template_and_pool(2);
    let i1 = b.add(INSTANCE);
    let ip = format!("{INSTANCE}{i1}.");
    let r = b.set(&[
        (&format!("{ip}Template"), Value::String(format!("{TEMPLATE}{t}"))),
        (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{ip}CVLAN"), Value::UnsignedInt(9)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(b.s(&format!("{ip}Status")), "Running", "{}", b.s(&format!("{ip}LastError")));
    let serving = b.host.state().slot_of(i1).expect("slot").expect("assigned");
    // A crash in the middle of a pool fill: a slot recorded, its domain defined, not started.
    let half = b.host.state().new_slot("hvcrash", t, Some(pool), &|n| format!("10.99.0.{n}/16"), "x").expect("slot");
    let park =
        crate::vlan::LanNic { bridge: "hvcrash-park".into(), openvswitch: true, vlan: Some(crate::vlan::PARKING_VLAN) };
    let spec = b.host.spec(&half, &park).expect("spec");
    b.lv.define(&spec).expect("define");
    // And an owned domain the store knows nothing of (drift).
    let mut stray = spec.clone();
    stray.name = "hvcrash-stray".into();
    stray.owner.slot = 999;
    b.lv.define(&stray).expect("define stray");
    // The instance's domain vanished while the agent was down.
    b.lv.undefine(&serving.domain).expect("vanish");

    let mut b = b.reopen();
    let names: Vec<String> = b.owned().into_iter().map(|(n, _)| n).collect();
    assert!(!names.contains(&half.domain), "the half-made pooled domain was rolled back");
    assert!(!names.contains(&"hvcrash-stray".to_string()), "the stray domain was removed");
    assert_eq!(b.lv.state(&serving.domain).expect("state"), Some(DomState::Running), "the instance came back");
    assert_eq!(b.s(&format!("{ip}Status")), "Running");
    assert_eq!(b.host.state().slot_of(i1).expect("slot").map(|s| s.id), Some(serving.id), "same slot, no duplicate");
    b.fill();
    assert_eq!(b.u(&format!("{POOL}{pool}.Ready")), 2);
    // No instance lost or duplicated: one domain per slot, one slot per instance.
    let slots = b.host.state().slots().expect("slots");
    assert_eq!(slots.len(), b.owned().len());
    assert_eq!(slots.iter().filter(|s| s.instance == Some(i1)).count(), 1);
    b.clean();
}

#[test]
fn settings_before_the_vrgw_runs_live_in_its_profile_and_survive_restarts() {
    let mut b = bed("hvprof");
    let i = b.add(INSTANCE);
    let dev = format!("{INSTANCE}{i}.Device.");
    let min = format!("{dev}DHCPv4.Server.Pool.1.MinAddress");
    let ssid = format!("{dev}WiFi.SSID.1.SSID");
    let r = b.set(&[(&min, Value::String("192.168.1.50".into())), (&ssid, Value::String("home-net".into()))]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(b.s(&min), "192.168.1.50");
    // Refusals inside the mount name the host's full path.
    let r = b.set(&[(&min, Value::String("not an address".into()))]);
    assert_eq!(fault_names(&r), vec![(min.clone(), 9007)]);
    let mut b = b.reopen();
    assert_eq!(b.s(&min), "192.168.1.50", "the profile was stored");
    assert_eq!(b.s(&ssid), "home-net");
    // Deleting the instance forgets its profile.
    let r = b.host.handle(&Body::DeleteObject(DeleteObject {
        object_name: format!("{INSTANCE}{i}."),
        parameter_key: "k".into(),
    }));
    assert!(matches!(r, Body::DeleteObjectResponse(_)), "{r:?}");
    let b = b.reopen();
    assert!(b.host.state().profiles().expect("profiles").is_empty());
    b.clean();
}

#[test]
fn a_read_of_more_vrgws_than_one_answer_carries_is_refused_at_once() {
    let mut b = bed("hvbig");
    let instances: Vec<u32> = (0..3).map(|_| b.add(INSTANCE)).collect();
    // Three vRGWs' data models (their profiles: about 200 values each) exceed the tests' limit
    // of 500 parameters: refused with 9004 saying so, before any proxy is asked.
    let r = b.host.handle(&Body::GetParameterValues(GetParameterValues { parameter_names: vec![INSTANCE.into()] }));
    match r {
        Body::Fault(f) => {
            assert_eq!(f.code, cwmp::FaultCode::ResourcesExceeded);
            assert!(f.string.contains("more than the 500 one message may carry"), "{}", f.string);
        }
        other => panic!("expected 9004, got {other:?}"),
    }
    // One vRGW's is answered.
    let one = format!("{INSTANCE}{}.Device.", instances[0]);
    let r = b.host.handle(&Body::GetParameterValues(GetParameterValues { parameter_names: vec![one.clone()] }));
    let Body::GetParameterValuesResponse(r) = r else { panic!("GPV {one}: {r:?}") };
    assert!(r.parameter_list.len() > 100 && r.parameter_list.iter().all(|p| p.name.starts_with(&one)));
    b.clean();
}

#[test]
fn notification_attributes_survive_restarts() {
    let mut b = bed("hvattr");
    let (_, pool) = b.template_and_pool(0);
    let ready = format!("{POOL}{pool}.Status");
    let r = b.host.handle(&Body::SetParameterAttributes(cwmp::SetParameterAttributes {
        parameter_list: vec![cwmp::SetParameterAttribute {
            name: ready.clone(),
            notification_change: true,
            notification: cwmp::Notification::Active,
            access_list_change: false,
            access_list: vec![],
        }],
    }));
    assert!(matches!(r, Body::SetParameterAttributesResponse(_)), "{r:?}");
    let b = b.reopen();
    let attrs = b.host.model.attributes();
    assert_eq!(attrs, vec![(ready, cwmp::Notification::Active, vec![])]);
    b.clean();
}

#[test]
fn qcow2_templates_give_each_instance_an_overlay_of_the_shared_base() {
    let mut b = bed("hvimg");
    let base = b.dir.join("base.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&base)
        .arg("16M")
        .status()
        .expect("qemu-img (Debian package qemu-utils)");
    assert!(made.success());
    let t = b.add(TEMPLATE);
    let tp = format!("{TEMPLATE}{t}");
    let i = b.add(INSTANCE);
    let ip = format!("{INSTANCE}{i}.");
    let r = b.set(&[
        (&format!("{tp}.Image"), Value::String(base.display().to_string())),
        (&format!("{ip}Template"), Value::String(tp.clone())),
        (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{ip}CVLAN"), Value::UnsignedInt(9)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(b.s(&format!("{ip}Status")), "Running", "{}", b.s(&format!("{ip}LastError")));
    let slot = b.host.state().slot_of(i).expect("slot").expect("assigned");
    let overlay = b.dir.join("overlays").join(format!("{}.qcow2", slot.domain));
    let info = std::process::Command::new("qemu-img").arg("info").arg(&overlay).output().expect("qemu-img info");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&overlay).expect("overlay").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the guest's writes are the subscriber's: owner-only");
    }
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains(&format!("backing file: {}", base.display())), "{text}");
    let r = b.host.handle(&Body::DeleteObject(DeleteObject { object_name: ip, parameter_key: "k".into() }));
    assert!(matches!(r, Body::DeleteObjectResponse(_)), "{r:?}");
    assert!(!overlay.exists(), "the overlay goes with its instance");
    b.clean();
}

/// Instance `n` of `b` asks for template `t` on (s, c), as the ACS adds it on a destination.
fn incoming(b: &mut Bed, t: u32, s: u32, c: u32, mode: &str, peer: &str, peer_domain: &str) -> (u32, Body) {
    let n = b.add(INSTANCE);
    let p = format!("{INSTANCE}{n}.");
    let r = b.set(&[
        (&format!("{p}Subscriber"), Value::String(format!("sub-{c}"))),
        (&format!("{p}Template"), Value::String(format!("{TEMPLATE}{t}"))),
        (&format!("{p}SVLAN"), Value::UnsignedInt(s)),
        (&format!("{p}CVLAN"), Value::UnsignedInt(c)),
        (&format!("{p}Migration.Mode"), Value::String(mode.into())),
        (&format!("{p}Migration.Peer"), Value::String(peer.into())),
        (&format!("{p}Migration.PeerDomain"), Value::String(peer_domain.into())),
        (&format!("{p}Migration.Command"), Value::String("Prepare".into())),
    ]);
    (n, r)
}

fn command(b: &mut Bed, n: u32, mode: &str, cmd: &str) {
    let p = format!("{INSTANCE}{n}.Migration.");
    let r = b
        .set(&[(&format!("{p}Mode"), Value::String(mode.into())), (&format!("{p}Command"), Value::String(cmd.into()))]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
}

#[test]
fn cold_context_migration_moves_the_binding_and_leaves_one_vrgw() {
    let mut src = bed("hvmigs");
    let mut dst = bed("hvmigd");
    let (ts, _) = src.template_and_pool(0);
    let (td, _) = dst.template_and_pool(1);
    let n = src.add(INSTANCE);
    let p = format!("{INSTANCE}{n}.");
    let r = src.set(&[
        (&format!("{p}Subscriber"), Value::String("sub-42".into())),
        (&format!("{p}Template"), Value::String(format!("{TEMPLATE}{ts}"))),
        (&format!("{p}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{p}CVLAN"), Value::UnsignedInt(42)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    let src_domain = src.s(&format!("{p}Domain"));
    assert_eq!(src.owned(), vec![(src_domain.clone(), DomState::Running)]);

    // Destination: a pooled vRGW is resumed for it, not bound yet.
    let (m, r) = incoming(&mut dst, td, 100, 42, "ColdContext", "", "");
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    let q = format!("{INSTANCE}{m}.");
    assert_eq!(dst.s(&format!("{q}Migration.Status")), "Prepared", "{}", dst.s(&format!("{q}Migration.Error")));
    assert_eq!(dst.s(&format!("{q}Status")), "Migrating");
    assert!(dst.bindings().is_empty(), "bound before the switch-over: {:?}", dst.bindings());
    assert_eq!(src.bindings().len(), 1);
    // Status changes are notified actively.
    let attrs = dst.host.model.attributes();
    assert!(attrs
        .iter()
        .any(|(name, n, _)| name == &format!("{q}Migration.Status") && *n == cwmp::Notification::Active));

    // Source lets go: suspended and unbound.
    command(&mut src, n, "ColdContext", "Start");
    assert_eq!(src.s(&format!("{p}Migration.Status")), "Stopped");
    assert_eq!(src.owned(), vec![(src_domain.clone(), DomState::Paused)]);
    assert!(src.bindings().is_empty());
    // A converge (any later set) does not bind it again behind the migration's back.
    src.host.converge();
    assert!(src.bindings().is_empty());

    // Destination takes over.
    command(&mut dst, m, "ColdContext", "Complete");
    assert_eq!(dst.s(&format!("{q}Migration.Status")), "Completed", "{}", dst.s(&format!("{q}Migration.Error")));
    assert_eq!(dst.bindings().iter().map(|b| (b.svlan, b.cvlan)).collect::<Vec<_>>(), vec![(100, 42)]);
    assert_eq!(dst.s(&format!("{q}Status")), "Running");
    assert_eq!(dst.u(&format!("{q}Migration.Progress")), 100);

    // The ACS deletes the source's row: its domain goes.
    let r = src.host.handle(&Body::DeleteObject(DeleteObject { object_name: p.clone(), parameter_key: "k".into() }));
    assert!(matches!(r, Body::DeleteObjectResponse(_)), "{r:?}");
    assert!(src.owned().is_empty());
    // And the destination's vRGW survives its agent's restart as an ordinary instance.
    let mut dst = dst.reopen();
    assert_eq!(dst.s(&format!("{q}Status")), "Running");
    assert_eq!(dst.bindings().len(), 1);
    src.clean();
    dst.clean();
}

#[test]
fn failed_migration_steps_leave_the_vrgw_where_it_ran() {
    let mut src = bed("hvmigfs");
    let mut dst = bed("hvmigfd");
    let (ts, _) = src.template_and_pool(0);
    let (td, _) = dst.template_and_pool(0);
    let n = src.add(INSTANCE);
    let p = format!("{INSTANCE}{n}.");
    src.set(&[
        (&format!("{p}Template"), Value::String(format!("{TEMPLATE}{ts}"))),
        (&format!("{p}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{p}CVLAN"), Value::UnsignedInt(43)),
    ]);
    let src_domain = src.s(&format!("{p}Domain"));

    // Destination pool empty: the prepare fails, nothing is made there.
    let (m, _) = incoming(&mut dst, td, 100, 43, "ColdContext", "", "");
    let q = format!("{INSTANCE}{m}.");
    assert_eq!(dst.s(&format!("{q}Migration.Status")), "Error");
    assert!(
        dst.s(&format!("{q}Migration.Error")).contains("pool is empty"),
        "{}",
        dst.s(&format!("{q}Migration.Error"))
    );
    assert!(dst.owned().is_empty() && dst.bindings().is_empty());
    // The row made for the migration is never provisioned by an ordinary converge.
    dst.host.converge();
    assert!(dst.owned().is_empty());

    // Source unreachable for a live or image-based prepare: a precise error, nothing made.
    let (k, _) = incoming(&mut dst, td, 100, 44, "Live", "qemu+tcp://127.0.0.1:1/system", &src_domain);
    let e = dst.s(&format!("{INSTANCE}{k}.Migration.Error"));
    assert_eq!(dst.s(&format!("{INSTANCE}{k}.Migration.Status")), "Error");
    assert!(e.contains("source host's hypervisor") && e.contains("127.0.0.1:1"), "{e}");
    assert!(dst.owned().is_empty() && dst.bindings().is_empty());

    // A cold stop at the source, then the destination fails: the source runs it again.
    command(&mut src, n, "ColdImage", "Start");
    assert_eq!(src.s(&format!("{p}Migration.Status")), "Stopped");
    assert_eq!(src.owned(), vec![(src_domain.clone(), DomState::ShutOff)]);
    assert!(src.bindings().is_empty());
    command(&mut src, n, "ColdImage", "Abort");
    assert_eq!(src.s(&format!("{p}Migration.Status")), "Aborted");
    assert_eq!(src.owned(), vec![(src_domain.clone(), DomState::Running)]);
    assert_eq!(src.bindings().iter().map(|b| (b.svlan, b.cvlan)).collect::<Vec<_>>(), vec![(100, 43)]);
    assert_eq!(src.s(&format!("{p}Status")), "Running");
    // Commands that make no sense are refused in the status, changing nothing.
    command(&mut src, n, "ColdImage", "Complete");
    assert_eq!(src.s(&format!("{p}Migration.Status")), "Error");
    assert_eq!(src.owned(), vec![(src_domain.clone(), DomState::Running)]);
    // The configuration travels in the stopped definition (image-based).
    command(&mut src, n, "ColdImage", "Start");
    let xml = src.lv.xml(&src_domain, true).expect("xml").expect("defined");
    let id = crate::domain::identity_of(&xml);
    assert!(id.as_ref().and_then(|i| i.profile.as_ref()).is_some_and(|p| p.contains("SSID")), "{id:?} {xml}");
    command(&mut src, n, "ColdImage", "Abort");
    assert_eq!(src.owned(), vec![(src_domain, DomState::Running)]);
    src.clean();
    dst.clean();
}

/// Calls a stand-in proxy received: (method, the values of a set).
type Calls = Arc<std::sync::Mutex<Vec<(String, Vec<proxy_api::WireValue>)>>>;

/// `try_set` calls in flight at once, across the stand-ins of one test.
#[derive(Default)]
struct Meeting {
    in_flight: std::sync::Mutex<usize>,
    cv: std::sync::Condvar,
}

impl Meeting {
    /// Arrives and waits (at most 5 s) until `n` calls arrived; whether they did.
    fn meet(&self, n: usize) -> bool {
        let mut g = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        self.cv.notify_all();
        let (g, _) = self
            .cv
            .wait_timeout_while(g, std::time::Duration::from_secs(5), |k| *k < n)
            .unwrap_or_else(|e| e.into_inner());
        *g >= n
    }
}

/// A stand-in for a vRGW's proxy at `addr`, speaking the contract: `health`, `get` (nothing;
/// once `gets` is armed, its `UpTime` of `id` after meeting as `try_set` does), `set`,
/// `validate`, and `try_set`, which refuses the parameters named in `refuse` (9007) and first
/// waits for `meet` calls to be in flight at once (recording whether they were). It runs on a
/// thread of its own, as a vRGW would (its waiting blocks nobody else).
fn stand_in(
    addr: &str,
    refuse: Arc<std::sync::Mutex<Vec<String>>>,
    meeting: Arc<Meeting>,
    meet: usize,
    met: Arc<std::sync::Mutex<Vec<bool>>>,
    (gets, id): (Arc<std::sync::atomic::AtomicBool>, u32),
) -> Calls {
    use proxy_api::{Health, NoParams, Paths, SetParams, ValidateParams, WireFault, WireValue};
    let calls: Calls = Default::default();
    let mut server = xmlrpc::Server::new();
    let log = |calls: &Calls, m: &str, v: &[WireValue]| {
        calls.lock().unwrap_or_else(|e| e.into_inner()).push((m.to_string(), v.to_vec()));
    };
    let m = proxy_api::HEALTH;
    server.register_typed(m.name, m.help, m.signature, |_: NoParams| {
        Ok(Health {
            status: "ok".into(),
            version: "stand-in".into(),
            uptime: 1,
            parameter_key: String::new(),
            dnsmasq_running: true,
            last_error: String::new(),
            rss_kib: 1,
        })
    });
    let (m, meeting2, met2) = (proxy_api::GET, meeting.clone(), met.clone());
    server.register_typed(m.name, m.help, m.signature, move |_: Paths| {
        if !gets.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(Vec::<WireValue>::new());
        }
        let overlapped = meeting2.meet(meet);
        met2.lock().unwrap_or_else(|e| e.into_inner()).push(overlapped);
        Ok(vec![WireValue::from(&ParameterValue::new("Device.DeviceInfo.UpTime", Value::UnsignedInt(id)))])
    });
    let (m, c) = (proxy_api::SET, calls.clone());
    server.register_typed(m.name, m.help, m.signature, move |p: SetParams| {
        log(&c, "set", &p.values);
        Ok(0)
    });
    let (m, c) = (proxy_api::FACTORY_RESET, calls.clone());
    server.register_typed(m.name, m.help, m.signature, move |_: NoParams| {
        log(&c, "factory_reset", &[]);
        Ok(true)
    });
    let (m, c) = (proxy_api::VALIDATE, calls.clone());
    server.register_typed(m.name, m.help, m.signature, move |p: ValidateParams| {
        log(&c, "validate", &p.values);
        Ok(Vec::<WireFault>::new())
    });
    let (m, c) = (proxy_api::TRY_SET, calls.clone());
    server.register_typed(m.name, m.help, m.signature, move |p: SetParams| {
        log(&c, "try_set", &p.values);
        let overlapped = meeting.meet(meet);
        met.lock().unwrap_or_else(|e| e.into_inner()).push(overlapped);
        let refuse = refuse.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(p.values
            .iter()
            .filter(|v| refuse.contains(&v.name))
            .map(|v| WireFault { name: v.name.clone(), code: 9007, reason: "refused by the stand-in".into() })
            .collect::<Vec<_>>())
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).expect("listen as a vRGW's proxy");
    std::thread::spawn(move || rt.block_on(Arc::new(server).serve(listener, std::future::pending())));
    calls
}

fn calls_of(calls: &Calls) -> Vec<(String, Vec<proxy_api::WireValue>)> {
    std::mem::take(&mut *calls.lock().unwrap_or_else(|e| e.into_inner()))
}

#[test]
fn a_set_reaches_each_vrgw_in_one_call_all_at_once_all_or_nothing() {
    // Management addresses on loopback (slot n is 127.0.0.(n+1)), stand-ins for the proxies.
    let mut b = bed_with("hvfan", |c| {
        c.mgmt_base = Ipv4Addr::new(127, 0, 0, 0);
        c.mgmt_prefix = 8;
        c.proxy_port = 18741;
    });
    let (t, _) = b.template_and_pool(0);
    let meeting = Arc::new(Meeting::default());
    let met: Arc<std::sync::Mutex<Vec<bool>>> = Default::default();
    let refuse: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let gets: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let mut instances = Vec::new();
    let mut proxies = Vec::new();
    for c in 1..=2u32 {
        let n = b.add(INSTANCE);
        let ip = format!("{INSTANCE}{n}.");
        let r = b.set(&[
            (&format!("{ip}Template"), Value::String(format!("{TEMPLATE}{t}"))),
            (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
            (&format!("{ip}CVLAN"), Value::UnsignedInt(c)),
        ]);
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
        let slot = b.host.state().slot_of(n).expect("slot").expect("provisioned");
        let addr = format!("{}:18741", slot.mgmt_address.split('/').next().expect("address"));
        // Only the second vRGW refuses what it is told to refuse.
        let refuse = if c == 2 { refuse.clone() } else { Default::default() };
        proxies.push(stand_in(&addr, refuse, meeting.clone(), 2, met.clone(), (gets.clone(), c)));
        instances.push(n);
    }
    assert_eq!(b.host.sync_proxies(), 2, "both stand-ins got their profiles");
    for p in &proxies {
        let calls = calls_of(p);
        assert_eq!(calls.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["set"], "the profile push");
    }
    let lease = |n: u32| format!("{INSTANCE}{n}.Device.DHCPv4.Server.Pool.1.LeaseTime");
    let sub = format!("{INSTANCE}{}.Subscriber", instances[0]);

    // One set across both vRGWs and the host: one try_set each, no validate, both in flight at
    // once; the host's own value applied.
    let r = b.set(&[
        (&lease(instances[0]), Value::String("7200".into())),
        (&lease(instances[1]), Value::Int(7300)),
        (&sub, Value::String("sub-1".into())),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    for (p, v) in proxies.iter().zip(["7200", "7300"]) {
        let calls = calls_of(p);
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].0, "try_set");
        let sent = &calls[0].1;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].name, "Device.DHCPv4.Server.Pool.1.LeaseTime");
        assert_eq!(sent[0].ty.as_deref(), Some("int"));
        assert_eq!(sent[0].value, proxy_api::Lexical::String(v.into()));
    }
    assert_eq!(std::mem::take(&mut *met.lock().expect("met")), vec![true, true], "the two calls overlapped");
    assert_eq!(b.s(&sub), "sub-1");

    // The second vRGW refuses: the first one's change is undone (its previous value sent back),
    // the host's value stays, and the fault names the refused parameter in the host's paths.
    *meeting.in_flight.lock().expect("meeting") = 0;
    refuse.lock().expect("refuse").push("Device.DHCPv4.Server.Pool.1.LeaseTime".into());
    let r = b.set(&[
        (&lease(instances[0]), Value::Int(9000)),
        (&lease(instances[1]), Value::Int(9100)),
        (&sub, Value::String("sub-2".into())),
    ]);
    assert_eq!(fault_names(&r), vec![(lease(instances[1]), 9007)]);
    let first = calls_of(&proxies[0]);
    let sent: Vec<(&str, &proxy_api::Lexical)> = first.iter().map(|(m, v)| (m.as_str(), &v[0].value)).collect();
    assert_eq!(
        sent,
        vec![
            ("try_set", &proxy_api::Lexical::String("9000".into())),
            ("try_set", &proxy_api::Lexical::String("7200".into()))
        ]
    );
    assert_eq!(calls_of(&proxies[1]).len(), 1);
    assert_eq!(b.s(&sub), "sub-1");
    let profile = |b: &Bed, n: u32| {
        b.host.mounts[&n].previous(&[cwmp::ParameterValue::new("Device.DHCPv4.Server.Pool.1.LeaseTime", Value::Int(0))])
    };
    assert_eq!(profile(&b, instances[0])[0].value, Value::Int(7200), "the profile keeps the applied value");
    assert_eq!(profile(&b, instances[1])[0].value, Value::Int(7300));

    // A read of both vRGWs' data models in one GetParameterValues: both proxies asked at once,
    // each answer under its own instance.
    *meeting.in_flight.lock().expect("meeting") = 0;
    met.lock().expect("met").clear();
    gets.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = b.host.handle(&Body::GetParameterValues(GetParameterValues { parameter_names: vec![INSTANCE.into()] }));
    gets.store(false, std::sync::atomic::Ordering::SeqCst);
    let Body::GetParameterValuesResponse(r) = r else { panic!("GPV: {r:?}") };
    let uptimes: Vec<(String, Value)> = r
        .parameter_list
        .into_iter()
        .filter(|p| p.name.ends_with("Device.DeviceInfo.UpTime"))
        .map(|p| (p.name, p.value))
        .collect();
    assert_eq!(
        uptimes,
        vec![
            (format!("{INSTANCE}{}.Device.DeviceInfo.UpTime", instances[0]), Value::UnsignedInt(1)),
            (format!("{INSTANCE}{}.Device.DeviceInfo.UpTime", instances[1]), Value::UnsignedInt(2)),
        ]
    );
    assert_eq!(std::mem::take(&mut *met.lock().expect("met")), vec![true, true], "the two reads overlapped");
    assert!(b.host.mounts.values().all(|m| !m.has_read_ahead()), "nothing read ahead is kept");
    b.clean();
}

/// A switch that answers nothing.
struct SwitchDown;

fn switch_down<T>(command: &str) -> crate::vlan::Result<T> {
    Err(crate::vlan::VlanError::Switch { command: command.into(), message: "the switch is down".into() })
}

impl VlanBackend for SwitchDown {
    fn lan_nic(&self, _: Option<(u16, u16)>) -> crate::vlan::Result<LanNic> {
        switch_down("lan_nic")
    }
    fn parking_bridge(&self) -> crate::vlan::Result<String> {
        switch_down("parking_bridge")
    }
    fn ensure_svlan(&self, _: u16) -> crate::vlan::Result<String> {
        switch_down("ensure_svlan")
    }
    fn remove_svlan_if_unused(&self, _: u16) -> crate::vlan::Result<bool> {
        switch_down("remove_svlan_if_unused")
    }
    fn bind(&self, _: &str, _: u16, _: u16) -> crate::vlan::Result<()> {
        switch_down("bind")
    }
    fn unbind(&self, _: &str) -> crate::vlan::Result<()> {
        switch_down("unbind")
    }
    fn release(&self, _: &str) -> crate::vlan::Result<()> {
        switch_down("release")
    }
    fn bindings(&self) -> crate::vlan::Result<Vec<Binding>> {
        switch_down("bindings")
    }
}

/// The fault a request was answered with: (code, string).
fn fault_of(b: &Body) -> (u32, String) {
    match b {
        Body::Fault(f) => (f.code.code(), f.string.clone()),
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn each_failure_reaches_the_acs_as_its_own_fault() {
    let mut b = bed("hvfault");
    let (t, _) = b.template_and_pool(0);
    let n = b.add(INSTANCE);
    let p = format!("{INSTANCE}{n}.");
    let r = b.set(&[
        (&format!("{p}Template"), Value::String(format!("{TEMPLATE}{t}"))),
        (&format!("{p}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{p}CVLAN"), Value::UnsignedInt(11)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    let domain = b.s(&format!("{p}Domain"));
    let delete = |b: &mut Bed, object_name: String| {
        b.host.handle(&Body::DeleteObject(DeleteObject { object_name, parameter_key: "k".into() }))
    };

    // 9003, the refused parameter 9007: a reference to a template this host does not have.
    let other = format!("{INSTANCE}{}.Template", b.add(INSTANCE));
    let r = b.set(&[(&other, Value::String(format!("{TEMPLATE}99")))]);
    assert_eq!(fault_of(&r), (9003, "1 of 1 parameters refused; nothing was changed".into()));
    assert_eq!(fault_names(&r), vec![(other, 9007)]);

    // 9005: a parameter, and a row, that are not there.
    let r = b.set(&[(&format!("{p}NoSuchParameter"), Value::String("x".into()))]);
    assert_eq!(fault_names(&r), vec![(format!("{p}NoSuchParameter"), 9005)]);
    assert_eq!(fault_of(&delete(&mut b, format!("{INSTANCE}99."))).0, 9005);

    // 9001: deleting an instance a live migration is moving; nothing is released.
    b.host.live.lock().expect("jobs").insert(n, super::migration::LiveJob::running());
    let r = delete(&mut b, p.clone());
    assert_eq!(fault_of(&r), (9001, "the instance is being migrated live; delete it once the migration ended".into()));
    b.host.live.lock().expect("jobs").clear();
    assert_eq!(b.lv.state(&domain).expect("state"), Some(DomState::Running));

    // 9002: the switch fails while the instance's port is released.
    b.host.vlan = Arc::new(SwitchDown);
    let (code, string) = fault_of(&delete(&mut b, p.clone()));
    assert_eq!(code, 9002, "{string}");
    assert_eq!(string, "reading the bindings: bindings: the switch is down");
    b.host.vlan = b.ovs.clone();

    // 9002: the agent's store fails while a template change is checked: the set is refused
    // whole rather than checked against nothing.
    let db = rusqlite::Connection::open(b.dir.join("agent.db")).expect("db");
    db.execute_batch("ALTER TABLE slots RENAME TO slots_away").expect("rename");
    let r = b.set(&[(&format!("{p}Template"), Value::String(format!("{TEMPLATE}{t}")))]);
    let (code, string) = fault_of(&r);
    assert_eq!(code, 9002, "{string}");
    assert!(string.contains("no such table: slots"), "{string}");
    db.execute_batch("ALTER TABLE slots_away RENAME TO slots").expect("rename back");
    b.clean();
}

#[test]
fn failed_migration_commands_carry_the_fault_of_their_cause() {
    let mut b = bed("hvmigfc");
    let (t, _) = b.template_and_pool(0);
    let n = b.add(INSTANCE);
    let p = format!("{INSTANCE}{n}.");
    let r = b.set(&[
        (&format!("{p}Template"), Value::String(format!("{TEMPLATE}{t}"))),
        (&format!("{p}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{p}CVLAN"), Value::UnsignedInt(51)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    // The set that carries the command succeeds; the command's failure is in Migration.Status and
    // Error, and running the command again gives the same error, typed.
    let again = |b: &mut Bed, n: u32| {
        let status = b.s(&format!("{INSTANCE}{n}.Migration.Status"));
        let text = b.s(&format!("{INSTANCE}{n}.Migration.Error"));
        let e = b.host.migration_command(n).expect_err("the command fails");
        assert_eq!((status.as_str(), text), ("Error", e.to_string()));
        (e.fault().code.code(), e.to_string())
    };

    // 9001: a command out of turn.
    command(&mut b, n, "ColdImage", "Complete");
    assert_eq!(again(&mut b, n), (9001, "nothing was prepared here for this instance".into()));
    // 9004: no pooled vRGW to take the configuration.
    let (k, r) = incoming(&mut b, t, 100, 52, "ColdContext", "", "");
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    let (code, text) = again(&mut b, k);
    assert_eq!(code, 9004, "{text}");
    assert!(text.contains("pool is empty"), "{text}");
    // 9007: a live migration without its peer.
    let (k, _) = incoming(&mut b, t, 100, 53, "Live", "", "");
    assert_eq!(again(&mut b, k), (9007, "Migration.Peer and Migration.PeerDomain are needed for this mode".into()));
    // 9002: the source host's libvirt does not answer.
    let (k, _) = incoming(&mut b, t, 100, 54, "Live", "qemu+tcp://127.0.0.1:1/system", "nowhere");
    let (code, text) = again(&mut b, k);
    assert_eq!(code, 9002, "{text}");
    assert!(text.starts_with("the source host's hypervisor: ") && text.contains("127.0.0.1:1"), "{text}");
    b.clean();
}

#[test]
fn a_peer_off_the_allow_list_is_refused_whole_and_nothing_is_touched() {
    let mut b = bed("hvmigpeer");
    let (t, _) = b.template_and_pool(0);
    let owned = b.owned();
    let rows = b.host.model.root().instances(INSTANCE);
    // An instance added for an incoming migration whose source is not on the list: the set is
    // refused whole, the fault names Migration.Peer and the peer, nothing was made.
    let (k, r) = incoming(&mut b, t, 100, 61, "Live", "qemu+tcp://10.0.0.9/system", "vrgw-x");
    let peer = format!("{INSTANCE}{k}.Migration.Peer");
    assert_eq!(fault_names(&r), vec![(peer.clone(), 9007)]);
    let Body::Fault(f) = &r else { unreachable!("a fault, as fault_names showed") };
    assert_eq!(f.code.code(), 9003);
    assert!(f.set_parameter_values_faults[0].string.contains("qemu+tcp://10.0.0.9/system"), "{f:?}");
    for name in ["Migration.Peer", "Migration.Mode", "Migration.Status", "SVLAN", "Template"] {
        let v = b.get(&format!("{INSTANCE}{k}.{name}")).to_lexical().into_owned();
        assert!(v.is_empty() || v == "None" || v == "0", "{name} = {v:?}");
    }
    assert_eq!(b.host.state().slot_of(k).expect("slot"), None, "no slot for the refused instance");
    assert_eq!(b.owned(), owned, "no domain made or removed");
    assert_eq!(b.host.model.root().instances(INSTANCE).len(), rows.len() + 1, "only the added row");
    // The same peer on the list of another agent is accepted (the list, not the URI's form,
    // decides): a source on the list that answers nothing fails the Prepare instead (9002).
    let (k, r) = incoming(&mut b, t, 100, 62, "Live", "qemu+tcp://127.0.0.1:1/system", "vrgw-x");
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(b.s(&format!("{INSTANCE}{k}.Migration.Status")), "Error");
    b.clean();
}

#[test]
fn a_peer_stored_before_the_allow_list_changed_is_refused_before_its_libvirt_is_opened() {
    let mut b = bed("hvmigpeer2");
    let (t, _) = b.template_and_pool(0);
    let owned = b.owned();
    // A "libvirtd" on loopback that only counts connections.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = format!("qemu+tcp://{}/system", l.local_addr().expect("addr"));
    b.host.cfg.migration_peers.push(peer.clone());
    // Set while it was on the list, no command yet.
    let n = b.add(INSTANCE);
    let p = format!("{INSTANCE}{n}.");
    let r = b.set(&[
        (&format!("{p}Template"), Value::String(format!("{TEMPLATE}{t}"))),
        (&format!("{p}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{p}CVLAN"), Value::UnsignedInt(71)),
        (&format!("{p}Migration.Mode"), Value::String("Live".into())),
        (&format!("{p}Migration.Peer"), Value::String(peer.clone())),
        (&format!("{p}Migration.PeerDomain"), Value::String("vrgw-x".into())),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    // The list changes (the agent restarted with another configuration): the command fails on
    // the allow-list, recorded in Status and Error, and the peer's libvirt was never dialled.
    b.host.cfg.migration_peers.retain(|p| p != &peer);
    command(&mut b, n, "Live", "Prepare");
    assert_eq!(b.s(&format!("{p}Migration.Status")), "Error");
    let text = b.s(&format!("{p}Migration.Error"));
    assert!(text.contains(&peer) && text.contains("migration_peers"), "{text}");
    let e = b.host.migration_command(n).expect_err("refused again");
    assert_eq!((e.fault().code.code(), e.to_string()), (9007, text));
    l.set_nonblocking(true).expect("nonblocking");
    assert!(
        matches!(l.accept(), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the peer's libvirt was dialled"
    );
    assert_eq!(b.host.state().slot_of(n).expect("slot"), None, "nothing prepared");
    assert_eq!(b.owned(), owned, "no domain made or removed");
    b.clean();
}

/// A stand-in for a vRGW's proxy at `addr` that answers `health`, `get` (from what it was
/// `set`), `set` and `try_set` while `silent` is false; while it is true every call it has
/// accepted waits, so the proxy accepts TCP connections and never answers (a hung guest).
fn silenceable(addr: &str, silent: Arc<std::sync::atomic::AtomicBool>) -> Calls {
    use proxy_api::{Health, NoParams, Paths, SetParams, WireFault, WireValue};
    use std::sync::atomic::Ordering;
    let calls: Calls = Default::default();
    let values: Arc<std::sync::Mutex<Vec<WireValue>>> = Default::default();
    let hold = move |silent: &std::sync::atomic::AtomicBool| {
        while silent.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    let mut server = xmlrpc::Server::new();
    let (m, s) = (proxy_api::HEALTH, silent.clone());
    server.register_typed(m.name, m.help, m.signature, move |_: NoParams| {
        hold(&s);
        Ok(Health {
            status: "ok".into(),
            version: "stand-in".into(),
            uptime: 1,
            parameter_key: String::new(),
            dnsmasq_running: true,
            last_error: String::new(),
            rss_kib: 1,
        })
    });
    let (m, s, v, c) = (proxy_api::GET, silent.clone(), values.clone(), calls.clone());
    server.register_typed(m.name, m.help, m.signature, move |p: Paths| {
        c.lock().unwrap_or_else(|e| e.into_inner()).push(("get".into(), Vec::new()));
        hold(&s);
        let have = v.lock().unwrap_or_else(|e| e.into_inner());
        Ok(have.iter().filter(|w| p.0.iter().any(|q| w.name.starts_with(q.as_str()))).cloned().collect::<Vec<_>>())
    });
    // `set` and `try_set`: recorded, then kept (after the wait, if silent).
    let store = move |c: &Calls,
                      s: &std::sync::atomic::AtomicBool,
                      v: &std::sync::Mutex<Vec<WireValue>>,
                      kind: &str,
                      p: SetParams| {
        c.lock().unwrap_or_else(|e| e.into_inner()).push((kind.into(), p.values.clone()));
        hold(s);
        let mut have = v.lock().unwrap_or_else(|e| e.into_inner());
        for w in p.values {
            have.retain(|x| x.name != w.name);
            have.push(w);
        }
    };
    let (m, s, v, c) = (proxy_api::SET, silent.clone(), values.clone(), calls.clone());
    server.register_typed(m.name, m.help, m.signature, move |p: SetParams| {
        store(&c, &s, &v, "set", p);
        Ok(0)
    });
    let (m, s, v, c) = (proxy_api::TRY_SET, silent.clone(), values.clone(), calls.clone());
    server.register_typed(m.name, m.help, m.signature, move |p: SetParams| {
        store(&c, &s, &v, "try_set", p);
        Ok(Vec::<WireFault>::new())
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).expect("listen as a vRGW's proxy");
    std::thread::spawn(move || rt.block_on(Arc::new(server).serve(listener, std::future::pending())));
    calls
}

#[test]
fn a_vrgw_that_accepts_and_never_answers_costs_its_own_instance_only() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut b = bed_with("hvsilent", |c| {
        c.mgmt_base = Ipv4Addr::new(127, 0, 0, 0);
        c.mgmt_prefix = 8;
        c.proxy_port = 18752;
        let ms = std::time::Duration::from_millis;
        c.proxy_deadlines = crate::proxy::Deadlines {
            connect: ms(200),
            health: ms(300),
            read: ms(300),
            change: ms(300),
            retry: ms(100),
        };
    });
    let (t, _) = b.template_and_pool(0);
    let silent = Arc::new(AtomicBool::new(false));
    let (mut instances, mut proxies) = (Vec::new(), Vec::new());
    for c in 1..=2u32 {
        let n = b.add(INSTANCE);
        let ip = format!("{INSTANCE}{n}.");
        let r = b.set(&[
            (&format!("{ip}Template"), Value::String(format!("{TEMPLATE}{t}"))),
            (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
            (&format!("{ip}CVLAN"), Value::UnsignedInt(c)),
        ]);
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
        let slot = b.host.state().slot_of(n).expect("slot").expect("provisioned");
        let addr = format!("{}:18752", slot.mgmt_address.split('/').next().expect("address"));
        // The second vRGW is the one that will hang.
        let s = if c == 2 { silent.clone() } else { Arc::new(AtomicBool::new(false)) };
        proxies.push((silenceable(&addr, s), addr));
        instances.push(n);
    }
    let (good, hung) = (instances[0], instances[1]);
    assert_eq!(b.host.sync_proxies(), 2, "both got their profiles");
    let lease = |n: u32| format!("{INSTANCE}{n}.Device.DHCPv4.Server.Pool.1.LeaseTime");
    assert_eq!(b.get(&lease(hung)).to_lexical(), "86400", "read from the vRGW itself");
    for (p, _) in &proxies {
        calls_of(p);
    }

    // The second guest hangs. A read from it costs one deadline and fails with 9002 naming it...
    silent.store(true, Ordering::SeqCst);
    let r = b.host.handle(&Body::GetParameterValues(GetParameterValues { parameter_names: vec![lease(hung)] }));
    let Body::Fault(f) = &r else { panic!("a fault, got {r:?}") };
    assert_eq!(f.code.code(), 9002);
    assert!(f.string.contains(&proxies[1].1) && f.string.contains("did not answer"), "{}", f.string);
    // ...then its instance is served from its profile, without calling it again, while the other
    // vRGW and the host answer as before.
    assert!(b.host.mounts[&hung].stalled() && !b.host.mounts[&hung].synced());
    assert_eq!(b.get(&lease(hung)).to_lexical(), "86400");
    let r = b.set(&[
        (&lease(good), Value::UnsignedInt(7200)),
        (&lease(hung), Value::UnsignedInt(7300)),
        (&format!("{INSTANCE}{good}.Subscriber"), Value::String("sub-1".into())),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    let sent = calls_of(&proxies[0].0);
    assert_eq!(sent.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["try_set"], "{sent:?}");
    assert_eq!(b.get(&lease(good)).to_lexical(), "7200", "from the vRGW that answers");
    assert_eq!(b.get(&lease(hung)).to_lexical(), "7300", "recorded in the profile");
    assert_eq!(calls_of(&proxies[1].0).len(), 1, "only the read that timed out reached the hung vRGW");
    // While it is backing off, a sync leaves it alone; once the wait is over and it still hangs,
    // the miss is its instance's LastError (its health check timed out).
    b.host.sync_proxies();
    while b.host.mounts[&hung].stalled() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    b.host.sync_proxies();
    let why = b.s(&format!("{INSTANCE}{hung}.LastError"));
    assert!(why.contains(&proxies[1].1), "{why}");
    assert_eq!(b.s(&format!("{INSTANCE}{good}.LastError")), "");

    // It answers again: after its backoff the next sync pushes what changed meanwhile, and reads
    // go to it again.
    silent.store(false, Ordering::SeqCst);
    while b.host.mounts[&hung].stalled() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    calls_of(&proxies[1].0);
    b.host.sync_proxies();
    assert!(b.host.mounts[&hung].synced());
    let pushed = calls_of(&proxies[1].0);
    let set = pushed.iter().find(|c| c.0 == "set").unwrap_or_else(|| panic!("no profile push: {pushed:?}"));
    assert!(
        set.1.iter().any(|w| w.name == "Device.DHCPv4.Server.Pool.1.LeaseTime"
            && w.value == proxy_api::Lexical::String("7300".into())),
        "{set:?}"
    );
    assert_eq!(b.get(&lease(hung)).to_lexical(), "7300");
    assert_eq!(calls_of(&proxies[1].0).iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["get"]);
    b.clean();
}

#[test]
fn connection_request_credentials_the_acs_sets_are_served_and_survive_a_restart() {
    let mut b = bed("hvcrcred");
    let ms = "Device.ManagementServer.";
    let r = b.set(&[
        (&format!("{ms}ConnectionRequestUsername"), Value::String("dev-own".into())),
        (&format!("{ms}ConnectionRequestPassword"), Value::String("p-0123456789abcdef".into())),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    // What connection requests are checked against, as the host thread publishes it after a job.
    b.host.publish();
    let v = b.host.shared().view();
    assert_eq!((v.cr_username.as_str(), v.cr_password.as_str()), ("dev-own", "p-0123456789abcdef"));
    // Stored: a restarted agent checks against the same, not its configured factory ones.
    let b = b.reopen();
    let v = b.host.shared().view();
    assert_eq!((v.cr_username.as_str(), v.cr_password.as_str()), ("dev-own", "p-0123456789abcdef"));
    b.clean();
}

/// The proxy secret reaches the guest through a fw_cfg entry naming an owner-only file, never
/// on the kernel command line or in SMBIOS (both end up in QEMU's argv, which every user of the
/// host can read): the definition libvirt's test driver holds is checked, and the file. Pooled
/// domains (suspended) keep theirs; a domain's file goes with it.
#[test]
fn the_proxy_secret_travels_in_an_owner_only_file_not_in_the_definition_s_public_parts() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let mut b = bed("hvsecret");
    let (_, pool) = b.template_and_pool(2);
    assert_eq!(b.u(&format!("{POOL}{pool}.Suspended")), 2);
    let slots = b.host.state().slots().expect("slots");
    assert_eq!(slots.len(), 2);
    assert_eq!(mode(&b.dir.join("secrets")), 0o711, "QEMU's user may pass, not list");
    for slot in &slots {
        let xml = b.lv.xml(&slot.domain, false).expect("xml").expect("defined");
        let file = b.dir.join("secrets").join(&slot.domain);
        assert_eq!(slot.secret.len(), 32, "{slot:?}");
        // Nothing QEMU's argv is made of holds it: the command line, SMBIOS, fw_cfg values.
        let between = |open: &str, close: &str| -> String {
            xml.split(open).skip(1).filter_map(|p| p.split(close).next()).collect::<Vec<_>>().join("\n")
        };
        for (what, part) in
            [("cmdline", between("<cmdline>", "</cmdline>")), ("sysinfo", between("<sysinfo", "</sysinfo>"))]
        {
            assert!(!part.contains(&slot.secret), "the secret is in <{what}>: {part}");
        }
        assert!(
            xml.contains(&format!("<entry name='opt/org.vrgw/secret' file='{}'/>", file.display()))
                || xml.contains(&format!("<entry name=\"opt/org.vrgw/secret\" file=\"{}\"/>", file.display())),
            "no fw_cfg entry naming {}:\n{xml}",
            file.display()
        );
        // It is in the ownership mark (what a destination host reads for a live migration).
        assert_eq!(crate::domain::identity_of(&xml).and_then(|i| i.secret).as_deref(), Some(slot.secret.as_str()));
        assert_eq!((mode(&file), std::fs::read_to_string(&file).expect("secret file")), (0o600, slot.secret.clone()));
    }
    // The pool drained: the domains and their files are gone.
    assert!(matches!(
        b.set(&[(&format!("{POOL}{pool}.Enable"), Value::Boolean(false))]),
        Body::SetParameterValuesResponse(_)
    ));
    b.fill();
    assert!(b.owned().is_empty());
    assert_eq!(std::fs::read_dir(b.dir.join("secrets")).expect("secrets").count(), 0, "files left behind");
    b.clean();
}

#[test]
fn instances_managed_as_virtual_devices_are_listed_as_such_and_served_as_their_own() {
    let mut b = bed("hvvdev");
    host_identity(&mut b, "h1");
    let i = virtual_instance(&mut b, "alice", 7, "vRGW-Home");
    let ip = format!("{INSTANCE}{i}.");
    let expected = cwmp::DeviceId {
        manufacturer: "vrgw.org".into(),
        oui: "00A0B1".into(),
        product_class: "vRGW-Home".into(),
        serial_number: "alice".into(),
    };
    assert_eq!(b.host.virtual_devices(), vec![(i, expected.clone())]);
    let vd = "Device.ManagementServer.VirtualDevice.";
    let rows = |b: &mut Bed| -> Vec<(String, String)> {
        let rows = b.host.model.root().instances(vd);
        rows.into_iter()
            .map(|r| (b.s(&format!("{vd}{r}.ProductClass")), b.s(&format!("{vd}{r}.SerialNumber"))))
            .collect()
    };
    assert_eq!(rows(&mut b), [("vRGW-Home".to_string(), "alice".to_string())]);
    assert_eq!(b.topology().1, Vec::<String>::new(), "not an embedded device");
    // Its subtree is not shown under the host (Virtual alone), and shown again with Both.
    let pool_min = format!("{ip}Device.DHCPv4.Server.Pool.1.MinAddress");
    let hidden =
        b.host.handle(&Body::GetParameterValues(GetParameterValues { parameter_names: vec![pool_min.clone()] }));
    assert!(matches!(hidden, Body::Fault(ref f) if f.code.code() == 9005), "{hidden:?}");
    // The instance's own choice: both, then embedded only.
    assert!(matches!(
        b.set(&[(&format!("{ip}ManagementMode"), Value::String("Both".into()))]),
        Body::SetParameterValuesResponse(_)
    ));
    assert_eq!(b.topology().1, vec![format!("{ip}Device.")]);
    assert_eq!(rows(&mut b).len(), 1);
    assert_eq!(b.s(&pool_min), "192.168.1.100", "shown again");
    assert!(matches!(
        b.set(&[(&format!("{ip}ManagementMode"), Value::String("Embedded".into()))]),
        Body::SetParameterValuesResponse(_)
    ));
    assert!(b.host.virtual_devices().is_empty());
    assert!(rows(&mut b).is_empty());

    // Served as a device of its own: a set through the virtual device is the vRGW's (the host
    // sees it under the instance), the ParameterKey the virtual device's alone.
    let j = b.add(INSTANCE);
    let start = crate::vdevice::Start {
        acs_url: "http://127.0.0.1:7547/".into(),
        connection_request_url: "http://127.0.0.1:7548/vd/bob".into(),
        cr_username: "cr".into(),
        cr_password: "pw".into(),
        periodic_inform_interval: 300,
    };
    let mut dev = crate::vdevice::VirtualDevice::new(expected, b.host.device_id(), &start);
    let host_key = b.s("Device.ManagementServer.ParameterKey");
    let r = b.host.serve_virtual(
        j,
        &mut dev,
        &Body::SetParameterValues(SetParameterValues {
            parameter_list: vec![ParameterValue::new(
                "Device.DHCPv4.Server.Pool.1.MinAddress",
                Value::String("192.168.1.60".into()),
            )],
            parameter_key: "vd-1".into(),
        }),
    );
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(b.s(&format!("{INSTANCE}{j}.Device.DHCPv4.Server.Pool.1.MinAddress")), "192.168.1.60");
    assert_eq!(b.s("Device.ManagementServer.ParameterKey"), host_key);
    assert_eq!(dev.management("ParameterKey"), Some(Value::String("vd-1".into())));
    let r = b.host.serve_virtual(
        99,
        &mut dev,
        &Body::GetParameterValues(GetParameterValues { parameter_names: vec!["Device.".into()] }),
    );
    assert!(matches!(r, Body::Fault(ref f) if f.string.contains("instance 99")), "{r:?}");
    b.clean();
}

/// `b`'s identity as a host (its virtual devices take its OUI and Manufacturer).
fn host_identity(b: &mut Bed, serial: &str) {
    let info = [
        ("Manufacturer", "vrgw.org"),
        ("ManufacturerOUI", "00A0B1"),
        ("ProductClass", "vRGW-Host"),
        ("SerialNumber", serial),
    ];
    for (name, v) in info {
        b.host
            .model
            .root_mut()
            .set_internal(&format!("Device.DeviceInfo.{name}"), Value::String(v.into()))
            .expect("id");
    }
}

/// A template named "gw" of ProductClass `class` whose instances are virtual devices, and
/// instance `n` of it for `subscriber` on (100, `cvlan`).
fn virtual_instance(b: &mut Bed, subscriber: &str, cvlan: u32, class: &str) -> u32 {
    let t = b.add(TEMPLATE);
    let tp = format!("{TEMPLATE}{t}");
    let r = b.set(&[
        (&format!("{tp}.Name"), Value::String("gw".into())),
        (&format!("{tp}.Image"), Value::String("/var/lib/vrgw/images/base".into())),
        (&format!("{tp}.ManagementMode"), Value::String("Virtual".into())),
        (&format!("{tp}.ProductClass"), Value::String(class.into())),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    let n = b.add(INSTANCE);
    let ip = format!("{INSTANCE}{n}.");
    let r = b.set(&[
        (&format!("{ip}Subscriber"), Value::String(subscriber.into())),
        (&format!("{ip}Template"), Value::String(tp)),
        (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
        (&format!("{ip}CVLAN"), Value::UnsignedInt(cvlan)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    n
}

fn spv(name: &str, v: &str, key: &str) -> Body {
    Body::SetParameterValues(SetParameterValues {
        parameter_list: vec![ParameterValue::new(name, Value::String(v.into()))],
        parameter_key: key.into(),
    })
}

#[test]
fn a_virtual_device_s_reboot_restarts_its_vrgw_and_its_factory_reset_returns_it_to_the_defaults() {
    let mut b = bed_with("hvvdrb", |c| {
        c.mgmt_base = Ipv4Addr::new(127, 0, 0, 0);
        c.mgmt_prefix = 8;
        c.proxy_port = 18743;
    });
    host_identity(&mut b, "h1");
    let n = virtual_instance(&mut b, "alice", 9, "vRGW");
    let err = b.s(&format!("{INSTANCE}{n}.LastError"));
    let slot = b.host.state().slot_of(n).expect("slot").unwrap_or_else(|| panic!("not provisioned: {err}"));
    let addr = format!("{}:18743", slot.mgmt_address.split('/').next().expect("address"));
    let proxy = stand_in(
        &addr,
        Default::default(),
        Arc::new(Meeting::default()),
        1,
        Default::default(),
        (Default::default(), 1),
    );
    assert_eq!(b.host.sync_proxies(), 1);
    assert_eq!(calls_of(&proxy).iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["set"]);
    let id = b.host.virtual_device_id(n).expect("a virtual device");
    let start = crate::vdevice::Start {
        acs_url: "http://127.0.0.1:7547/".into(),
        connection_request_url: "http://127.0.0.1:7548/vd/1".into(),
        cr_username: "cr".into(),
        cr_password: "pw".into(),
        periodic_inform_interval: 300,
    };
    let mut dev = crate::vdevice::VirtualDevice::new(id, b.host.device_id(), &start);
    let min = "Device.DHCPv4.Server.Pool.1.MinAddress";
    let r = b.host.serve_virtual(n, &mut dev, &spv(min, "192.168.1.60", "k1"));
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(calls_of(&proxy).iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["try_set"]);
    let profile_min = |b: &Bed| {
        b.host.mounts[&n].previous(&[ParameterValue::new(min, Value::String(String::new()))])[0].value.clone()
    };

    // Reboot: the domain stops and starts again (it was running, it runs), and the vRGW gets
    // its whole profile again once its proxy answers: the value set stays.
    b.host.restart_instance(n).expect("restart");
    assert_eq!(b.owned(), vec![(slot.domain.clone(), DomState::Running)]);
    assert!(!b.host.mounts[&n].synced(), "the restarted vRGW is given its profile again");
    assert_eq!(b.host.sync_proxies(), 1);
    let calls = calls_of(&proxy);
    assert_eq!(calls.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["set"]);
    assert_eq!(profile_min(&b), Value::String("192.168.1.60".into()));

    // FactoryReset: the proxy restores its own defaults, the profile is the factory one again
    // (and is what the vRGW gets next), the vRGW restarts.
    b.host.factory_reset_instance(n).expect("factory reset");
    assert_eq!(calls_of(&proxy).iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["factory_reset"]);
    assert_eq!(profile_min(&b), Value::String("192.168.1.100".into()));
    assert_eq!(b.owned(), vec![(slot.domain.clone(), DomState::Running)]);
    assert_eq!(b.host.sync_proxies(), 1);
    let calls = calls_of(&proxy);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let pushed = calls[0].1.iter().find(|v| v.name == min).map(|v| v.value.clone());
    assert_eq!(pushed, Some(proxy_api::Lexical::String("192.168.1.100".into())), "{calls:?}");
    // Kept across the agent's restart.
    let b = b.reopen();
    assert_eq!(profile_min(&b), Value::String("192.168.1.100".into()));

    // An instance with no vRGW here is refused, nothing touched.
    let mut b = b;
    let e = b.host.restart_instance(99).expect_err("no such vRGW");
    assert_eq!(e.fault().code.code(), 9001, "{e}");
    b.clean();
}

/// Instance `n`'s virtual device on `b` as its sessions left it after `sets` (name, value,
/// ParameterKey) through it, saved in the host's store.
fn virtual_device_after(b: &mut Bed, n: u32, sets: &[(&str, &str, &str)]) -> crate::vdevice::VirtualDevice {
    let id = b.host.virtual_device_id(n).expect("a virtual device");
    let start = crate::vdevice::Start {
        acs_url: "http://127.0.0.1:9/".into(),
        connection_request_url: format!("http://127.0.0.1:7548/vd/{n}"),
        cr_username: "vd".into(),
        cr_password: "factory".into(),
        periodic_inform_interval: 300,
    };
    let mut dev = crate::vdevice::VirtualDevice::new(id.clone(), b.host.device_id(), &start);
    for (name, v, key) in sets {
        let r = b.host.serve_virtual(n, &mut dev, &spv(name, v, key));
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{name}: {r:?}");
    }
    b.host.state().save_virtual_device(&id.key(), &dev.snapshot()).expect("save");
    dev
}

#[test]
fn a_virtual_device_continues_as_the_same_device_on_the_host_its_vrgw_migrates_to() {
    let mut src = bed("hvvdms");
    let mut dst = bed("hvvdmd");
    host_identity(&mut src, "h1");
    host_identity(&mut dst, "h2");
    let n = virtual_instance(&mut src, "carol", 11, "vRGW");
    let id = src.host.virtual_device_id(n).expect("a virtual device");
    // The source's virtual device as its sessions left it: the ACS set its connection-request
    // credentials and a ParameterKey, and a value of its vRGW.
    let min = "Device.DHCPv4.Server.Pool.1.MinAddress";
    virtual_device_after(
        &mut src,
        n,
        &[("Device.ManagementServer.ConnectionRequestUsername", "acs-set", "k7"), (min, "192.168.1.70", "k8")],
    );

    // What travels with the vRGW, and what the destination keeps of it.
    let carried = src.host.carried(n, false).expect("carried");
    let m = virtual_instance(&mut dst, "carol", 11, "vRGW");
    assert_ne!(m, 0);
    let profile = dst.host.arrived(m, &carried, true).expect("arrived");
    let tree = Tree::restore(datamodel::Schema::vrgw(), profile).expect("profile");
    assert_eq!(tree.value(min), Some(Value::String("192.168.1.70".into())));
    assert_eq!(dst.host.virtual_device_id(m), Some(id.clone()), "the same DeviceId on the other host");

    // Its device starts there: the same device (no BOOTSTRAP, no BOOT: a live migration), its
    // connection-request URL on the new host's listener, which the ACS hears of.
    let Bed { host, rt, dir, agent, lv, ovs: _ } = dst;
    let host_id = host.device_id();
    let handle = crate::worker::spawn(host, crate::worker::Timing::default(), Arc::new(tokio::sync::Notify::new()));
    let settings = Arc::new(crate::vagent::Settings {
        acs_url: "http://127.0.0.1:9/".into(),
        acs_username: "u".into(),
        acs_password: "p".into(),
        tls: None,
        cr_base: "http://127.0.0.1:7600".into(),
        periodic_inform_interval: 300,
        start_rate: 50,
        pool: http_shell::cpe::Pool::new(1),
        firmware_dir: std::env::temp_dir(),
        download_max_bytes: 1 << 20,
    });
    let start = crate::vagent::start(&handle, &settings, m, id.clone(), &host_id, false, std::time::Duration::ZERO);
    let running = rt.block_on(start).expect("started");
    let (user, _) = running.cpe.cr_credentials();
    rt.block_on(running.stop());
    let state = handle.shared().state();
    let events: Vec<String> = state.events_of(&id.key()).expect("events").into_iter().map(|e| e.1).collect();
    assert_eq!(events, vec!["4 VALUE CHANGE".to_string()]);
    assert_eq!(user, "acs-set", "the credentials the ACS set came along");
    let snap = state.virtual_device(&id.key()).expect("read").expect("kept");
    let here = crate::vdevice::VirtualDevice::restore(id.clone(), host_id.clone(), snap).expect("restore");
    assert_eq!(here.management("ParameterKey"), Some(Value::String("k8".into())));
    assert_eq!(here.management("ConnectionRequestURL"), Some(Value::String(format!("http://127.0.0.1:7600/vd/{m}"))));
    assert_eq!(state.virtual_device(&super::arrived_key(m)).expect("read"), None, "used once");
    drop(handle);
    src.clean();
    clean_after(&lv, &agent, &dir);
}

/// Three subscribers' instances (C-VLANs 1 to 3 on S-VLAN 100), on a template without a pool.
fn three_subscribers(b: &mut Bed) -> Vec<u32> {
    let (t, _) = b.template_and_pool(0);
    let mut made = Vec::new();
    for c in 1..=3u32 {
        let n = b.add(INSTANCE);
        let ip = format!("{INSTANCE}{n}.");
        let r = b.set(&[
            (&format!("{ip}Template"), Value::String(format!("{TEMPLATE}{t}"))),
            (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
            (&format!("{ip}CVLAN"), Value::UnsignedInt(c)),
        ]);
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
        made.push(n);
    }
    made
}

#[test]
fn instances_are_read_in_slices_and_a_round_ends_with_the_last() {
    let mut b = bed("hvslice");
    let made = three_subscribers(&mut b);
    // What a read sets, cleared, then read back slice by slice.
    for n in &made {
        b.host.set_internal(&format!("{INSTANCE}{n}.ManagementAddress"), Value::String(String::new()));
    }
    // Read from the tree itself: a GetParameterValues would read every instance first.
    let address = |b: &mut Bed, n: u32| match b.host.model.root().value(&format!("{INSTANCE}{n}.ManagementAddress")) {
        Some(Value::String(s)) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(b.host.refresh_stats_slice(0, 2), Some(made[1]), "two read, more to come");
    assert!(!address(&mut b, made[0]).is_empty());
    assert!(!address(&mut b, made[1]).is_empty());
    assert!(address(&mut b, made[2]).is_empty(), "not in this slice");
    assert_eq!(b.host.refresh_stats_slice(made[1], 2), None, "the last slice ends the round");
    assert!(!address(&mut b, made[2]).is_empty());
    b.clean();
}

#[test]
fn a_round_reads_every_state_and_some_statistics_in_turn_and_a_read_refreshes_what_it_names() {
    let mut b = bed("hvround");
    let made = three_subscribers(&mut b);
    b.host.stats_per_round = 2;
    // What a read sets, cleared; read back from the tree itself (a GetParameterValues reads).
    let clear = |b: &mut Bed, status: bool| {
        for n in &made {
            b.host.set_internal(&format!("{INSTANCE}{n}.CPUTime"), Value::UnsignedLong(0));
            if status {
                b.host.set_internal(&format!("{INSTANCE}{n}.Status"), Value::String("Error".into()));
            }
        }
    };
    let seen = |b: &Bed, n: u32| {
        let root = b.host.model.root();
        let cpu = match root.value(&format!("{INSTANCE}{n}.CPUTime")) {
            Some(Value::UnsignedLong(ms)) => ms,
            other => panic!("{other:?}"),
        };
        let status = match root.value(&format!("{INSTANCE}{n}.Status")) {
            Some(Value::String(s)) => s,
            other => panic!("{other:?}"),
        };
        (cpu > 0, status)
    };
    let running = || "Running".to_string();
    let round = |b: &mut Bed| {
        assert_eq!(b.host.refresh_stats_slice(0, usize::MAX), None);
        made.iter().map(|n| seen(b, *n)).collect::<Vec<_>>()
    };
    // Round 1: every state from the listings, the statistics of the first two.
    clear(&mut b, false);
    assert_eq!(round(&mut b), vec![(true, running()), (true, running()), (false, running())]);
    // Round 2 goes on: the third, then the first again.
    clear(&mut b, false);
    assert_eq!(round(&mut b), vec![(true, running()), (false, running()), (true, running())]);
    // A status shown that the listing contradicts (a job changed it, or a change to show) is
    // read by name, not taken from the listing: round 3 reads the second and third, and the
    // first too.
    clear(&mut b, false);
    b.host.set_internal(&format!("{INSTANCE}{}.Status", made[0]), Value::String("Suspended".into()));
    assert_eq!(round(&mut b), vec![(true, running()), (true, running()), (true, running())]);
    // A domain the listings did not show (gone behind the agent's back) is asked for by name,
    // and shown as an error.
    let gone = b.host.model.root().value(&format!("{INSTANCE}{}.Domain", made[1]));
    let Some(Value::String(gone)) = gone else { panic!("{gone:?}") };
    b.host.compute.undefine(&gone).expect("undefine behind the agent's back");
    clear(&mut b, false);
    assert_eq!(round(&mut b)[1], (false, "Error".to_string()));
    // A GetParameterValues reads from libvirt the instances it names, and only those.
    clear(&mut b, true);
    assert!(matches!(b.get(&format!("{INSTANCE}{}.CPUTime", made[2])), Value::UnsignedLong(ms) if ms > 0));
    assert_eq!(seen(&b, made[0]), (false, "Error".to_string()), "not named: not read");
    b.get(&format!("{INSTANCE}{}.", made[0]));
    assert_eq!(seen(&b, made[0]), (true, running()));
    b.clean();
}

#[test]
fn a_virtual_device_alone_moves_cold_by_a_context_sealed_to_the_destination() {
    let mut src = bed("hvvdcs");
    let mut dst = bed("hvvdcd");
    host_identity(&mut src, "h1");
    host_identity(&mut dst, "h2");
    let n = virtual_instance(&mut src, "sub-11", 11, "vRGW");
    let id = src.host.virtual_device_id(n).expect("a virtual device");
    // What its sessions left: credentials and a ParameterKey the ACS set, a DHCP pool and the
    // Wi-Fi passphrase (a hidden value: read back empty, so never copied by value).
    let pass = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase";
    let min = "Device.DHCPv4.Server.Pool.1.MinAddress";
    virtual_device_after(
        &mut src,
        n,
        &[
            ("Device.ManagementServer.ConnectionRequestPassword", "acs-set-pw", "k1"),
            (min, "192.168.1.80", "k2"),
            (pass, "correct horse battery", "k3"),
        ],
    );

    // The destination prepares a pooled vRGW and offers a key; a second row (another
    // migration) has a key of its own.
    let (td, _) = dst.template_and_pool(2);
    let (m, r) = incoming(&mut dst, td, 100, 11, "ColdContext", "", "");
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    let (other, _) = incoming(&mut dst, td, 100, 12, "ColdContext", "", "");
    let q = format!("{INSTANCE}{m}.Migration.");
    assert_eq!(dst.s(&format!("{q}Status")), "Prepared", "{}", dst.s(&format!("{q}Error")));
    let key = dst.s(&format!("{q}Key"));
    assert_eq!(key.len(), 44, "an X25519 public key in base64: {key:?}");
    assert_ne!(dst.s(&format!("{INSTANCE}{other}.Migration.Key")), key);
    let r = dst.set(&[(&format!("{INSTANCE}{m}.ManagementMode"), Value::String("Virtual".into()))]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");

    // The source seals what travels to it when it lets go.
    let p = format!("{INSTANCE}{n}.Migration.");
    let r = src.set(&[
        (&format!("{p}Mode"), Value::String("ColdContext".into())),
        (&format!("{p}PeerKey"), Value::String(key.clone())),
        (&format!("{p}Command"), Value::String("Start".into())),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    assert_eq!(src.s(&format!("{p}Status")), "Stopped", "{}", src.s(&format!("{p}Error")));
    let sealed = src.s(&format!("{p}Context"));
    assert!(sealed.len() > 100, "{sealed:?}");
    for secret in ["correct horse battery", "acs-set-pw", "192.168.1.80"] {
        assert!(!sealed.contains(secret), "{secret} in the clear");
    }

    let complete = |b: &mut Bed, row: u32| {
        let q = format!("{INSTANCE}{row}.Migration.");
        let r = b.set(&[
            (&format!("{q}Mode"), Value::String("ColdContext".into())),
            (&format!("{q}Context"), Value::String(sealed.clone())),
            (&format!("{q}Command"), Value::String("Complete".into())),
        ]);
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
        (b.s(&format!("{q}Status")), b.s(&format!("{q}Error")))
    };
    // Brought to another row (sealed to another key): refused with the reason, not taken.
    let (status, error) = complete(&mut dst, other);
    assert_eq!(status, "Error");
    assert!(error.contains("does not open with this host's key"), "{error}");
    assert_eq!(dst.bindings().len(), 0, "nothing bound: {:?}", dst.bindings());
    command(&mut dst, other, "ColdContext", "Abort");

    // Its own row opens it: configuration, secrets and the device's state came.
    let (status, error) = complete(&mut dst, m);
    assert_eq!(status, "Completed", "{error}");
    assert_eq!(dst.s(&format!("{q}Context")), "", "used once");
    assert_eq!(dst.s(&format!("{q}Key")), "", "used once");
    let tree = Tree::restore(datamodel::Schema::vrgw(), dst.host.mounts[&m].profile()).expect("profile");
    assert_eq!(tree.value(pass), Some(Value::String("correct horse battery".into())));
    assert_eq!(tree.value(min), Some(Value::String("192.168.1.80".into())));
    let came = dst.host.state().virtual_device(&super::arrived_key(m)).expect("read").expect("the device's state came");
    assert_eq!(came["key"].as_str(), Some(id.key().as_str()));
    assert_eq!(came["booted"].as_bool(), Some(true), "a cold move starts another vRGW: 1 BOOT there");
    let here = crate::vdevice::VirtualDevice::restore(id.clone(), dst.host.device_id(), came["state"].clone())
        .expect("restore");
    assert_eq!(here.management("ParameterKey"), Some(Value::String("k3".into())));
    assert_eq!(
        here.management("ConnectionRequestPassword"),
        Some(Value::String("acs-set-pw".into())),
        "the credentials the ACS set came along"
    );
    assert_eq!(dst.host.virtual_device_id(m), Some(id), "the same DeviceId there");
    dst.clean();
    src.clean();
}

#[test]
fn a_firmware_rebuilds_the_vrgw_from_it_and_keeps_its_configuration() {
    use crate::compute::Compute as _;
    use crate::firmware::{testing as fw, Kind};
    let mut b = bed("hvfw");
    host_identity(&mut b, "h1");
    let n = virtual_instance(&mut b, "dave", 21, "vRGW");
    let min = "Device.DHCPv4.Server.Pool.1.MinAddress";
    virtual_device_after(&mut b, n, &[(min, "192.168.1.90", "k1")]);
    let firmware = format!("{INSTANCE}{n}.Firmware");
    let domain = b.s(&format!("{INSTANCE}{n}.Domain"));
    let xml = |b: &Bed| b.lv.xml(&domain, false).expect("xml").expect("defined");
    let before = xml(&b);
    assert!(before.contains("/var/lib/vrgw/images/base/initrd.img"), "{before}");

    // A disk image for this kernel template: refused with why, nothing changed.
    let dir = b.dir.join("firmware");
    let disk = fw::stored(&dir, &fw::qcow2(3), Kind::Disk);
    let e = b.host.install_firmware(n, &disk).expect_err("the other kind");
    assert!(e.to_string().contains("a disk image for a template that boots a kernel"), "{e}");
    assert_eq!(b.s(&firmware), "");
    assert_eq!(xml(&b), before);

    // An initramfs: the domain is rebuilt to boot it with the template's kernel and runs.
    let initrd = fw::stored(&dir, &fw::initramfs(b"v2"), Kind::Initramfs);
    let path = initrd.display().to_string();
    b.host.install_firmware(n, &initrd).expect("installed");
    assert_eq!(b.s(&firmware), path);
    let after = xml(&b);
    assert!(after.contains(&format!("<initrd>{path}</initrd>")), "{after}");
    assert!(after.contains("<kernel>/var/lib/vrgw/images/base/vmlinuz</kernel>"), "{after}");
    assert_eq!(b.owned(), vec![(domain.clone(), DomState::Running)]);
    assert_eq!(b.bindings().iter().map(|x| (x.svlan, x.cvlan)).collect::<Vec<_>>(), vec![(100, 21)]);
    // Its configuration stays: the profile the new vRGW's proxy gets.
    let tree = Tree::restore(datamodel::Schema::vrgw(), b.host.mounts[&n].profile()).expect("profile");
    assert_eq!(tree.value(min), Some(Value::String("192.168.1.90".into())));

    // It goes with the vRGW to another host: taken where the domain came along and the image
    // is there (Live, ColdImage), not by a pooled vRGW (ColdContext).
    let carried = b.host.carried(n, true).expect("carried");
    let v: serde_json::Value = serde_json::from_str(&carried).expect("json");
    assert_eq!(v["firmware"], path.as_str());
    let template = b.s(&format!("{INSTANCE}{n}.Template"));
    let another = |b: &mut Bed, subscriber: &str, cvlan: u32| {
        let k = b.add(INSTANCE);
        let ip = format!("{INSTANCE}{k}.");
        let r = b.set(&[
            (&format!("{ip}Subscriber"), Value::String(subscriber.into())),
            (&format!("{ip}Template"), Value::String(template.clone())),
            (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
            (&format!("{ip}CVLAN"), Value::UnsignedInt(cvlan)),
        ]);
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
        k
    };
    let m = another(&mut b, "frank", 22);
    let profile = b.host.arrived(m, &carried, true).expect("arrived");
    assert_eq!(b.s(&format!("{INSTANCE}{m}.Firmware")), path);
    let tree = Tree::restore(datamodel::Schema::vrgw(), profile).expect("profile");
    assert_eq!(tree.value(min), Some(Value::String("192.168.1.90".into())));
    let k = another(&mut b, "gina", 23);
    b.host.arrived(k, &carried, false).expect("arrived");
    assert_eq!(b.s(&format!("{INSTANCE}{k}.Firmware")), "");

    // Kept across the agent's restart (and a domain defined again by the reconciliation
    // boots the same firmware).
    let mut b = b.reopen();
    assert_eq!(b.s(&firmware), path);
    b.lv.stop(&domain).expect("stopped behind the agent's back");
    b.lv.undefine(&domain).expect("and undefined");
    assert_eq!(b.lv.state(&domain).expect("state"), None, "gone");
    b.host.reconcile().expect("reconciled");
    assert!(xml(&b).contains(&format!("<initrd>{path}</initrd>")));
    b.clean();
}

/// The reason given for each refused parameter of a SetParameterValues.
fn reasons(b: &Body) -> Vec<String> {
    match b {
        Body::Fault(f) => f.set_parameter_values_faults.iter().map(|p| p.string.clone()).collect(),
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn container_templates_give_each_vrgw_a_writable_layer_over_the_shared_root() {
    let mut b = bed("hvct");
    let base = crate::rootfs::tests::base_in(&b.dir);
    let t = b.add(TEMPLATE);
    let tp = format!("{TEMPLATE}{t}");
    let pool = b.add(POOL);
    let r = b.set(&[
        (&format!("{tp}.Name"), Value::String("ct".into())),
        (&format!("{tp}.Image"), Value::String(base.display().to_string())),
        (&format!("{tp}.Flavor"), Value::String("Container".into())),
        (&format!("{tp}.MemoryKiB"), Value::UnsignedInt(32768)),
        (&format!("{tp}.VCPUs"), Value::UnsignedInt(2)),
        (&format!("{POOL}{pool}.Template"), Value::String(tp.clone())),
        (&format!("{POOL}{pool}.TargetSize"), Value::UnsignedInt(1)),
        (&format!("{POOL}{pool}.Enable"), Value::Boolean(true)),
    ]);
    assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
    b.fill();
    assert_eq!(b.owned(), vec![("hvct-1".to_string(), DomState::Paused)], "a frozen container waits in the pool");
    // Two subscribers: the pooled container, then a cold start.
    let mut rows = Vec::new();
    for c in [21, 22] {
        let i = b.add(INSTANCE);
        let ip = format!("{INSTANCE}{i}.");
        let r = b.set(&[
            (&format!("{ip}Template"), Value::String(tp.clone())),
            (&format!("{ip}SVLAN"), Value::UnsignedInt(100)),
            (&format!("{ip}CVLAN"), Value::UnsignedInt(c)),
        ]);
        assert!(matches!(r, Body::SetParameterValuesResponse(_)), "{r:?}");
        assert_eq!(b.s(&format!("{ip}Status")), "Running", "{}", b.s(&format!("{ip}LastError")));
        rows.push(i);
    }
    let domains: Vec<String> = rows.iter().map(|i| b.s(&format!("{INSTANCE}{i}.Domain"))).collect();
    assert_eq!(domains, vec!["hvct-1".to_string(), "hvct-2".to_string()]);
    let overlays = b.dir.join("overlays");
    let layer = |d: &str| overlays.join(d);
    let roots: Vec<PathBuf> = domains.iter().map(|d| crate::rootfs::root_of(&layer(d))).collect();
    for (d, root) in domains.iter().zip(&roots) {
        assert!(crate::rootfs::is_mounted(root), "{} mounted", root.display());
        // What libvirt was given: a container of the template's resources on that root, its
        // NICs named inside, the secret bound read-only, the address in its init's environment.
        let xml = b.lv.xml(d, true).expect("xml").expect("defined");
        for needle in [
            ">exe</type>".to_string(),
            format!("<init>{}</init>", crate::domain::CONTAINER_INIT),
            format!("<source dir='{}'/>", root.display()),
            format!("<target dir='{}'/>", crate::domain::CONTAINER_SECRET),
            "<guest dev='lan'/>".to_string(),
            "<initenv name='VRGW_MGMT'>10.99.0.".to_string(),
            "<shares>2048</shares>".to_string(),
            "<memory unit='KiB'>32768</memory>".to_string(),
            // The template's process limit, which the agent sets in the container's cgroup.
            "pids=\"256\"".to_string(),
        ] {
            assert!(xml.contains(&needle), "{needle} missing from {xml}");
        }
        assert!(!xml.contains("<kernel>") && !xml.contains("fwcfg"), "{xml}");
        assert!(crate::domain::identity_of(&xml).is_some(), "read back as a vRGW (migrations): {xml}");
    }
    // Both see the template's root; what one writes stays in its own layer.
    std::fs::write(roots[0].join("shared.txt"), "changed by the first\n").expect("write");
    assert_eq!(std::fs::read_to_string(roots[1].join("shared.txt")).expect("read"), "from the template\n");
    assert_eq!(std::fs::read_to_string(base.join("shared.txt")).expect("read"), "from the template\n");
    // A container's root is mounted again when the agent starts after the host restarted.
    let out = std::process::Command::new("umount").arg(&roots[1]).status().expect("umount");
    assert!(out.success());
    let mut b = b.reopen();
    assert!(crate::rootfs::is_mounted(&roots[1]), "mounted again by the reconciliation");
    assert_eq!(std::fs::read_to_string(roots[0].join("shared.txt")).expect("read"), "changed by the first\n");
    // Its flavor cannot change under vRGWs made from it.
    let r = b.set(&[(&format!("{tp}.Flavor"), Value::String("VM".into()))]);
    assert_eq!(fault_names(&r), vec![(format!("{tp}.Flavor"), 9007)]);
    assert!(reasons(&r)[0].contains("cannot change"), "{r:?}");
    // Live migration is refused with the reason; nothing is made.
    let (m, _) = incoming(&mut b, t, 100, 44, "Live", "test:///default", "hvct-1");
    let q = format!("{INSTANCE}{m}.");
    assert_eq!(b.s(&format!("{q}Migration.Status")), "Error");
    assert!(
        b.s(&format!("{q}Migration.Error")).contains("cannot migrate live"),
        "{}",
        b.s(&format!("{q}Migration.Error"))
    );
    assert_eq!(b.owned().len(), 2);
    // A deleted instance's layer goes with it; the shared root stays.
    for i in rows {
        let r = b.host.handle(&Body::DeleteObject(DeleteObject {
            object_name: format!("{INSTANCE}{i}."),
            parameter_key: "k".into(),
        }));
        assert!(matches!(r, Body::DeleteObjectResponse(_)), "{r:?}");
    }
    for (d, root) in domains.iter().zip(&roots) {
        assert!(!crate::rootfs::is_mounted(root) && !layer(d).exists(), "{d}'s layer removed");
    }
    assert!(base.join("shared.txt").exists());
    b.set(&[(&format!("{POOL}{pool}.Enable"), Value::Boolean(false))]);
    b.fill();
    assert!(b.owned().is_empty());
    b.clean();
}

#[test]
fn a_host_without_an_lxc_connection_refuses_container_templates() {
    let mut b = bed_with("hvnoct", |c| c.container_type = None);
    let t = b.add(TEMPLATE);
    let flavor = format!("{TEMPLATE}{t}.Flavor");
    let r = b.set(&[(&flavor, Value::String("Container".into()))]);
    assert_eq!(fault_names(&r), vec![(flavor.clone(), 9007)]);
    assert!(reasons(&r)[0].contains("no LXC connection"), "{r:?}");
    assert_eq!(b.s(&flavor), "VM", "nothing changed");
    // An unknown flavor is the data model's own refusal.
    let r = b.set(&[(&flavor, Value::String("Native".into()))]);
    assert_eq!(fault_names(&r), vec![(flavor.clone(), 9007)]);
    b.clean();
}
