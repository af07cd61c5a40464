//! Hostile values (line breaks, `#`, braces, quotes, NUL, other control characters, very long
//! strings, directives of their own) in every writable parameter of the vRGW model: the
//! rendered dnsmasq, nftables and hostapd files hold only the directives expected for that
//! parameter, with values of their types, whether or not the check step ran; and the check
//! step refuses what the renderers would have to leave out, naming the parameter.

use std::collections::BTreeMap;

use datamodel::path::Path;
use proptest::prelude::*;
use vrgw_proxy::fuzzing::{audit, base_tree, nft_template, set_unchecked, TestEnv, HOSTILE};
use vrgw_proxy::render::{render, Rendered};

/// Every writable parameter of the base configuration.
fn writable() -> Vec<String> {
    let t = base_tree();
    let names = t.names("Device.", false).expect("names");
    let out: Vec<String> = names.into_iter().filter(|p| p.writable && !p.name.ends_with('.')).map(|p| p.name).collect();
    assert!(out.len() > 100, "only {} writable parameters", out.len());
    out
}

/// What a line is, whatever its value: `file:key` (dnsmasq's dhcp-option with its option),
/// or the ruleset line with its values replaced by their kinds.
fn identity(file: &str, line: &str) -> String {
    match file {
        "nft" => format!("nft:{}", nft_template(line)),
        _ => {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            match key {
                "dhcp-option" => format!("{file}:{key}:{}", value.split(',').nth(1).unwrap_or("")),
                _ => format!("{file}:{key}"),
            }
        }
    }
}

/// The identities a parameter may add, remove or change lines of.
fn governed(param: &str) -> Vec<&'static str> {
    let template = Path::parse(param).map(|p| p.template).unwrap_or_default();
    let t = template.strip_prefix("Device.").unwrap_or(&template);
    let pool = ["dnsmasq:dhcp-range", "dnsmasq:dhcp-option:*", "dnsmasq:domain", "dnsmasq:dhcp-host"];
    match t {
        "DHCPv4.Server.Enable"
        | "DHCPv4.Server.Pool.{i}.Enable"
        | "DHCPv4.Server.Pool.{i}.MinAddress"
        | "DHCPv4.Server.Pool.{i}.MaxAddress" => pool.to_vec(),
        "DHCPv4.Server.Pool.{i}.SubnetMask"
        | "DHCPv4.Server.Pool.{i}.LeaseTime"
        | "IP.Interface.{i}.IPv4Address.{i}.IPAddress"
        | "IP.Interface.{i}.IPv4Address.{i}.SubnetMask" => vec!["dnsmasq:dhcp-range"],
        "DHCPv4.Server.Pool.{i}.IPRouters" => vec!["dnsmasq:dhcp-option:option:router"],
        "DHCPv4.Server.Pool.{i}.DNSServers" => vec!["dnsmasq:dhcp-option:option:dns-server"],
        "DHCPv4.Server.Pool.{i}.DomainName" => vec!["dnsmasq:dhcp-option:option:domain-name", "dnsmasq:domain"],
        t if t.starts_with("DHCPv4.Server.Pool.{i}.StaticAddress.{i}.") => vec!["dnsmasq:dhcp-host"],
        "DNS.Relay.Enable" => vec!["dnsmasq:port"],
        "DNS.Relay.Forwarding.{i}.Enable" | "DNS.Relay.Forwarding.{i}.DNSServer" => {
            vec!["dnsmasq:server", "dnsmasq:no-resolv"]
        }
        t if t.starts_with("NAT.PortMapping.{i}.") => vec!["nft:*dnat*", "nft:*daddr*"],
        "NAT.InterfaceSetting.{i}.Enable" | "NAT.InterfaceSetting.{i}.Interface" => vec!["nft:*masquerade*"],
        "Firewall.Enable" | "Firewall.Config" => vec!["nft:*"],
        "WiFi.SSID.{i}.SSID" => vec!["hostapd:ssid2"],
        "WiFi.SSID.{i}.Enable" | "WiFi.AccessPoint.{i}.Enable" => vec!["hostapd:start_disabled"],
        "WiFi.AccessPoint.{i}.SSIDAdvertisementEnabled" => vec!["hostapd:ignore_broadcast_ssid"],
        "WiFi.AccessPoint.{i}.Security.ModeEnabled" => {
            vec![
                "hostapd:wpa",
                "hostapd:wpa_key_mgmt",
                "hostapd:rsn_pairwise",
                "hostapd:wpa_passphrase",
                "hostapd:wpa_psk",
            ]
        }
        "WiFi.AccessPoint.{i}.Security.KeyPassphrase" => vec!["hostapd:wpa_passphrase", "hostapd:wpa_psk"],
        _ => Vec::new(),
    }
}

fn matches(pattern: &str, id: &str) -> bool {
    match (pattern.strip_suffix('*'), pattern.split_once("*")) {
        (Some(prefix), _) if !prefix.contains('*') => id.starts_with(prefix),
        (_, Some((prefix, rest))) => {
            let inner = rest.trim_end_matches('*');
            id.starts_with(prefix) && id[prefix.len()..].contains(inner)
        }
        _ => pattern == id,
    }
}

/// Lines of each file, with how often each occurs.
fn lines(r: &Rendered) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (file, text) in [("dnsmasq", &r.dnsmasq), ("nft", &r.nft), ("hostapd", &r.hostapd)] {
        for line in text.split('\n') {
            *out.entry((identity(file, line), line.to_string())).or_insert(0) += 1;
        }
    }
    out
}

/// The property for one parameter and value; `Err` says what broke.
fn holds(param: &str, value: &str, base: &Rendered, env: &TestEnv) -> Result<(), String> {
    let mut t = base_tree();
    if !set_unchecked(&mut t, param, value) {
        return Ok(()); // the schema refused it: a 9006/9007 fault naming the parameter
    }
    let r = render(&t, &env.env());
    audit(&r).map_err(|e| format!("{param} = {value:?}: {e}"))?;
    let allowed = governed(param);
    let (now, before) = (lines(&r), lines(base));
    for key in now.keys().chain(before.keys()) {
        let (id, line) = key;
        if now.get(key) != before.get(key) && !allowed.iter().any(|p| matches(p, id)) {
            return Err(format!("{param} = {value:?} changed {line:?} ({id}), outside {allowed:?}"));
        }
    }
    // As the proxy answers a set of `param`: its check's faults, named after the request.
    let faults = vrgw_proxy::check::for_request(vrgw_proxy::check::check(&t), &[param]);
    if faults.is_empty() {
        if !r.left_out.is_empty() {
            return Err(format!("{param} = {value:?}: checked, yet left out: {:?}", r.left_out));
        }
    } else if !faults.iter().any(|f| f.parameter_name == param) {
        return Err(format!("{param} = {value:?}: refused without naming it: {faults:?}"));
    } else if let Some(f) = faults.iter().find(|f| f.string.chars().any(char::is_control) || f.string.len() > 400) {
        return Err(format!("{param}: a fault's reason repeats the value raw or whole: {:?}", f.string));
    }
    Ok(())
}

fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(HOSTILE).prop_map(str::to_string),
        1 => "[a-z0-9.-]{1,12}",
    ];
    prop_oneof![
        6 => proptest::collection::vec(piece, 1..6).prop_map(|v| v.concat()),
        1 => (any::<char>(), 1usize..300).prop_map(|(c, n)| c.to_string().repeat(n)),
        1 => (0usize..3).prop_map(|i| ["x".repeat(64), "ab".repeat(32), "a".repeat(70_000)][i].clone()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn hostile_values_in_every_writable_parameter_render_only_their_directives(value in hostile()) {
        let env = TestEnv::default();
        let base = render(&base_tree(), &env.env());
        prop_assert_eq!(audit(&base), Ok(()));
        for param in writable() {
            if let Err(e) = holds(&param, &value, &base, &env) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// The values the issue names, in every writable parameter, without randomness.
#[test]
fn the_named_hostile_values_render_only_their_directives() {
    let env = TestEnv::default();
    let base = render(&base_tree(), &env.env());
    let params = writable();
    let values = [
        "home.lan\ndhcp-script=/tmp/x".to_string(),
        "198.51.100.7 accept }\n}\ntable inet evil {".into(),
        "192.168.1.60\n".into(),
        "#".into(),
        "{ }".into(),
        "\"quoted\"".into(),
        "nul\0".into(),
        "x".repeat(100_000),
        "pass phrase\nwpa=0".into(),
    ];
    for param in &params {
        for v in &values {
            if let Err(e) = holds(param, v, &base, &env) {
                panic!("{e}");
            }
        }
    }
}

/// The two cases, through the check step: refused with the parameter named.
#[test]
fn domain_name_and_remote_host_are_typed() {
    for (param, value, why) in [
        ("Device.DHCPv4.Server.Pool.1.DomainName", "home.lan\nport=53", "control character U+000A"),
        ("Device.DHCPv4.Server.Pool.1.DomainName", "home lan", "is not a host name"),
        ("Device.NAT.PortMapping.1.RemoteHost", "198.51.100.7 accept", "one IPv4 address"),
        ("Device.NAT.PortMapping.1.RemoteHost", "example.com", "one IPv4 address"),
    ] {
        let mut t = base_tree();
        assert!(set_unchecked(&mut t, param, value), "the schema takes {value:?}");
        // As the proxy answers a set of `param`: its check's faults, named after the request.
        let faults = vrgw_proxy::check::for_request(vrgw_proxy::check::check(&t), &[param]);
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].parameter_name, param);
        assert!(faults[0].string.contains(why), "{:?}", faults[0].string);
        // Bypassed, the renderers leave it out: no domain at all, no mapping rather than one
        // open to any host.
        let r = render(&t, &TestEnv::default().env());
        assert!(!r.dnsmasq.contains("domain") || !param.ends_with("DomainName"), "{}", r.dnsmasq);
        assert!(!r.nft.contains("dnat") || !param.ends_with("RemoteHost"), "{}", r.nft);
        assert_eq!(r.left_out.len(), 1, "{:?}", r.left_out);
    }
}
