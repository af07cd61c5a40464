//! Domain XML for a vRGW, generated from its template, and our metadata read back from a domain.
//!
//! Every domain this agent defines carries `<metadata><vrgw:owner .../></metadata>` in our
//! namespace: the agent that owns it and the slot it fills. After a crash the agent finds its
//! domains by that mark, not by name patterns.
//!
//! How a guest learns its management address: as an SMBIOS OEM string (`vrgw.mgmt=ADDR/PREFIX`,
//! `/sys/firmware/dmi/entries/11-0/raw` or `dmidecode -t 11` in the guest) and, for direct
//! kernel boot, on the kernel command line as well, which a busybox init reads from
//! `/proc/cmdline`. Both are public: every user of the host sees QEMU's argv.
//!
//! How it learns its per-instance secret: never through those. The agent writes it into a file
//! of its own, owner-only ([`SECRET_FW_CFG`], `host::secret_file`), and the domain names that
//! file in a QEMU fw_cfg entry (`<sysinfo type='fwcfg'><entry name='opt/org.vrgw/secret'
//! file='...'/>`): QEMU's argv carries the path, not the secret, and in the guest only root
//! reads it (`/sys/firmware/qemu_fw_cfg/by_name/opt/org.vrgw/secret/raw`). The secret itself
//! rides in the ownership mark in `<metadata>`, where a destination host reads it for a live
//! migration. Neither is a data-model parameter, and neither is logged.

use std::fmt::Write as _;

/// Our XML namespace for domain metadata.
pub const META_NS: &str = "urn:x-vrgw-org:hypervisor-agent:1";

/// The fw_cfg entry a guest reads its proxy's secret from (QEMU allows `opt/` names only).
pub const SECRET_FW_CFG: &str = "opt/org.vrgw/secret";

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
    /// A container (libvirt's LXC driver): the host's kernel, namespaces and cgroups of its own.
    Container {
        /// The directory served as its root: an overlay of the template's shared root file
        /// system with a writable layer of the instance's own (`crate::rootfs`).
        root: String,
    },
}

/// The program a container vRGW starts as its init (in the guest image: it sets the container
/// up as the VM's `/etc/rc.sh` does a VM, then runs busybox's init).
pub const CONTAINER_INIT: &str = "/sbin/vrgw-container-init";

/// Where a container vRGW finds its proxy's secret: a read-only bind mount of the secret file
/// the agent wrote (owner-only, root's in the container as on the host).
pub const CONTAINER_SECRET: &str = "/.vrgw-secret";

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
    /// The per-instance secret the proxy authenticates the agent with (kept in the ownership
    /// mark; the guest gets it from [`DomainSpec::secret_file`]).
    pub secret: String,
    /// The owner-only file on the host holding the secret, which QEMU passes to the guest as
    /// fw_cfg entry [`SECRET_FW_CFG`].
    pub secret_file: String,
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
    /// A container's limit of processes (its pids cgroup), kept in the ownership mark: libvirt's
    /// domain XML has no such limit, so the agent sets it when the container starts
    /// ([`max_processes_of`]).
    pub max_processes: Option<u32>,
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
    /// The proxy's secret the guest was given (from the ownership mark); `None` for a domain
    /// an agent defined before the secret moved there.
    pub secret: Option<String>,
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

/// The `<name>` of a domain XML.
pub fn name_of(xml: &str) -> Option<String> {
    between(xml, "<name>", "</name>").map(|n| n.trim().to_string())
}

/// Where in a domain document the reader is: the places it reads from, and `Other` for
/// everything else (whose content it never looks at, whatever text or markup it holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Domain,
    Uuid,
    Metadata,
    Owner,
    Smbios,
    OemStrings,
    Entry,
    Devices,
    Interface,
    Other,
}

/// The attributes of the ownership mark, as written (not unescaped: every value the reader
/// uses is hex or digits, so an entity in one makes it invalid rather than something else).
#[derive(Debug, Default)]
struct OwnerMark {
    attributes: Vec<(String, String)>,
    /// Where its start tag is in the document (bytes), and the tag's name as written.
    span: std::ops::Range<usize>,
    qname: String,
    /// Whether it was written `<x/>` (else `<x>...</x>`).
    empty: bool,
}

impl OwnerMark {
    fn get(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the reader found at the places it reads, before any of it is checked.
#[derive(Debug, Default)]
struct Found {
    uuids: Vec<String>,
    /// Per `<interface>` of `<devices>`: the addresses of its `<mac>` children.
    interfaces: Vec<Vec<String>>,
    /// The SMBIOS OEM strings.
    entries: Vec<String>,
    owners: Vec<OwnerMark>,
}

/// The attributes of `e` that are in no namespace, raw (as written), or `None` when one is
/// malformed or repeated.
fn raw_attributes(e: &quick_xml::events::BytesStart<'_>) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.ok()?;
        if a.key.prefix().is_some() {
            continue; // xmlns:vrgw and the like
        }
        let key = std::str::from_utf8(a.key.local_name().into_inner()).ok()?.to_string();
        let value = std::str::from_utf8(&a.value).ok()?.to_string();
        out.push((key, value));
    }
    Some(out)
}

/// Reads the document structurally: the root `<domain>`, its `<uuid>`, the `<owner>` element
/// of our namespace directly in its `<metadata>`, the entries of its SMBIOS `<oemStrings>` and
/// the `<mac>` of each `<interface>` in its `<devices>`. Text and markup anywhere else (a
/// domain name, an agent id, a kernel command line) cannot reach those places. `None` for a
/// document that is not well-formed XML with a `<domain>` root.
fn read_domain(xml: &str) -> Option<Found> {
    use quick_xml::events::Event;
    use quick_xml::name::{Namespace, ResolveResult};

    let mut reader = quick_xml::NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut found = Found::default();
    let mut stack: Vec<Place> = Vec::new();
    // The text of the `<uuid>` or `<entry>` being read; `None` once anything but plain text
    // (an entity, CDATA, a comment, a child element) was inside it.
    let mut text: Option<String> = None;
    let mut closed_root = false;
    loop {
        let at = usize::try_from(reader.buffer_position()).ok()?;
        let (ns, event) = reader.read_resolved_event().ok()?;
        let ours = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == META_NS.as_bytes());
        let plain = matches!(ns, ResolveResult::Unbound);
        let after = usize::try_from(reader.buffer_position()).ok()?;
        match event {
            Event::Start(e) => {
                if closed_root {
                    return None;
                }
                let local = e.local_name();
                let local = local.as_ref();
                let attr_is = |name: &str, value: &str| {
                    raw_attributes(&e).is_some_and(|a| a.iter().any(|(k, v)| k == name && v == value))
                };
                let place = match (stack.last(), plain, local) {
                    (None, true, b"domain") => Place::Domain,
                    (None, _, _) => return None,
                    (Some(Place::Domain), true, b"uuid") => Place::Uuid,
                    (Some(Place::Domain), true, b"metadata") => Place::Metadata,
                    (Some(Place::Domain), true, b"sysinfo") if attr_is("type", "smbios") => Place::Smbios,
                    (Some(Place::Domain), true, b"devices") => Place::Devices,
                    (Some(Place::Metadata), false, b"owner") if ours => {
                        found.owners.push(OwnerMark {
                            attributes: raw_attributes(&e)?,
                            span: at..after,
                            qname: std::str::from_utf8(e.name().as_ref()).ok()?.to_string(),
                            empty: xml.get(at..after)?.ends_with("/>"),
                        });
                        Place::Owner
                    }
                    (Some(Place::Smbios), true, b"oemStrings") => Place::OemStrings,
                    (Some(Place::OemStrings), true, b"entry") => Place::Entry,
                    (Some(Place::Devices), true, b"interface") => {
                        found.interfaces.push(Vec::new());
                        Place::Interface
                    }
                    (Some(Place::Interface), true, b"mac") => {
                        let address = raw_attributes(&e)?.into_iter().find(|(k, _)| k == "address");
                        if let (Some((_, a)), Some(macs)) = (address, found.interfaces.last_mut()) {
                            macs.push(a);
                        }
                        Place::Other
                    }
                    _ => Place::Other,
                };
                if matches!(stack.last(), Some(Place::Uuid | Place::Entry)) {
                    text = None;
                }
                if matches!(place, Place::Uuid | Place::Entry) {
                    text = Some(String::new());
                }
                stack.push(place);
            }
            Event::End(_) => {
                match stack.pop()? {
                    Place::Uuid => found.uuids.push(text.take().unwrap_or_default()),
                    Place::Entry => found.entries.push(text.take().unwrap_or_default()),
                    _ => {}
                }
                closed_root = stack.is_empty();
            }
            Event::Text(t) => {
                if let (Some(Place::Uuid | Place::Entry), Some(s)) = (stack.last(), text.as_mut()) {
                    s.push_str(std::str::from_utf8(&t).ok()?);
                }
            }
            Event::GeneralRef(_) | Event::CData(_) | Event::Comment(_) | Event::PI(_) => {
                if matches!(stack.last(), Some(Place::Uuid | Place::Entry)) {
                    text = None;
                }
            }
            Event::Eof => break,
            Event::Empty(_) | Event::Decl(_) | Event::DocType(_) => {}
        }
    }
    closed_root.then_some(found)
}

/// `s` when it is a UUID as libvirt writes one (hex digits and dashes).
fn uuid_text(s: &str) -> Option<String> {
    let ok = s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then(|| s.to_string())
}

/// `s` when it is a MAC address (six pairs of hex digits separated by colons).
fn mac_text(s: &str) -> Option<String> {
    let ok = s.len() == 17
        && s.split(':').count() == 6
        && s.split(':').all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| s.to_string())
}

/// `s` when it is an address with a prefix length (`10.99.0.5/24`, `fd00::5/64`).
fn address_text(s: &str) -> Option<String> {
    let (addr, len) = s.split_once('/')?;
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let bits: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max && bits.to_string() == len).then(|| s.to_string())
}

/// `s` when it is a non-empty run of hex digits (how secrets are written).
fn hex_text(s: &str) -> Option<String> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_string())
}

/// The identity of the vRGW a domain XML (as libvirt returns it) describes: `None` when it is
/// not one of ours (no UUID, not three NICs each with one MAC address, no management address
/// or secret, two of anything read) or not well-formed. Every field is read from its place in
/// the document (`read_domain`), never searched for in the text.
pub fn identity_of(xml: &str) -> Option<Identity> {
    let found = read_domain(xml)?;
    let [uuid] = found.uuids.as_slice() else { return None };
    let uuid = uuid_text(uuid.trim())?;
    if found.interfaces.len() != 3 {
        return None;
    }
    let macs = found
        .interfaces
        .iter()
        .map(|m| match m.as_slice() {
            [one] => mac_text(one),
            _ => None,
        })
        .collect::<Option<Vec<String>>>()?;
    let oem = |key: &str| -> Option<String> {
        let mut values = found.entries.iter().filter_map(|e| e.trim().strip_prefix(key));
        let first = values.next()?;
        values.next().is_none().then(|| first.to_string())
    };
    let owner = match found.owners.as_slice() {
        [] => None,
        [one] => Some(one),
        _ => return None,
    };
    let profile = owner.and_then(|o| o.get("profile")).and_then(unhex);
    Some(Identity {
        uuid,
        macs,
        mgmt_address: address_text(&oem("vrgw.mgmt=")?)?,
        secret: owner.and_then(|o| o.get("secret")).and_then(hex_text),
        profile,
    })
}

/// The limit of processes a container's ownership mark carries (`pids`), if any.
pub fn max_processes_of(xml: &str) -> Option<u32> {
    let found = read_domain(xml)?;
    let [mark] = found.owners.as_slice() else { return None };
    mark.get("pids")?.parse().ok()
}

/// `xml` with attribute `name` of our ownership mark set to `value` (hex or digits, written as
/// is), the mark's other attributes kept; `None` when the document is not one with exactly one
/// mark (read as [`identity_of`] reads it).
pub fn with_owner_attribute(xml: &str, name: &str, value: &str) -> Option<String> {
    let found = read_domain(xml)?;
    let [mark] = found.owners.as_slice() else { return None };
    let mut tag = format!("<{}", mark.qname);
    let xmlns = {
        let start = xml.get(mark.span.clone())?;
        let mut reader = quick_xml::Reader::from_str(start);
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => e
                .attributes()
                .filter_map(Result::ok)
                .filter(|a| a.key.as_ref() == b"xmlns" || a.key.prefix().is_some_and(|p| p.as_ref() == b"xmlns"))
                .map(|a| {
                    let k = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                    (k, String::from_utf8_lossy(&a.value).into_owned())
                })
                .collect::<Vec<_>>(),
            _ => return None,
        }
    };
    for (k, v) in xmlns.iter().chain(mark.attributes.iter().filter(|(k, _)| k != name)) {
        let _ = write!(tag, " {k}='{}'", v.replace('\'', "&apos;"));
    }
    let _ = write!(tag, " {name}='{}'", esc(value));
    tag.push_str(if mark.empty { "/>" } else { ">" });
    Some(format!("{}{tag}{}", &xml[..mark.span.start], &xml[mark.span.end..]))
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

fn nic(out: &mut String, n: &Nic, guest: Option<&str>) {
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
    match guest {
        // A container's NIC is a veth pair: the name inside is given, and checksums are the
        // container's to switch off (the vRGW's init does: see testbed/guest/container-init).
        Some(g) => {
            let _ = write!(out, "<guest dev='{}'/></interface>", esc(g));
        }
        None => {
            out.push_str("<model type='virtio'/><driver><host csum='off'/><guest csum='off'/></driver></interface>")
        }
    }
}

impl DomainSpec {
    /// The domain XML.
    pub fn to_xml(&self) -> String {
        if let Boot::Container { root } = &self.boot {
            return self.container_xml(root);
        }
        let mut x = String::with_capacity(2048);
        self.head_xml(&mut x);
        self.identity_xml(&mut x);
        let _ = write!(
            x,
            "<sysinfo type='fwcfg'><entry name='{SECRET_FW_CFG}' file='{}'/></sysinfo>",
            esc(&self.secret_file)
        );
        x.push_str("<os><type arch='x86_64'>hvm</type>");
        if let Boot::Kernel { kernel, initrd, cmdline } = &self.boot {
            let _ = write!(
                x,
                "<kernel>{}</kernel><initrd>{}</initrd><cmdline>{} vrgw.mgmt={}</cmdline>",
                esc(kernel),
                esc(initrd),
                esc(cmdline),
                esc(&self.mgmt_address)
            );
        }
        x.push_str("<smbios mode='sysinfo'/></os>");
        // ACPI: how the guest kernel finds QEMU's fw_cfg device (the proxy secret comes that way;
        // without ACPI the Debian kernel, built without fw_cfg's command-line probing, sees no
        // fw_cfg at all). Measured boots to init under TCG were the same with and without it.
        x.push_str("<features><acpi/>");
        if let Some(mib) = self.tb_cache_mib {
            let _ = write!(x, "<tcg><tb-cache unit='MiB'>{mib}</tb-cache></tcg>");
        }
        x.push_str("</features>");
        x.push_str("<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>");
        x.push_str("<devices>");
        if let Boot::Disk { overlay } = &self.boot {
            let _ = write!(
                x,
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>",
                esc(overlay)
            );
        }
        nic(&mut x, &self.mgmt, None);
        nic(&mut x, &self.lan, None);
        nic(&mut x, &self.wan, None);
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

impl DomainSpec {
    /// What every domain starts with: type, name, memory, CPUs, UUID and the ownership mark.
    fn head_xml(&self, x: &mut String) {
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
        let pids = self.max_processes.map(|n| format!(" pids='{n}'")).unwrap_or_default();
        let _ = write!(
            x,
            "<metadata><vrgw:owner xmlns:vrgw='{META_NS}' agent='{}' slot='{}' secret='{}'{profile}{pids}/></metadata>",
            esc(&self.owner.agent),
            self.owner.slot,
            esc(&self.secret)
        );
    }

    /// The management address as an SMBIOS OEM string: where [`identity_of`] reads it back
    /// (libvirt keeps it for a container too, which has no firmware to show it).
    fn identity_xml(&self, x: &mut String) {
        let _ = write!(
            x,
            "<sysinfo type='smbios'><oemStrings><entry>vrgw.mgmt={}</entry></oemStrings></sysinfo>",
            esc(&self.mgmt_address)
        );
    }

    /// A container's domain XML (libvirt LXC): its root file system, its init with the
    /// management address in its environment (public, as a VM's kernel command line is), the
    /// secret file bound read-only, the same three NICs named inside as the VM's init names
    /// them, CPU shares by its VCPUs (its memory is its cgroup's limit).
    fn container_xml(&self, root: &str) -> String {
        let mut x = String::with_capacity(2048);
        self.head_xml(&mut x);
        self.identity_xml(&mut x);
        let _ = write!(
            x,
            "<os><type>exe</type><init>{CONTAINER_INIT}</init><initenv name='VRGW_MGMT'>{}</initenv></os>",
            esc(&self.mgmt_address)
        );
        let _ = write!(x, "<cputune><shares>{}</shares></cputune>", 1024 * u64::from(self.vcpus.max(1)));
        x.push_str("<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>");
        let _ =
            write!(x, "<devices><filesystem type='mount'><source dir='{}'/><target dir='/'/></filesystem>", esc(root));
        let _ = write!(
            x,
            "<filesystem type='mount'><source dir='{}'/><target dir='{CONTAINER_SECRET}'/><readonly/></filesystem>",
            esc(&self.secret_file)
        );
        nic(&mut x, &self.mgmt, Some("mgmt"));
        nic(&mut x, &self.lan, Some("lan"));
        nic(&mut x, &self.wan, Some("wan"));
        x.push_str("<console type='pty'/></devices></domain>");
        x
    }
}

/// Reads our ownership mark from the metadata libvirt returns for our namespace
/// (`<owner agent='...' slot='...'/>`, libvirt drops the prefix): the first element, which must
/// be an `<owner>`, and its attributes.
pub fn parse_owner(metadata: &str) -> Option<Owner> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(metadata);
    let e = loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => break e,
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            _ => return None,
        }
    };
    if e.local_name().as_ref() != b"owner" {
        return None;
    }
    let attributes = raw_attributes(&e)?;
    let get = |name: &str| attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let agent = quick_xml::escape::unescape(get("agent")?).ok()?.into_owned();
    Some(Owner { agent, slot: get("slot")?.parse().ok()? })
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
            secret_file: format!("/var/lib/vrgw/secrets/vrgw-{slot}"),
            owner: Owner { agent: "host-a".into(), slot },
            tb_cache_mib: Some(16),
            console_log: Some(format!("/var/log/libvirt/qemu/vrgw-{slot}.console.log")),
            uuid: None,
            profile: None,
            max_processes: None,
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
            (id.mgmt_address.as_str(), id.secret.as_deref()),
            ("10.99.0.5/24", Some("00112233445566778899aabbccddeeff"))
        );
        assert_eq!(id.profile, s.profile);
        // libvirt's own form: double quotes, its formatting (fuzz/corpus/domain_identity/*.libvirt.xml).
        let libvirt = s.to_xml().replace('\'', "\"").replace("><", ">\n  <");
        assert_eq!(identity_of(&libvirt), Some(id.clone()));
        // The mark is ours by its namespace, whatever the prefix; another namespace's is not.
        let other_prefix = s.to_xml().replace("vrgw:", "m:").replace("xmlns:vrgw", "xmlns:m");
        assert_eq!(identity_of(&other_prefix), Some(id.clone()));
        let not_ours = s.to_xml().replace(META_NS, "urn:x-someone-else");
        assert_eq!(identity_of(&not_ours).map(|i| i.profile), Some(None));
        // Two of what must be one: not read.
        let two_uuids = s.to_xml().replace("</name>", "</name><uuid>6f1c7a52-3c1e-4b3a-9d7e-2f5b8c9a0d12</uuid>");
        assert_eq!(identity_of(&two_uuids), None);
        let two_marks =
            s.to_xml().replace("</metadata>", &format!("<x:owner xmlns:x='{META_NS}' profile='7b7d'/></metadata>"));
        assert_eq!(identity_of(&two_marks), None);
        // Markup in a field the reader does not read is text there, not structure.
        let mut hostile = s.clone();
        hostile.name = format!("<metadata><vrgw:owner xmlns:vrgw='{META_NS}' profile='7b7d'/></metadata>");
        assert_eq!(identity_of(&hostile.to_xml()), Some(id));
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
            "<cmdline>console=ttyS0 quiet vrgw.mgmt=10.99.0.5/24</cmdline>",
            "<sysinfo type='fwcfg'><entry name='opt/org.vrgw/secret' file='/var/lib/vrgw/secrets/vrgw-3'/></sysinfo>",
            "slot='3' secret='00112233445566778899aabbccddeeff'",
            "<entry>vrgw.mgmt=10.99.0.5/24</entry>",
            "<tb-cache unit='MiB'>16</tb-cache>",
            "agent='host-a' slot='3'",
            "<target dev='vrgwl-3'/>",
            "<serial type='pty'><log file='/var/log/libvirt/qemu/vrgw-3.console.log' append='off'/></serial>",
        ] {
            assert!(x.contains(needle), "{needle} missing from {x}");
        }
        assert!(!x.contains("<disk"), "kernel boot has no disk");
        // The secret is in the ownership mark only: not on the kernel command line, not in SMBIOS.
        assert_eq!(x.matches("00112233445566778899aabbccddeeff").count(), 1, "{x}");
        let mut disk = spec(4);
        disk.boot = Boot::Disk { overlay: "/var/lib/vrgw/overlays/4.qcow2".into() };
        let x = disk.to_xml();
        assert!(x.contains("<source file='/var/lib/vrgw/overlays/4.qcow2'/>") && !x.contains("<kernel>"));
    }

    #[test]
    fn a_container_gets_its_root_its_secret_file_and_its_address_not_a_kernel() {
        let mut s = spec(5);
        s.kind = "lxc".into();
        s.max_processes = Some(128);
        s.uuid = Some("6f1c7a52-3c1e-4b3a-9d7e-2f5b8c9a0d15".into());
        s.boot = Boot::Container { root: "/var/lib/vrgw/overlays/vrgw-5/root".into() };
        let x = s.to_xml();
        for needle in [
            "<domain type='lxc'>",
            "<os><type>exe</type><init>/sbin/vrgw-container-init</init><initenv name='VRGW_MGMT'>10.99.0.5/24</initenv></os>",
            "<filesystem type='mount'><source dir='/var/lib/vrgw/overlays/vrgw-5/root'/><target dir='/'/></filesystem>",
            "<source dir='/var/lib/vrgw/secrets/vrgw-5'/><target dir='/.vrgw-secret'/><readonly/>",
            "<vlan><tag id='7'/></vlan><mac address='02:01:00:00:05:01'/><target dev='vrgwl-5'/><guest dev='lan'/></interface>",
            "<guest dev='mgmt'/>",
            "<guest dev='wan'/>",
            "<cputune><shares>1024</shares></cputune>",
            "<entry>vrgw.mgmt=10.99.0.5/24</entry>",
        ] {
            assert!(x.contains(needle), "{needle} missing from {x}");
        }
        for absent in ["<kernel>", "fwcfg", "<model type='virtio'/>", "<serial", "tb-cache"] {
            assert!(!x.contains(absent), "{absent} in a container's XML: {x}");
        }
        // The secret itself rides in the mark only, as for a VM; the identity reads back the same.
        assert_eq!(x.matches("00112233445566778899aabbccddeeff").count(), 1, "{x}");
        let id = identity_of(&x).expect("a vRGW");
        assert_eq!(max_processes_of(&x), Some(128));
        assert_eq!(max_processes_of(&x.replace("'", "\"")), Some(128), "libvirt's quotes");
        assert_eq!(max_processes_of(&spec(1).to_xml()), None);
        assert_eq!((id.mgmt_address.as_str(), id.macs.len()), ("10.99.0.5/24", 3));
        let mut hostile = s.clone();
        hostile.boot = Boot::Container { root: "/a'/><target dir='/etc".into() };
        assert!(hostile.to_xml().contains("<source dir='/a&apos;/&gt;&lt;target dir=&apos;/etc'/>"));
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
