//! The host end of the Q-in-Q access network: an S-VLAN per trunk, a C-VLAN per subscriber,
//! behind one trait with an Open vSwitch backend.
//!
//! Layout (Open vSwitch, userspace datapath, `other_config:vlan-limit=2`):
//!
//! ```text
//! uplink ── PREFIX-trunk ── patch PREFIX-sS-up (dot1q-tunnel, tag S, qinq-ethtype 802.1ad)
//!                              │
//!                           patch PREFIX-sS-dn (trunks: bound C-VLANs) ── PREFIX-sS ── vRGW LAN port (access, tag C)
//! PREFIX-park ── pooled vRGWs' LAN ports (access, tag 4094, no uplink: they hear nothing)
//! ```
//!
//! A frame from the access network arrives on the uplink with an 802.1ad outer tag S over an
//! 802.1Q inner tag C; the tunnel port pops S, the S bridge delivers C to the vRGW's access port
//! untagged. C-VLAN numbers are only unique within their S-VLAN, hence a bridge per S-VLAN.

use std::process::Command;

pub mod linux;

/// The VLAN a pooled instance's LAN port waits on (nothing else is on it).
pub const PARKING_VLAN: u16 = 4094;

/// A failed VLAN operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VlanError {
    /// A VLAN id outside 1..=4094.
    #[error("VLAN id {0} is outside 1..4094")]
    BadId(u32),
    /// The switch refused or could not be reached.
    #[error("{command}: {message}")]
    Switch {
        /// What was run.
        command: String,
        /// What it said.
        message: String,
    },
}

/// Result of a VLAN operation.
pub type Result<T> = std::result::Result<T, VlanError>;

/// A vRGW LAN port bound to (S-VLAN, C-VLAN).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    /// The switch port (the domain's tap device).
    pub port: String,
    /// Outer tag.
    pub svlan: u16,
    /// Inner tag.
    pub cvlan: u16,
}

/// Where a vRGW's LAN NIC plugs in, as its domain XML says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanNic {
    /// Bridge.
    pub bridge: String,
    /// Whether it is an Open vSwitch bridge.
    pub openvswitch: bool,
    /// The access VLAN tag on the port, when the switch tags.
    pub vlan: Option<u16>,
}

/// What the agent needs from the host's switch.
pub trait VlanBackend: Send + Sync {
    /// Where a LAN NIC bound to (S-VLAN, C-VLAN), or parked (`None`), plugs in; what it needs is
    /// set up first.
    fn lan_nic(&self, binding: Option<(u16, u16)>) -> Result<LanNic>;
    /// The bridge pooled instances' LAN ports are parked on (created if missing).
    fn parking_bridge(&self) -> Result<String>;
    /// Makes sure the trunk and the S-VLAN's bridge exist; the bridge LAN ports of this S-VLAN
    /// plug into.
    fn ensure_svlan(&self, svlan: u16) -> Result<String>;
    /// Removes an S-VLAN's bridge and its tunnel port when no port is bound on it.
    fn remove_svlan_if_unused(&self, svlan: u16) -> Result<bool>;
    /// Moves `port` onto the S-VLAN's bridge as an access port of C-VLAN `cvlan`, and lets that
    /// C-VLAN through the S-VLAN's uplink. One switch transaction.
    fn bind(&self, port: &str, svlan: u16, cvlan: u16) -> Result<()>;
    /// Moves `port` back to the parking bridge and closes its C-VLAN on the uplink.
    fn unbind(&self, port: &str) -> Result<()>;
    /// Removes `port` from the switch (its domain is gone) and closes its C-VLAN on the uplink.
    fn release(&self, port: &str) -> Result<()>;
    /// Every bound port, for reconciliation after a restart.
    fn bindings(&self) -> Result<Vec<Binding>>;
}

fn check(id: u16) -> Result<u16> {
    if (1..=4094).contains(&id) {
        Ok(id)
    } else {
        Err(VlanError::BadId(u32::from(id)))
    }
}

/// Open vSwitch through `ovs-vsctl` (userspace datapath).
#[derive(Debug, Clone)]
pub struct Ovs {
    /// Name prefix of every bridge and port this backend creates.
    pub prefix: String,
    /// The physical (or veth) interface toward the access network, if any.
    pub uplink: Option<String>,
    /// `ovs-vsctl` binary.
    pub vsctl: String,
    /// S-VLANs whose bridges and tunnel ports this backend made sure of.
    ready: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<u16>>>,
}

impl Ovs {
    /// A backend naming its bridges `PREFIX-trunk`, `PREFIX-sS`, `PREFIX-park`.
    pub fn new(prefix: &str, uplink: Option<&str>) -> Ovs {
        Ovs {
            prefix: prefix.to_string(),
            uplink: uplink.map(str::to_string),
            vsctl: "ovs-vsctl".into(),
            ready: Default::default(),
        }
    }

    fn trunk(&self) -> String {
        format!("{}-trunk", self.prefix)
    }

    fn sbridge(&self, s: u16) -> String {
        format!("{}-s{s}", self.prefix)
    }

    fn park(&self) -> String {
        format!("{}-park", self.prefix)
    }

    fn run(&self, args: &[String]) -> Result<String> {
        let out = Command::new(&self.vsctl).arg("--timeout=10").args(args).output().map_err(|e| VlanError::Switch {
            command: format!("{} {}", self.vsctl, args.join(" ")),
            message: e.to_string(),
        })?;
        if !out.status.success() {
            return Err(VlanError::Switch {
                command: format!("{} {}", self.vsctl, args.join(" ")),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn ports(&self, bridge: &str) -> Result<Vec<String>> {
        match self.run(&Self::v(&["list-ports", bridge])) {
            Ok(s) => Ok(s.lines().map(str::to_string).filter(|l| !l.is_empty()).collect()),
            Err(VlanError::Switch { message, .. }) if message.contains("no bridge named") => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The C-VLANs allowed on the S-VLAN bridge's uplink: those of its bound ports.
    fn allowed(&self, s: u16, extra: Option<u16>, without_port: Option<&str>) -> Result<Vec<u16>> {
        let mut cs: Vec<u16> = self
            .bindings()?
            .into_iter()
            .filter(|b| b.svlan == s && Some(b.port.as_str()) != without_port)
            .map(|b| b.cvlan)
            .collect();
        cs.extend(extra);
        cs.sort_unstable();
        cs.dedup();
        Ok(cs)
    }

    fn trunks_arg(port: &str, cs: &[u16]) -> Vec<String> {
        if cs.is_empty() {
            // An empty trunks set means "all VLANs" to Open vSwitch; park it on the unused VLAN.
            Self::v(&["--", "set", "port", port, &format!("trunks={PARKING_VLAN}")])
        } else {
            let list = cs.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
            Self::v(&["--", "set", "port", port, &format!("trunks={list}")])
        }
    }

    /// The S-VLAN `port` is bound on, if any.
    fn svlan_of(&self, port: &str) -> Result<Option<u16>> {
        Ok(self.bindings()?.into_iter().find(|b| b.port == port).map(|b| b.svlan))
    }

    /// The external-id key that records a bound port's S-VLAN (one `list port` then tells
    /// every binding).
    fn key(&self) -> String {
        format!("{}-svlan", self.prefix)
    }

    fn ensure_bridge(&self, bridge: &str) -> Result<()> {
        self.run(&Self::v(&["--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev"]))?;
        Ok(())
    }

    /// The S-VLANs whose tunnel ports exist on the trunk bridge.
    fn svlans(&self) -> Result<Vec<u16>> {
        let pre = format!("{}-s", self.prefix);
        Ok(self
            .ports(&self.trunk())?
            .iter()
            .filter_map(|p| p.strip_prefix(&pre)?.strip_suffix("-up")?.parse().ok())
            .collect())
    }

    fn set_uplink_trunks(&self, svlans: &[u16]) -> Result<()> {
        let Some(up) = &self.uplink else { return Ok(()) };
        let mut args = Self::v(&["--may-exist", "add-port", &self.trunk(), up]);
        args.extend(Self::trunks_arg(up, svlans));
        self.run(&args)?;
        Ok(())
    }
}

impl VlanBackend for Ovs {
    fn lan_nic(&self, binding: Option<(u16, u16)>) -> Result<LanNic> {
        Ok(match binding {
            Some((s, c)) => LanNic { bridge: self.ensure_svlan(s)?, openvswitch: true, vlan: Some(check(c)?) },
            None => LanNic { bridge: self.parking_bridge()?, openvswitch: true, vlan: Some(PARKING_VLAN) },
        })
    }

    fn parking_bridge(&self) -> Result<String> {
        self.run(&Self::v(&["set", "Open_vSwitch", ".", "other_config:vlan-limit=2"]))?;
        self.ensure_bridge(&self.park())?;
        Ok(self.park())
    }

    fn ensure_svlan(&self, svlan: u16) -> Result<String> {
        let s = check(svlan)?;
        if self.ready.lock().unwrap_or_else(|e| e.into_inner()).contains(&s) {
            return Ok(self.sbridge(s));
        }
        self.run(&Self::v(&["set", "Open_vSwitch", ".", "other_config:vlan-limit=2"]))?;
        self.ensure_bridge(&self.trunk())?;
        let (br, up, dn) = (self.sbridge(s), format!("{}-s{s}-up", self.prefix), format!("{}-s{s}-dn", self.prefix));
        self.ensure_bridge(&br)?;
        let mut args = Self::v(&[
            "--may-exist",
            "add-port",
            &self.trunk(),
            &up,
            "--",
            "set",
            "interface",
            &up,
            "type=patch",
            &format!("options:peer={dn}"),
            "--",
            "set",
            "port",
            &up,
            "vlan_mode=dot1q-tunnel",
            &format!("tag={s}"),
            "other_config:qinq-ethtype=802.1ad",
            "--",
            "--may-exist",
            "add-port",
            &br,
            &dn,
            "--",
            "set",
            "interface",
            &dn,
            "type=patch",
            &format!("options:peer={up}"),
        ]);
        let cs = self.allowed(s, None, None)?;
        args.extend(Self::trunks_arg(&dn, &cs));
        self.run(&args)?;
        let mut svlans = self.svlans()?;
        svlans.push(s);
        svlans.sort_unstable();
        svlans.dedup();
        self.set_uplink_trunks(&svlans)?;
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).insert(s);
        Ok(br)
    }

    fn remove_svlan_if_unused(&self, svlan: u16) -> Result<bool> {
        let s = check(svlan)?;
        let dn = format!("{}-s{s}-dn", self.prefix);
        if self.ports(&self.sbridge(s))?.iter().any(|p| *p != dn) {
            return Ok(false);
        }
        let up = format!("{}-s{s}-up", self.prefix);
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).remove(&s);
        self.run(&Self::v(&["--if-exists", "del-port", &up, "--", "--if-exists", "del-br", &self.sbridge(s)]))?;
        let svlans: Vec<u16> = self.svlans()?.into_iter().filter(|x| *x != s).collect();
        self.set_uplink_trunks(&svlans)?;
        Ok(true)
    }

    fn bind(&self, port: &str, svlan: u16, cvlan: u16) -> Result<()> {
        let (s, c) = (check(svlan)?, check(cvlan)?);
        let br = self.ensure_svlan(s)?;
        let dn = format!("{}-s{s}-dn", self.prefix);
        let cs = self.allowed(s, Some(c), Some(port))?;
        let mut args = Self::v(&[
            "--if-exists",
            "del-port",
            port,
            "--",
            "add-port",
            &br,
            port,
            &format!("tag={c}"),
            &format!("external_ids:{}={s}", self.key()),
        ]);
        args.extend(Self::trunks_arg(&dn, &cs));
        // Moving from another S-VLAN: its uplink stops carrying this port's old C-VLAN.
        if let Some(old) = self.svlan_of(port)?.filter(|old| *old != s) {
            let old_cs = self.allowed(old, None, Some(port))?;
            args.extend(Self::trunks_arg(&format!("{}-s{old}-dn", self.prefix), &old_cs));
        }
        self.run(&args)?;
        Ok(())
    }

    fn unbind(&self, port: &str) -> Result<()> {
        let park = self.parking_bridge()?;
        let s = self.svlan_of(port)?;
        let mut args =
            Self::v(&["--if-exists", "del-port", port, "--", "add-port", &park, port, &format!("tag={PARKING_VLAN}")]);
        if let Some(s) = s {
            let cs = self.allowed(s, None, Some(port))?;
            args.extend(Self::trunks_arg(&format!("{}-s{s}-dn", self.prefix), &cs));
        }
        self.run(&args)?;
        Ok(())
    }

    fn release(&self, port: &str) -> Result<()> {
        let mut args = Self::v(&["--if-exists", "del-port", port]);
        if let Some(s) = self.svlan_of(port)? {
            let cs = self.allowed(s, None, Some(port))?;
            args.extend(Self::trunks_arg(&format!("{}-s{s}-dn", self.prefix), &cs));
        }
        self.run(&args)?;
        Ok(())
    }

    fn bindings(&self) -> Result<Vec<Binding>> {
        let out = self.run(&Self::v(&[
            "--format=csv",
            "--data=bare",
            "--no-headings",
            "--columns=name,tag,external_ids",
            "list",
            "port",
        ]))?;
        let key = format!("{}=", self.key());
        let mut found: Vec<Binding> = out
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ',');
                let (name, tag, ext) = (f.next()?, f.next()?, f.next()?);
                let s = ext.trim_matches('"').split_whitespace().find_map(|kv| kv.strip_prefix(&key))?.parse().ok()?;
                Some(Binding { port: name.trim_matches('"').to_string(), svlan: s, cvlan: tag.parse().ok()? })
            })
            .collect();
        found.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Open vSwitch must be running (scripts/test starts it); a test that cannot reach it fails
    /// with the switch's own message rather than passing silently.
    fn ovs(prefix: &str) -> Ovs {
        let o = Ovs::new(prefix, None);
        if let Err(e) = o.run(&Ovs::v(&["show"])) {
            panic!("Open vSwitch is not reachable ({e}); start it with scripts/start-ovs");
        }
        // Leftovers of an earlier run.
        for br in o.run(&Ovs::v(&["list-br"])).unwrap_or_default().lines() {
            if br.starts_with(&format!("{prefix}-")) {
                let _ = o.run(&Ovs::v(&["--if-exists", "del-br", br]));
            }
        }
        o
    }

    fn internal_port(o: &Ovs, bridge: &str, name: &str) {
        o.run(&Ovs::v(&["add-port", bridge, name, "--", "set", "interface", name, "type=internal"]))
            .expect("internal port");
    }

    #[test]
    fn bind_rebind_unbind_on_open_vswitch() {
        let o = ovs("vt1");
        let park = o.parking_bridge().expect("parking bridge");
        internal_port(&o, &park, "vt1-p1");
        internal_port(&o, &park, "vt1-p2");
        o.bind("vt1-p1", 100, 7).expect("bind p1");
        o.bind("vt1-p2", 100, 8).expect("bind p2");
        assert_eq!(
            o.bindings().expect("bindings"),
            vec![
                Binding { port: "vt1-p1".into(), svlan: 100, cvlan: 7 },
                Binding { port: "vt1-p2".into(), svlan: 100, cvlan: 8 },
            ]
        );
        // The tunnel port pushes and pops the 802.1ad S-tag; the uplink of the S bridge lets
        // exactly the bound C-VLANs through.
        let get = |t: &str, p: &str, c: &str| o.run(&Ovs::v(&["get", t, p, c])).expect("get");
        assert_eq!(get("port", "vt1-s100-up", "vlan_mode"), "dot1q-tunnel");
        assert_eq!(get("port", "vt1-s100-up", "tag"), "100");
        assert_eq!(get("port", "vt1-s100-up", "other_config:qinq-ethtype"), "\"802.1ad\"");
        assert_eq!(get("port", "vt1-s100-dn", "trunks"), "[7, 8]");
        assert_eq!(get("bridge", "vt1-s100", "datapath_type"), "netdev");
        // Rebinding moves the port to another S-VLAN and closes its old C-VLAN.
        o.bind("vt1-p1", 200, 7).expect("rebind p1");
        assert_eq!(get("port", "vt1-s100-dn", "trunks"), "[8]");
        assert_eq!(get("port", "vt1-s200-dn", "trunks"), "[7]");
        o.unbind("vt1-p2").expect("unbind p2");
        assert_eq!(o.run(&Ovs::v(&["port-to-br", "vt1-p2"])).expect("br"), park);
        assert_eq!(get("port", "vt1-p2", "tag"), PARKING_VLAN.to_string());
        assert_eq!(get("port", "vt1-s100-dn", "trunks"), format!("[{PARKING_VLAN}]"), "nothing bound: nothing through");
        assert!(o.remove_svlan_if_unused(100).expect("remove 100"));
        o.release("vt1-p2").expect("release p2");
        o.release("vt1-p2").expect("releasing twice is not an error");
        assert!(o.run(&Ovs::v(&["port-to-br", "vt1-p2"])).is_err(), "p2 is gone from the switch");
        assert!(!o.remove_svlan_if_unused(200).expect("200 still used"));
        assert_eq!(o.bindings().expect("bindings"), vec![Binding { port: "vt1-p1".into(), svlan: 200, cvlan: 7 }]);
        for br in ["vt1-s200", "vt1-trunk", "vt1-park"] {
            let _ = o.run(&Ovs::v(&["--if-exists", "del-br", br]));
        }
    }

    #[test]
    fn bad_ids_and_switch_errors_are_precise() {
        let o = ovs("vt2");
        assert_eq!(o.bind("vt2-x", 0, 7), Err(VlanError::BadId(0)));
        assert_eq!(o.bind("vt2-x", 100, 4095), Err(VlanError::BadId(4095)));
        match o.bind("vt2-no-such-port", 100, 7) {
            // Open vSwitch accepts a port whose interface does not exist yet; what it refuses is
            // a bad request. Either way nothing is silently wrong: the binding is recorded.
            Ok(()) => assert!(o.bindings().expect("b").iter().any(|b| b.port == "vt2-no-such-port")),
            Err(VlanError::Switch { command, message }) => assert!(command.contains("add-port") && !message.is_empty()),
            Err(e) => panic!("unexpected {e}"),
        }
        let broken = Ovs { vsctl: "/nonexistent/ovs-vsctl".into(), ..Ovs::new("vt2", None) };
        assert!(matches!(broken.ensure_svlan(10), Err(VlanError::Switch { .. })));
        for br in ["vt2-s100", "vt2-trunk", "vt2-park"] {
            let _ = o.run(&Ovs::v(&["--if-exists", "del-br", br]));
        }
    }
}
