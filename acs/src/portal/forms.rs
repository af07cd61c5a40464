//! The web form's fields: what a subscriber may change, where each lands in the vRGW's data
//! model, and validation with the data model's own rules (types, ranges and enumerations from
//! the schema; the checks that span parameters from `datamodel::rules`), with messages in plain
//! words next to the field.

use std::collections::BTreeMap;

use cwmp::{ParameterValue, Value};
use datamodel::Tree;

use crate::profiles::Profile;
use crate::store::CachedParam;

/// A form field: its name in the HTML form, its label, and its parameter (relative to the
/// vRGW's `Device.`), if it maps to one.
pub struct Field {
    /// The HTML form's name.
    pub name: &'static str,
    /// What the page calls it.
    pub label: &'static str,
    /// The parameter, relative to the vRGW's `Device.`.
    pub param: &'static str,
    /// What a valid value looks like, said to the subscriber when theirs is not.
    pub hint: &'static str,
}

/// The LAN and DHCP page.
pub const LAN: &[Field] = &[
    Field {
        name: "lan_address",
        label: "Gateway address",
        param: "IP.Interface.1.IPv4Address.1.IPAddress",
        hint: "an IPv4 address such as 192.168.1.1",
    },
    Field {
        name: "lan_mask",
        label: "Subnet mask",
        param: "IP.Interface.1.IPv4Address.1.SubnetMask",
        hint: "a subnet mask such as 255.255.255.0",
    },
    Field {
        name: "pool_min",
        label: "First address handed out",
        param: "DHCPv4.Server.Pool.1.MinAddress",
        hint: "an IPv4 address in your network, such as 192.168.1.100",
    },
    Field {
        name: "pool_max",
        label: "Last address handed out",
        param: "DHCPv4.Server.Pool.1.MaxAddress",
        hint: "an IPv4 address in your network, such as 192.168.1.199",
    },
    Field {
        name: "lease_hours",
        label: "Lease time (hours)",
        param: "DHCPv4.Server.Pool.1.LeaseTime",
        hint: "a whole number of hours from 1 to 8760",
    },
    Field {
        name: "dns_servers",
        label: "DNS servers given to your devices",
        param: "DHCPv4.Server.Pool.1.DNSServers",
        hint: "IPv4 addresses separated by commas, or empty to use the gateway",
    },
    Field {
        name: "static_leases",
        label: "Fixed addresses (one per line: MAC address, then IP address)",
        param: "",
        hint: "lines such as 02:00:00:00:00:01 192.168.1.20",
    },
];

/// The Wi-Fi page.
pub const WIFI: &[Field] = &[
    Field { name: "ssid", label: "Network name (SSID)", param: "WiFi.SSID.1.SSID", hint: "1 to 32 characters" },
    Field { name: "wifi_enable", label: "Wi-Fi on", param: "WiFi.SSID.1.Enable", hint: "" },
    Field {
        name: "security",
        label: "Security",
        param: "WiFi.AccessPoint.1.Security.ModeEnabled",
        hint: "one of the listed choices",
    },
    Field {
        name: "passphrase",
        label: "Password (leave empty to keep the current one)",
        param: "WiFi.AccessPoint.1.Security.KeyPassphrase",
        hint: "8 to 63 characters: letters, digits, spaces and punctuation",
    },
];

/// Security modes offered (a subset of the data model's enumeration a home network needs).
pub const SECURITY_MODES: &[(&str, &str)] = &[
    ("WPA2-Personal", "WPA2 with a password"),
    ("WPA3-Personal", "WPA3 with a password"),
    ("WPA3-Personal-Transition", "WPA2 and WPA3 with a password"),
    ("None", "Open, no password (not recommended)"),
];

/// What a page shows in its fields, and the messages next to them.
#[derive(Debug, Default, Clone)]
pub struct FormState {
    /// Field name -> the text in the field.
    pub values: BTreeMap<String, String>,
    /// Field name -> what is wrong with it.
    pub errors: BTreeMap<String, String>,
}

/// The values the vRGW has now, as the ACS's cache last saw them, over its factory defaults,
/// with the subscriber's saved profile on top: the tree a change is checked against.
pub fn current_tree(cache: &[CachedParam], device_path: &str, profile: &Profile) -> Tree {
    let mut t = datamodel::factory::vrgw("vrgw");
    let mut set = |path: &str, ty: &str, lexical: &str| {
        let Some(ty) = cwmp::XsdType::from_local(ty) else { return };
        if let Ok(v) = Value::parse(ty, lexical) {
            let _ = t.set_internal(path, v);
        }
    };
    for p in cache {
        if let Some(rel) = p.name.strip_prefix(device_path) {
            // Secrets read back empty (TR-181 hidden values): the vRGW keeps its own.
            if rel.ends_with("KeyPassphrase") {
                continue;
            }
            if LAN.iter().chain(WIFI).any(|f| !f.param.is_empty() && f.param == rel) || is_rule_input(rel) {
                set(&format!("Device.{rel}"), &p.ty, &p.value);
            }
        }
    }
    for (rel, v) in &profile.values {
        let _ = t.set_internal(&format!("Device.{rel}"), v.clone());
    }
    t
}

fn is_rule_input(rel: &str) -> bool {
    matches!(rel, "DHCPv4.Server.Pool.1.Enable" | "DHCPv4.Server.Pool.1.SubnetMask" | "DHCPv4.Server.Pool.1.IPRouters")
}

/// The text a field shows for the tree `t`.
pub fn shown(t: &Tree, f: &Field) -> String {
    if f.name == "passphrase" {
        return String::new();
    }
    let v = t.value(&format!("Device.{}", f.param));
    match (f.name, v) {
        ("lease_hours", Some(Value::Int(s))) if s > 0 => (s / 3600).max(1).to_string(),
        ("lease_hours", _) => "24".into(),
        (_, Some(Value::Boolean(b))) => if b { "on" } else { "" }.into(),
        (_, Some(v)) => v.to_string(),
        (_, None) => String::new(),
    }
}

/// The static leases as the page shows them (`MAC IP` per line), from the profile or the cache.
pub fn static_leases_text(cache: &[CachedParam], device_path: &str, profile: &Profile) -> String {
    if let Some(list) = &profile.static_leases {
        return list.iter().map(|(mac, ip)| format!("{mac} {ip}")).collect::<Vec<_>>().join("\n");
    }
    let table = format!("{device_path}DHCPv4.Server.Pool.1.StaticAddress.");
    let mut rows: BTreeMap<u32, (String, String)> = BTreeMap::new();
    for p in cache {
        let Some(rest) = p.name.strip_prefix(&table) else { continue };
        let Some((n, field)) = rest.split_once('.') else { continue };
        let Ok(n) = n.parse() else { continue };
        match field {
            "Chaddr" => rows.entry(n).or_default().0 = p.value.clone(),
            "Yiaddr" => rows.entry(n).or_default().1 = p.value.clone(),
            _ => {}
        }
    }
    rows.values().map(|(m, i)| format!("{m} {i}")).collect::<Vec<_>>().join("\n")
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks a submitted page against the data model. On success, the profile with the page's
/// values merged in; otherwise the form as typed with a message per wrong field.
pub fn check(
    fields: &'static [Field],
    form: &BTreeMap<String, String>,
    current: &Tree,
    profile: &Profile,
) -> Result<Profile, FormState> {
    let mut state = FormState::default();
    for f in fields {
        state.values.insert(f.name.to_string(), form.get(f.name).cloned().unwrap_or_default());
    }
    let mut values: Vec<(String, Value)> = Vec::new();
    let mut static_leases: Option<Vec<(String, String)>> = None;
    for f in fields {
        let raw = form.get(f.name).map(|s| s.trim().to_string()).unwrap_or_default();
        let bad = |state: &mut FormState, why: &str| {
            state.errors.insert(f.name.to_string(), why.to_string());
        };
        // No line breaks or other control characters in a one-line field: the vRGW's own check
        // refuses them later, when the subscriber would already have been told "saved".
        if f.name != "static_leases" && raw.chars().any(char::is_control) {
            bad(&mut state, "Use letters, digits, spaces and punctuation only (no line breaks or control characters).");
            continue;
        }
        match f.name {
            "lease_hours" => match raw.parse::<i32>() {
                Ok(h) if (1..=8760).contains(&h) => values.push((f.param.into(), Value::Int(h * 3600))),
                _ => bad(&mut state, &format!("Enter {}.", f.hint)),
            },
            "wifi_enable" => values.push((f.param.into(), Value::Boolean(!raw.is_empty()))),
            "passphrase" if raw.is_empty() => {}
            "security" if !SECURITY_MODES.iter().any(|(m, _)| *m == raw) => {
                bad(&mut state, "Choose one of the listed security modes.")
            }
            "static_leases" => {
                let mut list = Vec::new();
                for (i, line) in raw.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    match words.as_slice() {
                        [mac, ip] if is_mac(mac) && ip.parse::<std::net::Ipv4Addr>().is_ok() => {
                            list.push((mac.to_ascii_lowercase(), ip.to_string()))
                        }
                        _ => {
                            bad(
                                &mut state,
                                &format!("Line {} is not a MAC address and an IP address: {}.", i + 1, f.hint),
                            );
                            break;
                        }
                    }
                }
                static_leases = Some(list);
            }
            _ => values.push((f.param.into(), Value::String(raw))),
        }
    }
    // The data model's own checks, parameter by parameter.
    let pvs: Vec<ParameterValue> =
        values.iter().map(|(rel, v)| ParameterValue::new(format!("Device.{rel}"), v.clone())).collect();
    let mut cand = current.clone();
    match cand.validate(&pvs) {
        Ok(typed) => cand.apply(typed),
        Err(faults) => {
            for pf in faults {
                if let Some(f) = fields.iter().find(|f| format!("Device.{}", f.param) == pf.parameter_name) {
                    state.errors.entry(f.name.to_string()).or_insert_with(|| format!("Enter {}.", f.hint));
                }
            }
        }
    }
    // Static leases as rows of the candidate, so the rules see them.
    if let Some(list) = &static_leases {
        let table = "Device.DHCPv4.Server.Pool.1.StaticAddress.";
        for n in cand.instances(table) {
            let _ = cand.delete_object_internal(&format!("{table}{n}."));
        }
        for (mac, ip) in list {
            if let Ok(n) = cand.add_object_internal(table) {
                let _ = cand.set_internal(&format!("{table}{n}.Chaddr"), Value::String(mac.clone()));
                let _ = cand.set_internal(&format!("{table}{n}.Yiaddr"), Value::String(ip.clone()));
                let _ = cand.set_internal(&format!("{table}{n}.Enable"), Value::Boolean(true));
            }
        }
    }
    // The checks that span parameters, as the vRGW itself will make them.
    if state.errors.is_empty() {
        for pf in datamodel::rules::check(&cand) {
            let rel = pf.parameter_name.trim_start_matches("Device.");
            let field = fields.iter().find(|f| !f.param.is_empty() && f.param == rel).or_else(|| {
                rel.contains(".StaticAddress.").then(|| fields.iter().find(|f| f.name == "static_leases")).flatten()
            });
            let Some(f) = field else { continue };
            state.errors.entry(f.name.to_string()).or_insert_with(|| plain(&pf.string, fields));
        }
    }
    if !state.errors.is_empty() {
        return Err(state);
    }
    let mut merged = profile.clone();
    for (rel, val) in values {
        merged.values.insert(rel, val);
    }
    if let Some(list) = static_leases {
        merged.static_leases = Some(list);
    }
    Ok(merged)
}

/// A rule's message with the data model's names replaced by the labels the page uses.
fn plain(msg: &str, fields: &[Field]) -> String {
    let mut out = msg.to_string();
    for f in fields {
        if let Some(last) = f.param.rsplit('.').next().filter(|l| !l.is_empty()) {
            out = out.replace(last, f.label);
        }
    }
    let mut c = out.chars();
    match c.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), c.as_str().trim_end_matches('.')),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn lan_form() -> BTreeMap<String, String> {
        form(&[
            ("lan_address", "192.168.1.1"),
            ("lan_mask", "255.255.255.0"),
            ("pool_min", "192.168.1.50"),
            ("pool_max", "192.168.1.59"),
            ("lease_hours", "12"),
            ("dns_servers", ""),
            ("static_leases", "02:00:00:00:00:01 192.168.1.20"),
        ])
    }

    #[test]
    fn a_good_page_becomes_profile_values() {
        let t = current_tree(&[], "X.", &Profile::default());
        let p = check(LAN, &lan_form(), &t, &Profile::default()).expect("valid").to_json();
        assert_eq!(p["values"]["DHCPv4.Server.Pool.1.MinAddress"], json!(["192.168.1.50", "xsd:string"]));
        assert_eq!(p["values"]["DHCPv4.Server.Pool.1.LeaseTime"], json!(["43200", "xsd:int"]));
        assert_eq!(p["static_leases"], json!([["02:00:00:00:00:01", "192.168.1.20"]]));
    }

    #[test]
    fn wrong_fields_get_plain_messages_and_keep_what_was_typed() {
        let t = current_tree(&[], "X.", &Profile::default());
        let mut f = lan_form();
        f.insert("pool_min".into(), "192.168.1.300".into());
        f.insert("lease_hours".into(), "0".into());
        let e = check(LAN, &f, &t, &Profile::default()).expect_err("refused");
        assert_eq!(e.values["pool_min"], "192.168.1.300");
        assert!(e.errors["pool_min"].contains("an IPv4 address"), "{:?}", e.errors);
        assert!(e.errors["lease_hours"].contains("1 to 8760"));
        // A rule that spans fields: the range outside the LAN.
        let mut f = lan_form();
        f.insert("pool_max".into(), "10.0.0.9".into());
        let e = check(LAN, &f, &t, &Profile::default()).expect_err("refused");
        assert!(e.errors["pool_max"].starts_with("Last address handed out 10.0.0.9 is outside"), "{:?}", e.errors);
        let mut f = lan_form();
        f.insert("static_leases".into(), "not a mac 1.2.3.4".into());
        assert!(
            check(LAN, &f, &t, &Profile::default()).expect_err("refused").errors["static_leases"].starts_with("Line 1")
        );
    }

    #[test]
    fn wifi_rules_come_from_the_data_model() {
        let t = current_tree(&[], "X.", &Profile::default());
        let f =
            form(&[("ssid", "home"), ("wifi_enable", "on"), ("security", "WPA2-Personal"), ("passphrase", "short")]);
        let e = check(WIFI, &f, &t, &Profile::default()).expect_err("refused");
        assert!(e.errors["passphrase"].contains("8 to 63"), "{:?}", e.errors);
        let f = form(&[("ssid", &"x".repeat(33)), ("wifi_enable", "on"), ("security", "WPA2-Personal")]);
        assert!(check(WIFI, &f, &t, &Profile::default()).is_err());
        let f = form(&[("ssid", "home"), ("security", "WEP-64")]);
        assert!(check(WIFI, &f, &t, &Profile::default()).expect_err("refused").errors.contains_key("security"));
        let f = form(&[
            ("ssid", "home"),
            ("wifi_enable", "on"),
            ("security", "WPA2-Personal"),
            ("passphrase", "long enough"),
        ]);
        let p = check(WIFI, &f, &t, &Profile::default()).expect("valid").to_json();
        assert_eq!(p["values"]["WiFi.SSID.1.Enable"], json!(["true", "xsd:boolean"]));
        assert_eq!(p["values"]["WiFi.AccessPoint.1.Security.KeyPassphrase"][0], "long enough");
    }
}
