//! The Linux backend, over rtnetlink, for hosts whose kernel has 802.1Q support:
//!
//! ```text
//! uplink ── PREFIXsS (802.1ad VLAN S on the uplink) ── PREFIXcS.C (802.1Q VLAN C on it) ── PREFIXbS.C (bridge) ── vRGW LAN tap
//! PREFIXpark (bridge, nothing else on it) ── pooled vRGWs' LAN taps
//! ```
//!
//! A bridge per subscriber: the vRGW's tap and the subscriber's C-VLAN device are its only
//! ports, so the kernel tags and untags; nothing is configured per port. Netlink calls run on the
//! agent's runtime (the host thread blocks on them, as it does on proxies).

use futures_util::TryStreamExt as _;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage, VlanProtocol};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVlan};

use super::{check, Binding, LanNic, Result, VlanBackend, VlanError};

/// Linux VLAN devices and bridges through rtnetlink.
#[derive(Debug, Clone)]
pub struct Linux {
    /// Name prefix (at most 4 characters: `PREFIXc4094.4094` must fit in 15).
    pub prefix: String,
    /// The trunk NIC.
    pub uplink: String,
    rt: tokio::runtime::Handle,
}

impl Linux {
    /// A backend on `uplink`, naming its devices `PREFIX…`.
    pub fn new(prefix: &str, uplink: &str, rt: tokio::runtime::Handle) -> Result<Linux> {
        if prefix.len() > 4 {
            return Err(VlanError::Switch {
                command: "linux backend".into(),
                message: format!("prefix {prefix:?} is longer than 4 characters (interface names end at 15)"),
            });
        }
        Ok(Linux { prefix: prefix.to_string(), uplink: uplink.to_string(), rt })
    }

    fn fail(what: &str, e: impl std::fmt::Display) -> VlanError {
        VlanError::Switch { command: format!("netlink: {what}"), message: e.to_string() }
    }

    fn run<T>(
        &self,
        what: &str,
        f: impl AsyncFnOnce(rtnetlink::Handle) -> std::result::Result<T, rtnetlink::Error>,
    ) -> Result<T> {
        self.rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Self::fail(what, e))?;
            let task = tokio::spawn(conn);
            let r = f(handle).await.map_err(|e| Self::fail(what, e));
            task.abort();
            r
        })
    }

    fn links(&self) -> Result<Vec<LinkMessage>> {
        self.run("list links", async |h| h.link().get().execute().try_collect::<Vec<_>>().await)
    }

    fn index_of(links: &[LinkMessage], name: &str) -> Option<u32> {
        links.iter().find(|l| Self::name(l) == Some(name)).map(|l| l.header.index)
    }

    fn name(l: &LinkMessage) -> Option<&str> {
        l.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.as_str()),
            _ => None,
        })
    }

    fn controller(l: &LinkMessage) -> Option<u32> {
        l.attributes.iter().find_map(|a| match a {
            LinkAttribute::Controller(i) => Some(*i),
            _ => None,
        })
    }

    fn sdev(&self, s: u16) -> String {
        format!("{}s{s}", self.prefix)
    }

    fn cdev(&self, s: u16, c: u16) -> String {
        format!("{}c{s}.{c}", self.prefix)
    }

    fn bridge(&self, s: u16, c: u16) -> String {
        format!("{}b{s}.{c}", self.prefix)
    }

    fn park(&self) -> String {
        format!("{}park", self.prefix)
    }

    fn ensure_bridge(&self, name: &str) -> Result<u32> {
        if let Some(i) = Self::index_of(&self.links()?, name) {
            return Ok(i);
        }
        let n = name.to_string();
        self.run("add bridge", async move |h| h.link().add(LinkBridge::new(&n).up().build()).execute().await)?;
        Self::index_of(&self.links()?, name).ok_or_else(|| Self::fail("add bridge", format!("{name} did not appear")))
    }

    /// The subscriber's bridge, with its C-VLAN device on the S-VLAN device on the uplink.
    fn ensure_subscriber(&self, s: u16, c: u16) -> Result<u32> {
        self.ensure_svlan(s)?;
        let links = self.links()?;
        let sidx = Self::index_of(&links, &self.sdev(s)).ok_or_else(|| Self::fail("S-VLAN", "missing"))?;
        let cname = self.cdev(s, c);
        if Self::index_of(&links, &cname).is_none() {
            let n = cname.clone();
            self.run("add C-VLAN device", async move |h| {
                h.link().add(LinkVlan::new(&n, sidx, c).protocol(VlanProtocol::Ieee8021Q).up().build()).execute().await
            })?;
        }
        let br = self.ensure_bridge(&self.bridge(s, c))?;
        let n = cname.clone();
        self.run("attach C-VLAN device", async move |h| {
            h.link().set(LinkUnspec::new_with_name(&n).controller(br).up().build()).execute().await
        })?;
        Ok(br)
    }

    fn attach(&self, port: &str, bridge: u32) -> Result<()> {
        let p = port.to_string();
        self.run("attach port", async move |h| {
            h.link().set(LinkUnspec::new_with_name(&p).controller(bridge).up().build()).execute().await
        })
    }

    fn delete(&self, name: &str) -> Result<()> {
        let Some(i) = Self::index_of(&self.links()?, name) else { return Ok(()) };
        self.run("delete link", async move |h| h.link().del(i).execute().await)
    }
}

impl VlanBackend for Linux {
    fn parking_bridge(&self) -> Result<String> {
        self.ensure_bridge(&self.park())?;
        Ok(self.park())
    }

    fn ensure_svlan(&self, svlan: u16) -> Result<String> {
        let s = check(svlan)?;
        let links = self.links()?;
        if Self::index_of(&links, &self.sdev(s)).is_none() {
            let up = Self::index_of(&links, &self.uplink)
                .ok_or_else(|| Self::fail("S-VLAN", format!("no uplink interface {}", self.uplink)))?;
            let n = self.sdev(s);
            self.run("add S-VLAN device", async move |h| {
                h.link().add(LinkVlan::new(&n, up, s).protocol(VlanProtocol::Ieee8021Ad).up().build()).execute().await
            })?;
        }
        Ok(self.sdev(s))
    }

    fn remove_svlan_if_unused(&self, svlan: u16) -> Result<bool> {
        let s = check(svlan)?;
        if self.bindings()?.iter().any(|b| b.svlan == s) {
            return Ok(false);
        }
        let pre = format!("{}b{s}.", self.prefix);
        let cpre = format!("{}c{s}.", self.prefix);
        for l in self.links()? {
            if let Some(n) = Self::name(&l).filter(|n| n.starts_with(&pre) || n.starts_with(&cpre)) {
                self.delete(n)?;
            }
        }
        self.delete(&self.sdev(s))?;
        Ok(true)
    }

    fn lan_nic(&self, binding: Option<(u16, u16)>) -> Result<LanNic> {
        match binding {
            Some((s, c)) => {
                let (s, c) = (check(s)?, check(c)?);
                self.ensure_subscriber(s, c)?;
                Ok(LanNic { bridge: self.bridge(s, c), openvswitch: false, vlan: None })
            }
            None => Ok(LanNic { bridge: self.parking_bridge()?, openvswitch: false, vlan: None }),
        }
    }

    fn bind(&self, port: &str, svlan: u16, cvlan: u16) -> Result<()> {
        let br = self.ensure_subscriber(check(svlan)?, check(cvlan)?)?;
        self.attach(port, br)
    }

    fn unbind(&self, port: &str) -> Result<()> {
        let park = self.ensure_bridge(&self.park())?;
        self.attach(port, park)
    }

    fn release(&self, port: &str) -> Result<()> {
        if Self::index_of(&self.links()?, port).is_none() {
            return Ok(());
        }
        let p = port.to_string();
        self.run("detach port", async move |h| {
            h.link().set(LinkUnspec::new_with_name(&p).nocontroller().build()).execute().await
        })
    }

    fn bindings(&self) -> Result<Vec<Binding>> {
        let links = self.links()?;
        let pre = format!("{}b", self.prefix);
        let cpre = format!("{}c", self.prefix);
        let mut out = Vec::new();
        for l in &links {
            let Some(name) = Self::name(l) else { continue };
            if name.starts_with(&cpre) {
                continue;
            }
            let Some(ctrl) = Self::controller(l) else { continue };
            let Some(bridge) = links.iter().find(|b| b.header.index == ctrl).and_then(Self::name) else { continue };
            let Some((s, c)) = bridge.strip_prefix(&pre).and_then(|r| r.split_once('.')) else { continue };
            if let (Ok(s), Ok(c)) = (s.parse(), c.parse()) {
                out.push(Binding { port: name.to_string(), svlan: s, cvlan: c });
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(args: &[&str]) -> bool {
        std::process::Command::new(args[0]).args(&args[1..]).status().is_ok_and(|s| s.success())
    }

    #[test]
    fn subscriber_bridges_on_stacked_vlan_devices() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let tag = std::process::id() % 1000;
        let (up, tap) = (format!("lu{tag}"), format!("lt{tag}"));
        assert!(sh(&["ip", "link", "add", &up, "type", "veth", "peer", "name", &format!("{up}p")]), "needs root");
        assert!(sh(&["ip", "link", "add", &tap, "type", "veth", "peer", "name", &format!("{tap}p")]));
        let l = Linux::new(&format!("x{}", tag % 100), &up, rt.handle().clone()).expect("backend");
        // The parking bridge needs only bridge support.
        let park = l.lan_nic(None).expect("parking bridge");
        assert!(!park.openvswitch && park.vlan.is_none());
        l.unbind(&tap).expect("park the port");
        assert!(l.bindings().expect("bindings").is_empty());
        match l.ensure_svlan(100) {
            Err(VlanError::Switch { message, .. }) => {
                // This machine's kernel has no 802.1Q support: say so (past the test harness's
                // capture, so it shows in every run), and stop here.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED the VLAN part of vlan::linux::tests: the kernel refused an 802.1ad device ({message})"
                );
            }
            Err(e) => panic!("{e}"),
            Ok(_) => {
                l.bind(&tap, 100, 7).expect("bind");
                assert_eq!(l.bindings().expect("bindings"), vec![Binding { port: tap.clone(), svlan: 100, cvlan: 7 }]);
                l.unbind(&tap).expect("unbind");
                assert!(l.remove_svlan_if_unused(100).expect("remove"));
            }
        }
        for n in [up.clone(), tap.clone(), l.park()] {
            let _ = sh(&["ip", "link", "del", &n]);
        }
    }
}
