//! Replays the seed corpus of the fuzz target `domain_identity` (reading a vRGW's identity from
//! a domain XML another host's libvirt returned) and a bounded, deterministic set of mutations
//! of it through the target's property (`fuzz/props/domain_identity.rs`). CI runs this;
//! cargo-fuzz needs nightly. The seeds are written by `write_seeds` below (domain XML as this
//! agent writes it, and as libvirt's test driver returns it):
//! `cargo test -p hypervisor-agent --test fuzz_replay -- --ignored write_seeds`.

use hypervisor_agent::domain::{identity_of, Boot, DomainSpec, Nic, Owner};

#[path = "../../fuzz/props/replay.rs"]
mod replay;

#[path = "../../fuzz/props/domain_identity.rs"]
mod prop;

#[test]
fn corpus_and_mutants_keep_the_property() {
    const TOKENS: &[&[u8]] = &[
        b"<",
        b">",
        b"/>",
        b"'",
        b"\"",
        b"&amp;",
        b"<interface>",
        b"</interface>",
        b"<mac address='02:00:00:00:00:09'/>",
        b"<entry>",
        b"</entry>",
        b"<entry>vrgw.mgmt=10.0.0.9/24</entry>",
        b"<uuid>",
        b"</uuid>",
        b"<vrgw:owner profile='7b7d'/>",
        b" profile='",
        b":owner ",
        b"zz",
        b"\xff",
        b"\0",
    ];
    let (ok, total) = replay::replay("domain_identity", 8, 600, TOKENS, prop::check_domain_identity);
    assert!(ok > 0 && ok < total, "{ok} of {total} mutants read as a vRGW");
}

fn nic(bridge: &str, mac: &str) -> Nic {
    Nic { bridge: bridge.into(), openvswitch: false, vlan: None, mac: mac.into(), target: None }
}

/// A spec as the agent makes one.
fn spec(slot: u32) -> DomainSpec {
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
        mgmt: nic("vrgw-mgmt", &format!("02:01:00:00:{slot:02x}:00")),
        lan: Nic {
            openvswitch: true,
            vlan: Some(7),
            target: Some(format!("vrgwl-{slot}")),
            ..nic("vrgw-s100", &format!("02:01:00:00:{slot:02x}:01"))
        },
        wan: nic("vrgw-wan", &format!("02:01:00:00:{slot:02x}:02")),
        mgmt_address: format!("10.99.0.{}/24", 4 + slot),
        secret: "00112233445566778899aabbccddeeff".into(),
        secret_file: format!("/var/lib/vrgw/secrets/vrgw-{slot}"),
        owner: Owner { agent: "host-a".into(), slot },
        tb_cache_mib: Some(16),
        console_log: Some(format!("/var/log/libvirt/qemu/vrgw-{slot}.console.log")),
        uuid: Some(format!("6f1c2b1e-0d4a-4c55-9a7e-00000000000{}", slot % 10)),
        profile: None,
        max_processes: None,
    }
}

/// What no other field of a spec may change: the identity read back from its XML.
fn identity_fields(s: &DomainSpec) -> (String, Vec<String>, String, Option<String>) {
    let macs = vec![s.mgmt.mac.clone(), s.lan.mac.clone(), s.wan.mac.clone()];
    (s.uuid.clone().unwrap_or_default(), macs, s.mgmt_address.clone(), s.profile.clone())
}

/// `spec(slot)` with `hostile` in every field the identity is not read from, written by the
/// agent (escaped) and read back: the identity it was written with, or the one read.
fn written_and_read(slot: u32, hostile: &str) -> Result<(), String> {
    let mut s = spec(slot);
    s.profile = Some(format!("{{\"ssid\":\"{}\"}}", hostile.replace('"', "'")));
    let clean = identity_fields(&s);
    s.name = hostile.to_string();
    s.mgmt.bridge = hostile.to_string();
    s.lan.target = Some(hostile.to_string());
    s.owner.agent = hostile.to_string();
    s.console_log = Some(hostile.to_string());
    s.boot = Boot::Kernel { kernel: hostile.to_string(), initrd: hostile.to_string(), cmdline: hostile.to_string() };
    let xml = s.to_xml();
    let id = identity_of(&xml).ok_or_else(|| format!("not read back:\n{xml}"))?;
    assert!(prop::check_domain_identity(xml.as_bytes()));
    let read = (id.uuid, id.macs, id.mgmt_address, id.profile);
    if read == clean {
        Ok(())
    } else {
        Err(format!("{hostile:?}: read {read:?}, written {clean:?}"))
    }
}

/// Markup the reader looks for, quotes and entities in the other fields: the identity read
/// back is the one written.
#[test]
fn other_fields_cannot_change_the_identity_read_back() {
    let hostile = [
        "<uuid>00000000-0000-0000-0000-000000000000</uuid>",
        "<entry>vrgw.mgmt=6.6.6.6/8</entry>",
        "<interface><mac address='06:06:06:06:06:06'/></interface>",
        "&amp;&lt;</name></domain>",
        "vrgw.mgmt=6.6.6.6/8 vrgw.secret=00",
        "profile='7b7d' slot='9'",
    ];
    let failed: Vec<String> =
        hostile.iter().enumerate().filter_map(|(i, h)| written_and_read(i as u32, h).err()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A domain name, or the agent's own id, holding `x:owner profile=` or a whole ownership mark:
/// the configuration travelling with the vRGW is still the one in the mark (`identity_of` reads
/// the mark as an element of the document, not as text after the first `:owner `).
#[test]
fn owner_markup_in_other_fields_cannot_hide_the_configuration() {
    let hostile = [
        "x:owner profile='7b7d'/>",
        "' profile='7b7d",
        "\" /><vrgw:owner profile=\"7b7d\"/>",
        "<metadata><vrgw:owner xmlns:vrgw='x' profile='7b7d'/></metadata>",
    ];
    let failed: Vec<String> =
        hostile.iter().enumerate().filter_map(|(i, h)| written_and_read(i as u32, h).err()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Writes the seed corpus (run by hand; the files are committed).
#[test]
#[ignore = "writes fuzz/corpus; run by hand when the seeds change"]
fn write_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/domain_identity");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let mut specs = vec![("kernel-boot", spec(1))];
    let mut s = spec(2);
    s.boot = Boot::Disk { overlay: "/var/lib/vrgw/instances/2.qcow2".into() };
    s.tb_cache_mib = None;
    s.console_log = None;
    specs.push(("disk-boot", s));
    let mut s = spec(3);
    s.profile = Some(r#"{"values":{"WiFi.SSID.1.SSID":["home","xsd:string"]},"static_leases":[]}"#.into());
    specs.push(("with-profile", s));
    let mut s = spec(4);
    s.profile = Some("{\"values\":{\"WiFi.SSID.1.SSID\":[\"Café ünï\",\"xsd:string\"]}}".into());
    s.lan.openvswitch = false;
    s.lan.vlan = None;
    specs.push(("with-profile-utf8", s));
    // A container: its root and secret bound, its NICs named inside, its process limit in the mark.
    let mut s = spec(5);
    s.boot = Boot::Container { root: "/var/lib/vrgw/overlays/vrgw-5/root".into() };
    s.tb_cache_mib = None;
    s.console_log = None;
    s.max_processes = Some(256);
    specs.push(("container", s));
    for (name, s) in &specs {
        std::fs::write(dir.join(format!("{name}.xml")), s.to_xml()).expect("seed");
        // As libvirt returns it: its test driver, which parses and re-serialises the whole
        // document (double quotes, indentation, defaults filled in).
        let defined = std::env::temp_dir().join(format!("vrgw-seed-{name}.xml"));
        std::fs::write(&defined, s.to_xml()).expect("temp");
        let out = std::process::Command::new("virsh")
            .args(["-c", "test:///default", &format!("define {}; dumpxml {}", defined.display(), s.name)])
            .output()
            .expect("virsh (libvirt-clients)");
        let _ = std::fs::remove_file(&defined);
        let text = String::from_utf8_lossy(&out.stdout);
        let xml = &text[text.find("<domain").expect("dumpxml output")..];
        assert!(identity_of(xml).is_some(), "libvirt's form is not read:\n{xml}");
        std::fs::write(dir.join(format!("{name}.libvirt.xml")), xml.trim_end().as_bytes()).expect("seed");
    }
}

#[path = "../../fuzz/props/migration_context.rs"]
mod context_prop;

#[test]
fn migration_context_corpus_and_mutants_keep_the_property() {
    const TOKENS: &[&[u8]] = &[b"=", b"==", b"+", b"/", b"A", b"\n", b" ", b"\xff", b"\0", b"AAAAAAAAAAAAAAAA"];
    let (ok, total) = replay::replay("migration_context", 4, 400, TOKENS, context_prop::check_migration_context);
    assert!(ok > 0 && ok < total, "{ok} of {total} mutants had the shape of a sealed context");
}

/// Writes the seed corpus of `migration_context`: contexts as a source seals them (to keys
/// made here and thrown away: no seed opens).
#[test]
#[ignore]
fn write_context_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/migration_context");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let plain = [
        ("profile", r#"{"values":{"WiFi.SSID.1.SSID":["home","xsd:string"]},"static_leases":[]}"#.to_string()),
        (
            "virtual-device",
            r#"{"profile":{"values":{}},"virtual_device":{"key":"00A0B1-vRGW-carol","state":{},"booted":true}}"#
                .to_string(),
        ),
        ("empty", String::new()),
        ("long", "x".repeat(3000)),
    ];
    for (name, text) in plain {
        let key = hypervisor_agent::seal::Opener::new().expect("key");
        let sealed = hypervisor_agent::seal::seal(&key.public_key(), text.as_bytes()).expect("seal");
        std::fs::write(dir.join(name), sealed).expect("seed");
    }
}

#[path = "../../fuzz/props/firmware_kind.rs"]
mod firmware_prop;

#[test]
fn firmware_kind_corpus_and_mutants_keep_the_property() {
    const TOKENS: &[&[u8]] = &[b"QFI\xfb", b"\x1f\x8b", b"070701", b"\0\0\0\x03", b"\0\0\0\x04", b"\xff", b"\0"];
    let (ok, total) = replay::replay("firmware_kind", 3, 400, TOKENS, firmware_prop::check_firmware_kind);
    assert!(ok > 0 && ok < total, "{ok} of {total} mutants were taken as firmware");
}

/// Writes the seed corpus of `firmware_kind`: a qcow2 header of each version QEMU reads, and
/// an initramfs.
#[test]
#[ignore]
fn write_firmware_seeds() {
    use hypervisor_agent::firmware::testing::{initramfs, qcow2};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/firmware_kind");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes) in
        [("qcow2-v2", qcow2(2)), ("qcow2-v3", qcow2(3)), ("initramfs", initramfs(b"#!/bin/sh\necho vrgw 2\n"))]
    {
        std::fs::write(dir.join(name), bytes).expect("seed");
    }
}
