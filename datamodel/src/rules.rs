//! The vRGW's rules that span parameters (pool range inside the LAN subnet, mask shape, SSID
//! bytes, WPA passphrase, port-mapping clients, DNS servers), shared by everything that checks a
//! vRGW configuration: its proxy before applying, the ACS's customer web form before queuing.
//! Each problem names its parameter and says what is wrong in words a subscriber can read.

use std::net::Ipv4Addr;

use cwmp::{FaultCode, ParameterFault, Value};

use crate::Tree;

/// The LAN interface's address row.
pub const LAN_ADDR: &str = "Device.IP.Interface.1.IPv4Address.1.";
/// The DHCP server's pools.
pub const POOL: &str = "Device.DHCPv4.Server.Pool.";

/// A parameter's value as text (empty when absent).
pub fn text(t: &Tree, path: &str) -> String {
    t.value(path).map(|v| v.to_string()).unwrap_or_default()
}

/// Whether a boolean parameter is true.
pub fn flag(t: &Tree, path: &str) -> bool {
    matches!(t.value(path), Some(Value::Boolean(true)))
}

/// Prefix length of a contiguous IPv4 mask.
pub fn prefix_len(mask: Ipv4Addr) -> Option<u32> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len)
}

/// The LAN address and mask, if valid.
pub fn lan(t: &Tree) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let ip: Ipv4Addr = text(t, &format!("{LAN_ADDR}IPAddress")).parse().ok()?;
    let mask: Ipv4Addr = text(t, &format!("{LAN_ADDR}SubnetMask")).parse().ok()?;
    Some((ip, mask))
}

/// Whether `a` is in the subnet of `net`/`mask`.
pub fn in_subnet(a: Ipv4Addr, net: Ipv4Addr, mask: Ipv4Addr) -> bool {
    u32::from(a) & u32::from(mask) == u32::from(net) & u32::from(mask)
}

/// Checks that span parameters: pool range order and subnet, mask shape, SSID bytes, WPA
/// passphrase, port-mapping clients. Each problem names its parameter.
pub fn check(t: &Tree) -> Vec<ParameterFault> {
    let mut out = Vec::new();
    let mut bad = |path: String, msg: String| {
        out.push(ParameterFault { parameter_name: path, code: FaultCode::InvalidParameterValue, string: msg })
    };
    let addr_path = format!("{LAN_ADDR}IPAddress");
    let mask_path = format!("{LAN_ADDR}SubnetMask");
    let lan_ok = match (text(t, &addr_path).parse::<Ipv4Addr>(), text(t, &mask_path).parse::<Ipv4Addr>()) {
        (Ok(ip), Ok(mask)) => match prefix_len(mask) {
            Some(len) if (1..=30).contains(&len) => {
                let host = u32::from(ip) & !u32::from(mask);
                if host == 0 || host == !u32::from(mask) {
                    bad(addr_path.clone(), format!("IPAddress {ip} is the network or broadcast address of its subnet"));
                    None
                } else {
                    Some((ip, mask))
                }
            }
            _ => {
                bad(mask_path.clone(), format!("SubnetMask {mask} is not a usable contiguous mask (/1 to /30)"));
                None
            }
        },
        _ => {
            bad(addr_path.clone(), "the LAN needs an IPv4 address and mask".into());
            None
        }
    };
    for n in t.instances(POOL) {
        let p = format!("{POOL}{n}.");
        if !flag(t, &format!("{p}Enable")) {
            continue;
        }
        let min = text(t, &format!("{p}MinAddress")).parse::<Ipv4Addr>();
        let max = text(t, &format!("{p}MaxAddress")).parse::<Ipv4Addr>();
        let (Ok(min), Ok(max)) = (min, max) else {
            bad(format!("{p}MinAddress"), "an enabled pool needs MinAddress and MaxAddress".into());
            continue;
        };
        if u32::from(min) > u32::from(max) {
            bad(format!("{p}MinAddress"), format!("MinAddress {min} is above MaxAddress {max}"));
        }
        if let Some((ip, mask)) = lan_ok {
            let net = Ipv4Addr::from(u32::from(ip) & u32::from(mask));
            let cidr = format!("{net}/{}", prefix_len(mask).unwrap_or(0));
            for (name, a) in [("MinAddress", min), ("MaxAddress", max)] {
                if !in_subnet(a, ip, mask) {
                    bad(format!("{p}{name}"), format!("{name} {a} is outside the LAN subnet {cidr}"));
                }
            }
            if (u32::from(min)..=u32::from(max)).contains(&u32::from(ip)) {
                bad(format!("{p}MinAddress"), format!("the range {min} to {max} holds the LAN address {ip}"));
            }
            let pool_mask = text(t, &format!("{p}SubnetMask"));
            if !pool_mask.is_empty() && pool_mask.parse::<Ipv4Addr>().ok().and_then(prefix_len).is_none() {
                bad(format!("{p}SubnetMask"), format!("SubnetMask {pool_mask} is not a contiguous mask"));
            }
            for r in text(t, &format!("{p}IPRouters")).split(',').map(str::trim).filter(|r| !r.is_empty()) {
                if r.parse::<Ipv4Addr>().map(|a| !in_subnet(a, ip, mask)).unwrap_or(true) {
                    bad(format!("{p}IPRouters"), format!("router {r} is outside the LAN subnet {cidr}"));
                }
            }
            for m in t.instances(&format!("{p}StaticAddress.")) {
                let sp = format!("{p}StaticAddress.{m}.");
                if !flag(t, &format!("{sp}Enable")) {
                    continue;
                }
                if text(t, &format!("{sp}Chaddr")).is_empty() {
                    bad(format!("{sp}Chaddr"), "an enabled static address needs Chaddr".into());
                }
                match text(t, &format!("{sp}Yiaddr")).parse::<Ipv4Addr>() {
                    Ok(a) if in_subnet(a, ip, mask) => {}
                    _ => bad(format!("{sp}Yiaddr"), format!("Yiaddr must be an address in the LAN subnet {cidr}")),
                }
            }
        }
    }
    for n in t.instances("Device.WiFi.SSID.") {
        let p = format!("Device.WiFi.SSID.{n}.SSID");
        let ssid = text(t, &p);
        if ssid.len() > 32 {
            bad(p, format!("SSID is {} bytes, at most 32 are allowed", ssid.len()));
        } else if ssid.is_empty() && flag(t, &format!("Device.WiFi.SSID.{n}.Enable")) {
            bad(p, "an enabled SSID needs a name".into());
        }
    }
    for n in t.instances("Device.WiFi.AccessPoint.") {
        let sec = format!("Device.WiFi.AccessPoint.{n}.Security.");
        let mode = text(t, &format!("{sec}ModeEnabled"));
        if mode.contains("Personal") {
            let pass = text(t, &format!("{sec}KeyPassphrase"));
            let len = pass.chars().count();
            if !(8..=63).contains(&len) || !pass.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                bad(
                    format!("{sec}KeyPassphrase"),
                    format!("a WPA passphrase is 8 to 63 printable ASCII characters; this one has {len}"),
                );
            }
        }
    }
    for n in t.instances("Device.NAT.PortMapping.") {
        let p = format!("Device.NAT.PortMapping.{n}.");
        if !flag(t, &format!("{p}Enable")) {
            continue;
        }
        let client = text(t, &format!("{p}InternalClient"));
        match (client.parse::<Ipv4Addr>(), lan_ok) {
            (Ok(a), Some((ip, mask))) if in_subnet(a, ip, mask) => {}
            _ => bad(format!("{p}InternalClient"), format!("InternalClient {client:?} must be an address on the LAN")),
        }
        if matches!(t.value(&format!("{p}ExternalPort")), Some(Value::UnsignedInt(0))) {
            bad(format!("{p}ExternalPort"), "an enabled port mapping needs ExternalPort".into());
        }
    }
    for n in t.instances("Device.DNS.Relay.Forwarding.") {
        let p = format!("Device.DNS.Relay.Forwarding.{n}.DNSServer");
        let v = text(t, &p);
        if flag(t, &format!("Device.DNS.Relay.Forwarding.{n}.Enable")) && v.parse::<std::net::IpAddr>().is_err() {
            bad(p, format!("DNSServer {v:?} is not an IP address"));
        }
    }
    out
}
