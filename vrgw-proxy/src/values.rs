//! The types the renderers rely on. Every value that reaches a daemon's configuration file is
//! parsed into one of these first: the check step refuses a value that does not parse (with the
//! reason), and the renderers write only parsed values, so no text from outside reaches a file
//! as it came. None of these types can hold a control character, a quote, `#` or a brace.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use cwmp::Value;

/// A value quoted for a message: escaped as Rust does (`"a\nb"`), and cut after about 40
/// characters of that so a refusal of a very long value stays short.
pub fn shown(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if out.len() > 40 {
            return format!("{out}\"... ({} bytes)", s.len());
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

/// The first control character of `s` (C0, DEL or C1), with its position in characters.
pub fn control_char(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| c.is_control())
}

/// Refuses a control character, naming it and where it is.
pub fn no_control(s: &str) -> Result<(), String> {
    match control_char(s) {
        Some((at, c)) => Err(format!("holds the control character U+{:04X} at position {}", u32::from(c), at + 1)),
        None => Ok(()),
    }
}

/// A host or domain name as RFC 1123 defines it: dot-separated labels of 1 to 63 letters,
/// digits and hyphens, no label starting or ending with a hyphen, at most 253 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(String);

impl HostName {
    /// Parses `s`; the error says which rule it breaks.
    pub fn parse(s: &str) -> Result<HostName, String> {
        no_control(s)?;
        if s.is_empty() || s.len() > 253 {
            return Err(format!("a host name has 1 to 253 characters, this one {}", s.len()));
        }
        for label in s.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("each label of a host name has 1 to 63 characters, not {}", label.len()));
            }
            if let Some(c) = label.chars().find(|c| !c.is_ascii_alphanumeric() && *c != '-') {
                return Err(format!("a host name holds only letters, digits, '-' and '.', not {c:?}"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("the label {} starts or ends with '-'", shown(label)));
            }
        }
        Ok(HostName(s.to_string()))
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Wi-Fi network name: 1 to 32 bytes (IEEE 802.11), no control character. Written to hostapd
/// as hex (`ssid2=`), so quotes and any other printable character stay allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssid(String);

impl Ssid {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<Ssid, String> {
        no_control(s)?;
        if s.is_empty() {
            return Err("an SSID has 1 to 32 bytes, this one none".into());
        }
        if s.len() > 32 {
            return Err(format!("SSID is {} bytes, at most 32 are allowed", s.len()));
        }
        Ok(Ssid(s.to_string()))
    }

    /// The SSID's bytes in lower-case hex, as hostapd's `ssid2=` takes them unquoted.
    pub fn hex(&self) -> String {
        self.0.bytes().map(|b| format!("{b:02x}")).collect()
    }
}

/// A WPA-Personal key: a passphrase of 8 to 63 printable ASCII characters, or the 256-bit
/// pre-shared key itself as 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WpaKey {
    /// `wpa_passphrase=` (hostapd takes the rest of the line as it is).
    Passphrase(String),
    /// `wpa_psk=`, lower-case hex.
    Psk(String),
}

impl WpaKey {
    /// Parses `s`; the error never repeats the key.
    pub fn parse(s: &str) -> Result<WpaKey, String> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(WpaKey::Psk(s.to_ascii_lowercase()));
        }
        let len = s.chars().count();
        if !(8..=63).contains(&len) || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(format!(
                "a WPA passphrase is 8 to 63 printable ASCII characters (or 64 hex digits); this one has {len}{}",
                if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    ""
                } else {
                    " and characters outside printable ASCII"
                }
            ));
        }
        Ok(WpaKey::Passphrase(s.to_string()))
    }
}

/// A network interface name as Linux takes it (1 to 15 bytes) and as the configurations can
/// quote it: letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfName(String);

impl IfName {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<IfName, String> {
        if s.is_empty() || s.len() > 15 {
            return Err(format!("an interface name has 1 to 15 bytes, {} has {}", shown(s), s.len()));
        }
        if s.chars().any(|c| !c.is_ascii_alphanumeric() && !matches!(c, '.' | '_' | '-')) || s == "." || s == ".." {
            return Err(format!("{} is not an interface name (letters, digits, '.', '_', '-')", shown(s)));
        }
        Ok(IfName(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A path the configurations name (pid file, lease file): absolute or relative, with no
/// control character, whitespace, quote or `#` (dnsmasq reads `#` after a blank as a comment
/// and strips quotes).
pub fn conf_path(p: &Path) -> Result<(), String> {
    let s = p.to_str().ok_or_else(|| format!("{} is not UTF-8", p.display()))?;
    if s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '#' | '\\')) {
        return Err(format!("{} cannot be named in a daemon's configuration (no blanks, quotes or '#')", shown(s)));
    }
    Ok(())
}

/// An IPv4 address in dotted-quad form.
pub fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse().map_err(|_| format!("{} is not an IPv4 address", shown(s)))
}

/// An IPv4 or IPv6 address.
pub fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("{} is not an IP address", shown(s)))
}

/// A comma-separated list of IPv4 addresses (blanks around the commas allowed); empty gives
/// an empty list.
pub fn ipv4_list(s: &str) -> Result<Vec<Ipv4Addr>, String> {
    if s.trim_matches(' ').is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(|a| ipv4(a.trim_matches(' '))).collect()
}

/// A MAC address, `xx:xx:xx:xx:xx:xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac([u8; 6]);

impl Mac {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<Mac, String> {
        let bad = || format!("{} is not a MAC address (xx:xx:xx:xx:xx:xx)", shown(s));
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A TCP or UDP port, 1 to 65535, from an unsignedInt parameter (0 and absent give `None`).
pub fn port(v: Option<&Value>) -> Result<Option<u16>, String> {
    match v {
        None | Some(Value::UnsignedInt(0)) => Ok(None),
        Some(Value::UnsignedInt(n)) => {
            u16::try_from(*n).map(Some).map_err(|_| format!("{n} is not a port (1 to 65535)"))
        }
        Some(other) => Err(format!("{} is not a port (1 to 65535)", shown(&other.to_lexical()))),
    }
}

/// A range of ports, `first` to `last` (equal for one port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// From ExternalPort and ExternalPortEndRange (0: just `first`).
    pub fn new(first: u16, end: Option<u16>) -> Result<PortRange, String> {
        match end {
            None => Ok(PortRange { first, last: first }),
            Some(last) if last >= first => Ok(PortRange { first, last }),
            Some(last) => Err(format!("ExternalPortEndRange {last} is below ExternalPort {first}")),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A DHCP lease time: infinite (-1) or at least 120 s (dnsmasq's shortest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseTime {
    /// `-1`.
    Infinite,
    /// Seconds, at least 120.
    Seconds(u32),
}

impl LeaseTime {
    /// From the LeaseTime parameter's value.
    pub fn from_value(v: &Value) -> Result<LeaseTime, String> {
        match v {
            Value::Int(-1) => Ok(LeaseTime::Infinite),
            Value::Int(s) if *s >= 120 => Ok(LeaseTime::Seconds(s.unsigned_abs())),
            Value::Int(s) => Err(format!("LeaseTime {s} is too short: -1 (infinite) or at least 120 seconds")),
            other => Err(format!("LeaseTime {} is not a number of seconds", shown(&other.to_lexical()))),
        }
    }
}

impl fmt::Display for LeaseTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseTime::Infinite => f.write_str("infinite"),
            LeaseTime::Seconds(s) => write!(f, "{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_rfc_1123() {
        for ok in ["home.lan", "a", "x-1.example", "1.example", &format!("{}.lan", "a".repeat(63))] {
            assert!(HostName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", ".lan", "lan.", "-a.lan", "a-.lan", "a b", "a\nserver=1.1.1.1", "a#b", "a_b", "é.lan"]
        {
            assert!(HostName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(HostName::parse(&format!("{}.lan", "a".repeat(64))).is_err());
        assert!(HostName::parse(&["abc"; 64].join(".")).is_err(), "255 characters");
        let e = HostName::parse("home\n.lan").expect_err("newline");
        assert!(e.contains("U+000A at position 5"), "{e}");
    }

    #[test]
    fn ssids_and_keys() {
        assert_eq!(Ssid::parse("a\"b").map(|s| s.hex()), Ok("612262".into()));
        assert!(Ssid::parse("").is_err() && Ssid::parse(&"x".repeat(33)).is_err() && Ssid::parse("a\0").is_err());
        assert!(Ssid::parse(&"é".repeat(16)).is_ok(), "32 bytes");
        assert_eq!(WpaKey::parse("pass word#1"), Ok(WpaKey::Passphrase("pass word#1".into())));
        assert_eq!(WpaKey::parse(&"AB".repeat(32)), Ok(WpaKey::Psk("ab".repeat(32))));
        for bad in ["short", &"x".repeat(64), "passphrase\n", "pässphrase", "pass\u{7f}word"] {
            let e = WpaKey::parse(bad).expect_err(bad);
            assert!(!e.contains(bad), "the key is not repeated: {e}");
        }
    }

    #[test]
    fn addresses_ports_and_names() {
        assert_eq!(ipv4_list(" 10.0.0.1, 10.0.0.2 "), Ok(vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]));
        assert_eq!(ipv4_list(""), Ok(vec![]));
        assert!(ipv4_list("10.0.0.1,\n10.0.0.2").is_err());
        assert!(ipv4("10.0.0.1 ").is_err());
        assert_eq!(Mac::parse("02:AB:00:00:00:01").map(|m| m.to_string()), Ok("02:ab:00:00:00:01".into()));
        assert!(Mac::parse("02:ab:00:00:00:01:00").is_err() && Mac::parse("02:ab:00:00:00:0").is_err());
        assert_eq!(port(Some(&Value::UnsignedInt(80))), Ok(Some(80)));
        assert_eq!(port(Some(&Value::UnsignedInt(0))), Ok(None));
        assert!(port(Some(&Value::UnsignedInt(65536))).is_err());
        assert_eq!(PortRange::new(80, Some(90)).map(|r| r.to_string()), Ok("80-90".into()));
        assert_eq!(PortRange::new(80, None).map(|r| r.to_string()), Ok("80".into()));
        assert!(PortRange::new(80, Some(79)).is_err());
        assert_eq!(LeaseTime::from_value(&Value::Int(-1)), Ok(LeaseTime::Infinite));
        assert!(LeaseTime::from_value(&Value::Int(60)).is_err());
        assert!(IfName::parse("eth0.100").is_ok());
        for bad in ["", "eth0\"", "a b", "abcdefghijklmnop", ".."] {
            assert!(IfName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(conf_path(Path::new("/run/vrgw/dnsmasq.pid")).is_ok());
        assert!(conf_path(Path::new("/run/a #b")).is_err());
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        assert_eq!(shown(&"x".repeat(100)), format!("\"{}\"... (100 bytes)", "x".repeat(40)));
        assert!(shown(&"\u{e000}".repeat(100)).len() < 70);
    }
}
