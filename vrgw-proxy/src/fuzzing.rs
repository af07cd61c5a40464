//! The property the fuzz target `render` checks, shared with the corpus replay test and the
//! property test: whatever values reach the data model (through the schema only, the check
//! step bypassed), every line the renderers write is one they may write (a known directive,
//! its value in its type), and when the check step accepts the configuration, the renderers
//! leave nothing out.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use cwmp::{ParameterValue, Value};
use datamodel::Tree;

use crate::check::PORT_MAPPING;
use crate::model::POOL;
use crate::render::{Env, Rendered};
use crate::values::{HostName, IfName, Mac, WpaKey};

/// Pieces of hostile values (line breaks, NUL and other control characters, comment and
/// block characters, quotes, directives of their own) and plausible pieces to wrap them in,
/// for the property test and the corpus replay.
pub const HOSTILE: &[&str] = &[
    "\n",
    "\r",
    "\r\n",
    "\0",
    "\t",
    "\u{b}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{1e}",
    "#",
    "{",
    "}",
    "\"",
    "'",
    "\\",
    ";",
    " ",
    "=",
    ",",
    "é",
    "\u{fffd}",
    "server=203.0.113.66",
    "dhcp-script=/tmp/x",
    " accept",
    " } chain x { ",
    "wpa=0",
    "home.lan",
    "192.168.1.60",
    "80",
    "8080",
    "0",
    "-1",
    "true",
    "a-b",
];

/// The interface names and paths the property renders with.
#[derive(Debug, Clone)]
pub struct TestEnv {
    lan: IfName,
    wan: IfName,
    wlan: IfName,
    lease: PathBuf,
    pid: PathBuf,
}

impl Default for TestEnv {
    fn default() -> TestEnv {
        let name = |s: &str| IfName::parse(s).unwrap_or_else(|e| panic!("{e}"));
        TestEnv {
            lan: name("lan0"),
            wan: name("wan0"),
            wlan: name("wlan0"),
            lease: PathBuf::from("/var/lib/vrgw-proxy/dnsmasq.leases"),
            pid: PathBuf::from("/run/vrgw-proxy/dnsmasq.pid"),
        }
    }
}

impl TestEnv {
    /// The [`Env`] to render with.
    pub fn env(&self) -> Env<'_> {
        Env { lan_if: &self.lan, wan_if: &self.wan, wlan_if: &self.wlan, lease_file: &self.lease, pid_file: &self.pid }
    }
}

/// The factory configuration plus one enabled, valid row of each table the renderers read (a
/// port mapping with a remote host, a static address, a DNS forwarder), so that every
/// parameter the renderers write exists and is written.
pub fn base_tree() -> Tree {
    let mut t = crate::model::factory_defaults("fuzz");
    for table in [PORT_MAPPING, &format!("{POOL}1.StaticAddress."), "Device.DNS.Relay.Forwarding."] {
        let _ = t.add_object(table);
    }
    let pm = format!("{PORT_MAPPING}1.");
    let sa = format!("{POOL}1.StaticAddress.1.");
    let s = |v: &str| Value::String(v.into());
    let values = [
        (format!("{pm}Enable"), Value::Boolean(true)),
        (format!("{pm}ExternalPort"), Value::UnsignedInt(8080)),
        (format!("{pm}InternalPort"), Value::UnsignedInt(80)),
        (format!("{pm}Protocol"), s("TCP")),
        (format!("{pm}InternalClient"), s("192.168.1.50")),
        (format!("{pm}RemoteHost"), s("198.51.100.7")),
        (format!("{sa}Enable"), Value::Boolean(true)),
        (format!("{sa}Chaddr"), s("02:00:00:00:00:01")),
        (format!("{sa}Yiaddr"), s("192.168.1.20")),
        ("Device.DNS.Relay.Forwarding.1.Enable".into(), Value::Boolean(true)),
        ("Device.DNS.Relay.Forwarding.1.DNSServer".into(), s("9.9.9.9")),
    ];
    let list: Vec<ParameterValue> = values.into_iter().map(|(k, v)| ParameterValue::new(k, v)).collect();
    if let Ok(ok) = t.validate(&list) {
        t.apply(ok);
    }
    t
}

/// Sets `path` to the string `value` as a caller could (the schema coerces and checks it; the
/// proxy's check step does not run); whether the schema took it.
pub fn set_unchecked(t: &mut Tree, path: &str, value: &str) -> bool {
    match t.validate(&[ParameterValue::new(path, Value::String(value.into()))]) {
        Ok(ok) => {
            t.apply(ok);
            true
        }
        Err(_) => false,
    }
}

/// Fuzz input: records `path=value` separated by 0x1E, at most 16, set one by one.
pub fn check_render(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut t = base_tree();
    for record in text.split('\u{1e}').take(16) {
        if let Some((path, value)) = record.split_once('=') {
            set_unchecked(&mut t, path, value);
        }
    }
    let env = TestEnv::default();
    let r = crate::render::render(&t, &env.env());
    if let Err(e) = audit(&r) {
        panic!("the renderers wrote a line they may not write: {e}\n{r:#?}");
    }
    let accepted = crate::check::check(&t).is_empty();
    if accepted {
        assert_eq!(r.left_out, Vec::<String>::new(), "the check step accepted values the renderers left out");
    }
    accepted
}

/// Whether every line of `r` is one the renderers may write; the first that is not, named.
pub fn audit(r: &Rendered) -> Result<(), String> {
    for (file, text, ok) in [
        ("dnsmasq.conf", &r.dnsmasq, dnsmasq_line as fn(&str) -> bool),
        ("nftables.conf", &r.nft, nft_line),
        ("hostapd.conf", &r.hostapd, hostapd_line),
    ] {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(format!("{file} does not end with a line feed"));
        };
        for line in body.split('\n') {
            if !ok(line) {
                return Err(format!("{file}: {line:?}"));
            }
        }
    }
    Ok(())
}

fn ipv4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
}

fn pool_tag(s: &str) -> bool {
    s.strip_prefix("pool").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn dnsmasq_line(line: &str) -> bool {
    if line == "# Generated by vrgw-proxy from the data model; do not edit." {
        return true;
    }
    if matches!(line, "bind-interfaces" | "dhcp-authoritative" | "no-resolv" | "user=root" | "port=0") {
        return true;
    }
    let Some((key, value)) = line.split_once('=') else { return false };
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || ".:,/_-".contains(c)) {
        return false;
    }
    let fields: Vec<&str> = value.split(',').collect();
    match key {
        "interface" | "except-interface" => IfName::parse(value).is_ok(),
        "pid-file" | "dhcp-leasefile" => !value.is_empty(),
        "server" => value.parse::<IpAddr>().is_ok(),
        "domain" => HostName::parse(value).is_ok(),
        "dhcp-host" => fields.len() == 2 && Mac::parse(fields[0]).is_ok() && ipv4(fields[1]),
        "dhcp-range" => {
            let lease = |f: &str| f == "infinite" || f.parse::<u32>().is_ok_and(|s| s >= 120);
            fields.first().and_then(|f| f.strip_prefix("set:")).is_some_and(pool_tag)
                && (3..=5).contains(&fields.len())
                && fields[1..3].iter().all(|f| ipv4(f))
                && match fields.len() {
                    4 => ipv4(fields[3]) || lease(fields[3]),
                    5 => ipv4(fields[3]) && lease(fields[4]),
                    _ => true,
                }
        }
        "dhcp-option" => {
            fields.len() >= 3
                && fields[0].strip_prefix("tag:").is_some_and(pool_tag)
                && match fields[1] {
                    "option:router" | "option:dns-server" => fields[2..].iter().all(|f| ipv4(f)),
                    "option:domain-name" => fields.len() == 3 && HostName::parse(fields[2]).is_ok(),
                    _ => false,
                }
        }
        _ => false,
    }
}

fn hostapd_line(line: &str) -> bool {
    if line == "# Generated by vrgw-proxy from the data model; no radio here, so hostapd is not started." {
        return true;
    }
    let Some((key, value)) = line.split_once('=') else { return false };
    let hex = |v: &str| v.bytes().all(|b| b.is_ascii_hexdigit()) && v.len() % 2 == 0;
    match key {
        "interface" => IfName::parse(value).is_ok(),
        "driver" => value == "nl80211",
        "hw_mode" => value == "g",
        "channel" => value == "6",
        "ssid2" => hex(value) && (2..=64).contains(&value.len()),
        "start_disabled" | "ignore_broadcast_ssid" => matches!(value, "0" | "1"),
        "wpa" => matches!(value, "1" | "2" | "3"),
        "wpa_key_mgmt" => matches!(value, "WPA-PSK" | "SAE" | "WPA-PSK SAE"),
        "rsn_pairwise" => value == "CCMP",
        "wpa_passphrase" => matches!(WpaKey::parse(value), Ok(WpaKey::Passphrase(_))),
        "wpa_psk" => matches!(WpaKey::parse(value), Ok(WpaKey::Psk(_))),
        _ => false,
    }
}

/// The lines of the ruleset, values replaced by their kind: `IF` (a quoted interface name),
/// `IP`, `IP:PORT`, `PORTS` (after `dport`), `PROTO`.
const NFT_TEMPLATES: &[&str] = &[
    "# Generated by vrgw-proxy from the data model; loaded atomically with nft -f.",
    "table inet vrgw",
    "delete table inet vrgw",
    "table inet vrgw {",
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    "    iifname IF PROTO dport PORTS dnat ip to IP:PORT",
    "    iifname IF ip saddr IP PROTO dport PORTS dnat ip to IP:PORT",
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    "    oifname IF masquerade",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    "    type filter hook input priority filter; policy drop;",
    "    ct state established,related accept",
    "    iifname IF accept",
    "    ip protocol icmp accept",
    "    iifname IF PROTO dport { 53, 67 } accept",
    "    iifname IF PROTO dport PORTS accept",
    "    iifname != IF iifname != IF accept",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    "    type filter hook forward priority filter; policy drop;",
    "    iifname IF oifname IF accept",
    "    iifname IF ip daddr IP PROTO dport PORTS accept",
    "}",
];

/// `line` with its values replaced by their kinds (see `NFT_TEMPLATES`).
pub fn nft_template(line: &str) -> String {
    let body = line.trim_start_matches(' ');
    let mut out = " ".repeat(line.len() - body.len());
    let mut after_dport = false;
    for (i, tok) in body.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
        let quoted = tok.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
        let kind = match tok {
            _ if quoted.is_some_and(|name| IfName::parse(name).is_ok()) => "IF",
            _ if ipv4(tok) => "IP",
            _ if tok.split_once(':').is_some_and(|(a, p)| ipv4(a) && port(p)) => "IP:PORT",
            _ if after_dport && (port(tok) || tok.split_once('-').is_some_and(|(a, b)| port(a) && port(b))) => "PORTS",
            "tcp" | "udp" => "PROTO",
            _ => tok,
        };
        out.push_str(kind);
        after_dport = tok == "dport";
    }
    out
}

fn nft_line(line: &str) -> bool {
    NFT_TEMPLATES.contains(&nft_template(line).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_configuration_is_valid_and_audits_clean() {
        let t = base_tree();
        assert_eq!(crate::check::check(&t), vec![]);
        let env = TestEnv::default();
        let r = crate::render::render(&t, &env.env());
        assert_eq!(audit(&r), Ok(()));
        assert!(r.nft.contains("iifname \"wan0\" ip saddr 198.51.100.7 tcp dport 8080 dnat ip to 192.168.1.50:80"));
        assert!(
            r.dnsmasq.contains("dhcp-host=02:00:00:00:00:01,192.168.1.20\n") && r.dnsmasq.contains("server=9.9.9.9")
        );
        assert_eq!(r.left_out, Vec::<String>::new());
    }

    #[test]
    fn the_audit_catches_an_added_directive() {
        let env = TestEnv::default();
        let mut r = crate::render::render(&base_tree(), &env.env());
        r.dnsmasq.push_str("dhcp-script=/tmp/x\n");
        assert!(audit(&r).is_err());
        let mut r = crate::render::render(&base_tree(), &env.env());
        r.nft = r.nft.replace("masquerade", "masquerade\n    accept");
        assert!(audit(&r).is_err());
        let mut r = crate::render::render(&base_tree(), &env.env());
        r.hostapd = r.hostapd.replace("channel=6", "channel=6\r");
        assert!(audit(&r).is_err());
    }
}
