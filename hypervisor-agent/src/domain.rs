//! Domain XML for a vRGW, generated from its template, and our metadata read back from a domain.
//!
//! Every domain this agent defines carries `<metadata><vrgw:owner .../></metadata>` in our
//! namespace: the agent that owns it and the slot it fills. After a crash the agent finds its
//! domains by that mark, not by name patterns.
//!
//! How a guest learns its management address and its per-instance secret: both are written as
//! SMBIOS OEM strings (`vrgw.mgmt=ADDR/PREFIX`, `vrgw.secret=HEX`), which the guest reads from
//! `/sys/firmware/dmi/entries/11-0/raw` (or `dmidecode -t 11`), and, for direct kernel boot, on
//! the kernel command line as well (`vrgw.mgmt=... vrgw.secret=...`), which a busybox init can read
//! from `/proc/cmdline`. Neither is a data-model parameter, and neither is logged.

use std::fmt::Write as _;

/// Our XML namespace for domain metadata.
pub const META_NS: &str = "urn:x-vrgw-org:hypervisor-agent:1";

/// How the guest boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Direct kernel boot: kernel, initramfs and extra command-line words.
    Kernel {
        /// Kernel image path on the host.
        kernel: String,
        /// Initramfs path on the host.
        initrd: String,
        /// Extra kernel command line.
        cmdline: String,
    },
    /// A qcow2 disk: the instance's overlay over the template's shared base image.
    Disk {
        /// The overlay's path.
        overlay: String,
    },
}

/// One NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Bridge to plug into.
    pub bridge: String,
    /// Whether the bridge is an Open vSwitch bridge (adds `<virtualport type='openvswitch'/>`).
    pub openvswitch: bool,
    /// 802.1Q tag on the port (an access port on that VLAN).
    pub vlan: Option<u16>,
    /// MAC address.
    pub mac: String,
    /// Host-side device name (the switch port), when the agent names it.
    pub target: Option<String>,
}

/// Who owns a domain and which slot it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The agent's id (one per host).
    pub agent: String,
    /// The slot number in the agent's store.
    pub slot: u32,
}

/// Everything a domain is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// Domain name.
    pub name: String,
    /// libvirt domain type: `qemu` (TCG), `kvm`, or `test` for libvirt's test driver.
    pub kind: String,
    /// Memory, KiB.
    pub memory_kib: u64,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Boot method.
    pub boot: Boot,
    /// Management NIC (host-only network; the agent reaches the proxy over it).
    pub mgmt: Nic,
    /// LAN NIC, on the trunk bridge, bound to the subscriber's C-VLAN.
    pub lan: Nic,
    /// WAN NIC.
    pub wan: Nic,
    /// Management address with prefix length, as the guest must configure it.
    pub mgmt_address: String,
    /// The per-instance secret the proxy authenticates the agent with.
    pub secret: String,
    /// Ownership mark.
    pub owner: Owner,
    /// QEMU TCG translation-block cache, MiB (keeps TCG guests small); none for KVM.
    pub tb_cache_mib: Option<u32>,
    /// A file the serial console is copied to (the guest's boot messages and its proxy's log).
    pub console_log: Option<String>,
    /// The domain's UUID, when it must be this one (a vRGW that came from another host).
    pub uuid: Option<String>,
    /// The instance's configuration travelling with the domain to another host (a profile
    /// snapshot as JSON), kept in the ownership mark as hex.
    pub profile: Option<String>,
}

/// What identifies a vRGW across hosts, read back from its domain XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The domain's UUID.
    pub uuid: String,
    /// MAC addresses of the management, LAN and WAN NICs, in that order.
    pub macs: Vec<String>,
    /// The management address the guest was given (with prefix length).
    pub mgmt_address: String,
    /// The proxy's secret the guest was given.
    pub secret: String,
    /// The configuration that travelled with it, if any (JSON).
    pub profile: Option<String>,
}

/// `s`'s bytes in lowercase hex (how the configuration rides in an XML attribute).
pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

/// The text between `open` and the next `close` after it.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let at = s.find(open)? + open.len();
    let rest = &s[at..];
    Some(&rest[..rest.find(close)?])
}

/// The value of attribute `name` in `s` (either quote).
fn attribute(s: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=");
    let at = s.find(&key)? + key.len();
    let rest = &s[at..];
    let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    Some(body[..body.find(q)?].to_string())
}

/// The `<name>` of a domain XML.
pub fn name_of(xml: &str) -> Option<String> {
    between(xml, "<name>", "</name>").map(|n| n.trim().to_string())
}

/// The identity of the vRGW a domain XML (as libvirt returns it) describes: `None` when it is
/// not one of ours (no UUID, not three NICs, no management address or secret).
pub fn identity_of(xml: &str) -> Option<Identity> {
    let uuid = between(xml, "<uuid>", "</uuid>")?.trim().to_string();
    let macs: Vec<String> = xml
        .split("<interface")
        .skip(1)
        .filter_map(|i| {
            let i = &i[..i.find("</interface>")?];
            let m = &i[i.find("<mac ")?..];
            attribute(m, "address")
        })
        .collect();
    let oem = |key: &str| -> Option<String> {
        xml.split("<entry>").skip(1).find_map(|e| {
            let e = &e[..e.find("</entry>")?];
            e.strip_prefix(key).map(str::to_string)
        })
    };
    let owner = xml
        .find("<owner")
        .or_else(|| xml.find(":owner "))
        .map(|i| &xml[i..])
        .and_then(|o| o.find("/>").map(|e| &o[..e]));
    let profile = owner.and_then(|o| attribute(o, "profile")).and_then(|h| unhex(&h));
    if macs.len() != 3 {
        return None;
    }
    Some(Identity { uuid, macs, mgmt_address: oem("vrgw.mgmt=")?, secret: oem("vrgw.secret=")?, profile })
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn nic(out: &mut String, n: &Nic) {
    let _ = write!(out, "<interface type='bridge'><source bridge='{}'/>", esc(&n.bridge));
    if n.openvswitch {
        out.push_str("<virtualport type='openvswitch'/>");
    }
    if let Some(tag) = n.vlan {
        let _ = write!(out, "<vlan><tag id='{tag}'/></vlan>");
    }
    // Checksum offload off: Open vSwitch's userspace datapath never fills in offloaded UDP
    // checksums, so DHCP replies would be dropped (see the design brief, section 4).
    let _ = write!(out, "<mac address='{}'/>", esc(&n.mac));
    if let Some(t) = &n.target {
        let _ = write!(out, "<target dev='{}'/>", esc(t));
    }
    out.push_str("<model type='virtio'/><driver><host csum='off'/><guest csum='off'/></driver></interface>");
}

impl DomainSpec {
    /// The domain XML.
    pub fn to_xml(&self) -> String {
        let mut x = String::with_capacity(2048);
        let _ = write!(
            x,
            "<domain type='{}'><name>{}</name><memory unit='KiB'>{}</memory><vcpu>{}</vcpu>",
            esc(&self.kind),
            esc(&self.name),
            self.memory_kib,
            self.vcpus
        );
        if let Some(u) = &self.uuid {
            let _ = write!(x, "<uuid>{}</uuid>", esc(u));
        }
        let profile = self.profile.as_deref().map(|p| format!(" profile='{}'", hex(p))).unwrap_or_default();
        let _ = write!(
            x,
            "<metadata><vrgw:owner xmlns:vrgw='{META_NS}' agent='{}' slot='{}'{profile}/></metadata>",
            esc(&self.owner.agent),
            self.owner.slot
        );
        let _ = write!(
            x,
            "<sysinfo type='smbios'><oemStrings><entry>vrgw.mgmt={}</entry><entry>vrgw.secret={}</entry></oemStrings></sysinfo>",
            esc(&self.mgmt_address),
            esc(&self.secret)
        );
        x.push_str("<os><type arch='x86_64'>hvm</type>");
        if let Boot::Kernel { kernel, initrd, cmdline } = &self.boot {
            let _ = write!(
                x,
                "<kernel>{}</kernel><initrd>{}</initrd><cmdline>{} vrgw.mgmt={} vrgw.secret={}</cmdline>",
                esc(kernel),
                esc(initrd),
                esc(cmdline),
                esc(&self.mgmt_address),
                esc(&self.secret)
            );
        }
        x.push_str("<smbios mode='sysinfo'/></os>");
        if let Some(mib) = self.tb_cache_mib {
            let _ = write!(x, "<features><tcg><tb-cache unit='MiB'>{mib}</tb-cache></tcg></features>");
        }
        x.push_str("<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>");
        x.push_str("<devices>");
        if let Boot::Disk { overlay } = &self.boot {
            let _ = write!(
                x,
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>",
                esc(overlay)
            );
        }
        nic(&mut x, &self.mgmt);
        nic(&mut x, &self.lan);
        nic(&mut x, &self.wan);
        match &self.console_log {
            Some(f) => {
                let _ = write!(x, "<serial type='pty'><log file='{}' append='off'/></serial>", esc(f));
            }
            None => x.push_str("<serial type='pty'/>"),
        }
        x.push_str("<console type='pty'/></devices></domain>");
        x
    }
}

/// Reads our ownership mark from the metadata libvirt returns for our namespace
/// (`<owner agent='...' slot='...'/>`, libvirt drops the prefix).
pub fn parse_owner(metadata: &str) -> Option<Owner> {
    let attr = |name: &str| -> Option<String> {
        let key = format!("{name}=");
        let at = metadata.find(&key)? + key.len();
        let rest = &metadata[at..];
        let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &rest[1..];
        Some(body[..body.find(q)?].to_string())
    };
    if !metadata.trim_start().starts_with("<owner") {
        return None;
    }
    Some(Owner { agent: attr("agent")?, slot: attr("slot")?.parse().ok()? })
}

/// A locally administered unicast MAC derived from a slot number and a NIC index, unique per
/// agent prefix (the first two octets are given, e.g. from the agent id).
pub fn mac(prefix: [u8; 2], slot: u32, nic: u8) -> String {
    let s = slot.to_be_bytes();
    // 0x02 in the first octet: locally administered, unicast.
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", 0x02 | (prefix[0] & 0xfc), prefix[1], s[1], s[2], s[3], nic)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(slot: u32) -> DomainSpec {
        DomainSpec {
            name: format!("vrgw-{slot}"),
            kind: "test".into(),
            memory_kib: 98304,
            vcpus: 1,
            boot: Boot::Kernel {
                kernel: "/var/lib/vrgw/vmlinuz".into(),
                initrd: "/var/lib/vrgw/initrd.img".into(),
                cmdline: "console=ttyS0 quiet".into(),
            },
            mgmt: Nic {
                bridge: "vrgw-mgmt".into(),
                openvswitch: false,
                vlan: None,
                mac: mac([0, 1], slot, 0),
                target: None,
            },
            lan: Nic {
                bridge: "vrgw-s100".into(),
                openvswitch: true,
                vlan: Some(7),
                mac: mac([0, 1], slot, 1),
                target: Some(format!("vrgwl-{slot}")),
            },
            wan: Nic {
                bridge: "vrgw-wan".into(),
                openvswitch: false,
                vlan: None,
                mac: mac([0, 1], slot, 2),
                target: None,
            },
            mgmt_address: "10.99.0.5/24".into(),
            secret: "00112233445566778899aabbccddeeff".into(),
            owner: Owner { agent: "host-a".into(), slot },
            tb_cache_mib: Some(16),
            console_log: Some(format!("/var/log/libvirt/qemu/vrgw-{slot}.console.log")),
            uuid: None,
            profile: None,
        }
    }

    #[test]
    fn identity_travels_in_the_domain_xml() {
        let mut s = spec(4);
        s.uuid = Some("6f1c7a52-3c1e-4b3a-9d7e-2f5b8c9a0d11".into());
        s.profile = Some(r#"{"values":{"WiFi.SSID.1.SSID":"caf\u00e9 <&> 'x'"}}"#.into());
        let id = identity_of(&s.to_xml()).expect("ours");
        assert_eq!(id.uuid, "6f1c7a52-3c1e-4b3a-9d7e-2f5b8c9a0d11");
        assert_eq!(id.macs, vec![mac([0, 1], 4, 0), mac([0, 1], 4, 1), mac([0, 1], 4, 2)]);
        assert_eq!(
            (id.mgmt_address.as_str(), id.secret.as_str()),
            ("10.99.0.5/24", "00112233445566778899aabbccddeeff")
        );
        assert_eq!(id.profile, s.profile);
        // libvirt's own form: double quotes, its formatting, our mark without the prefix.
        let libvirt = s.to_xml().replace('\'', "\"").replace("vrgw:owner", "owner").replace("><", ">\n  <");
        assert_eq!(identity_of(&libvirt), Some(id));
        // Not a vRGW: no UUID, or fewer NICs.
        assert_eq!(identity_of("<domain><name>x</name></domain>"), None);
        let two_nics = s.to_xml().replacen("<interface", "<disk", 1);
        assert_eq!(identity_of(&two_nics), None);
        // Any cut of it (what a broken peer could send) is read or refused, never a panic.
        let full = s.to_xml();
        for i in 0..full.len() {
            let _ = identity_of(&full[..i]);
            let _ = identity_of(&full[i..]);
        }
        // A damaged profile is dropped, not misread.
        assert_eq!(unhex("4"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn xml_carries_everything_the_guest_and_the_agent_need() {
        let x = spec(3).to_xml();
        for needle in [
            "<domain type='test'>",
            "<memory unit='KiB'>98304</memory>",
            "<source bridge='vrgw-s100'/><virtualport type='openvswitch'/><vlan><tag id='7'/></vlan>",
            "<host csum='off'/><guest csum='off'/>",
            "vrgw.mgmt=10.99.0.5/24 vrgw.secret=00112233445566778899aabbccddeeff</cmdline>",
            "<entry>vrgw.mgmt=10.99.0.5/24</entry>",
            "<tb-cache unit='MiB'>16</tb-cache>",
            "agent='host-a' slot='3'",
            "<target dev='vrgwl-3'/>",
            "<serial type='pty'><log file='/var/log/libvirt/qemu/vrgw-3.console.log' append='off'/></serial>",
        ] {
            assert!(x.contains(needle), "{needle} missing from {x}");
        }
        assert!(!x.contains("<disk"), "kernel boot has no disk");
        let mut disk = spec(4);
        disk.boot = Boot::Disk { overlay: "/var/lib/vrgw/overlays/4.qcow2".into() };
        let x = disk.to_xml();
        assert!(x.contains("<source file='/var/lib/vrgw/overlays/4.qcow2'/>") && !x.contains("<kernel>"));
    }

    #[test]
    fn hostile_names_are_escaped() {
        let mut s = spec(1);
        s.name = "a'<b>&".into();
        assert!(s.to_xml().contains("<name>a&apos;&lt;b&gt;&amp;</name>"));
    }

    #[test]
    fn owner_mark_round_trips_in_libvirts_form() {
        assert_eq!(
            parse_owner("<owner agent=\"host-a\" slot=\"12\"/>"),
            Some(Owner { agent: "host-a".into(), slot: 12 })
        );
        assert_eq!(parse_owner("<other agent='x' slot='1'/>"), None);
        assert_eq!(parse_owner("<owner agent='x' slot='many'/>"), None);
    }

    #[test]
    fn macs_are_local_unicast_and_distinct() {
        let a = mac([0xab, 0xcd], 1, 0);
        let b = mac([0xab, 0xcd], 1, 1);
        let c = mac([0xab, 0xcd], 2, 0);
        assert_eq!(a, "aa:cd:00:00:01:00");
        assert!(a != b && a != c && b != c);
    }
}
