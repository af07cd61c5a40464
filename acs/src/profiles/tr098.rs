//! A subscriber's settings on a TR-098 gateway (`InternetGatewayDevice.`): the web form and the
//! profile speak TR-181 (names relative to a vRGW's `Device.`); a TR-098 gateway has the same
//! settings under other names, and some not at all. [`to_tr098`] gives a setting's TR-098 names
//! and values, [`from_tr098`] reads a TR-098 gateway's cached values back as TR-181 names for
//! the pages.

use cwmp::Value;

use crate::store::CachedParam;

/// The TR-098 root.
pub const ROOT: &str = "InternetGatewayDevice.";
const LAN: &str = "LANDevice.1.LANHostConfigManagement.";
const WLAN: &str = "LANDevice.1.WLANConfiguration.1.";

/// Settings with one TR-098 name each (relative to [`ROOT`]), by their TR-181 name relative to
/// `Device.`. TR-098's WPA passphrase is `PreSharedKey.1.KeyPassphrase` (the WLAN's own
/// `KeyPassphrase` makes WEP keys).
const SAME: &[(&str, &str)] = &[
    (
        "IP.Interface.1.IPv4Address.1.IPAddress",
        "LANDevice.1.LANHostConfigManagement.IPInterface.1.IPInterfaceIPAddress",
    ),
    (
        "IP.Interface.1.IPv4Address.1.SubnetMask",
        "LANDevice.1.LANHostConfigManagement.IPInterface.1.IPInterfaceSubnetMask",
    ),
    ("DHCPv4.Server.Pool.1.Enable", "LANDevice.1.LANHostConfigManagement.DHCPServerEnable"),
    ("DHCPv4.Server.Pool.1.MinAddress", "LANDevice.1.LANHostConfigManagement.MinAddress"),
    ("DHCPv4.Server.Pool.1.MaxAddress", "LANDevice.1.LANHostConfigManagement.MaxAddress"),
    ("DHCPv4.Server.Pool.1.SubnetMask", "LANDevice.1.LANHostConfigManagement.SubnetMask"),
    ("DHCPv4.Server.Pool.1.IPRouters", "LANDevice.1.LANHostConfigManagement.IPRouters"),
    ("DHCPv4.Server.Pool.1.DNSServers", "LANDevice.1.LANHostConfigManagement.DNSServers"),
    ("DHCPv4.Server.Pool.1.LeaseTime", "LANDevice.1.LANHostConfigManagement.DHCPLeaseTime"),
    ("WiFi.SSID.1.SSID", "LANDevice.1.WLANConfiguration.1.SSID"),
    ("WiFi.SSID.1.Enable", "LANDevice.1.WLANConfiguration.1.Enable"),
    ("WiFi.AccessPoint.1.Security.KeyPassphrase", "LANDevice.1.WLANConfiguration.1.PreSharedKey.1.KeyPassphrase"),
];

/// The security mode, TR-181's `ModeEnabled`.
const MODE: &str = "WiFi.AccessPoint.1.Security.ModeEnabled";

/// Why a setting cannot go to a TR-098 gateway, when it cannot.
pub fn unsupported(rel: &str, v: &Value) -> Option<String> {
    match to_tr098(rel, v) {
        Some(_) => None,
        None if rel == MODE => Some(format!("a TR-098 gateway offers WPA2 or an open network, not {}", v.to_lexical())),
        None => Some(format!("a TR-098 gateway has no setting for {rel}")),
    }
}

/// A setting's TR-098 names (relative to [`ROOT`]) and values; `None` when TR-098 has none.
pub fn to_tr098(rel: &str, v: &Value) -> Option<Vec<(String, Value)>> {
    if let Some((_, name)) = SAME.iter().find(|(r, _)| *r == rel) {
        return Some(vec![(name.to_string(), v.clone())]);
    }
    if rel != MODE {
        return None;
    }
    let s = |n: &str, x: &str| (format!("{WLAN}{n}"), Value::String(x.into()));
    match &*v.to_lexical() {
        "None" => Some(vec![s("BeaconType", "None")]),
        "WPA2-Personal" => Some(vec![
            s("BeaconType", "11i"),
            s("IEEE11iAuthenticationMode", "PSKAuthentication"),
            s("IEEE11iEncryptionModes", "AESEncryption"),
        ]),
        _ => None,
    }
}

/// A TR-098 gateway's cached values under the TR-181 names the pages read (`Device.` and the
/// name relative to it): the settings above, the security mode from `BeaconType`, and the LAN
/// hosts (`LANDevice.1.Hosts.Host.{i}.`, whose `MACAddress` is TR-181's `PhysAddress`).
pub fn from_tr098(cache: Vec<CachedParam>) -> Vec<CachedParam> {
    let hosts = format!("{ROOT}LANDevice.1.Hosts.");
    cache
        .into_iter()
        .filter_map(|mut p| {
            let rel = p.name.strip_prefix(ROOT)?;
            let name = if let Some((r, _)) = SAME.iter().find(|(_, n)| *n == rel) {
                r.to_string()
            } else if rel == format!("{WLAN}BeaconType") {
                p.value = match p.value.as_str() {
                    "11i" => "WPA2-Personal",
                    "None" => "None",
                    _ => return None,
                }
                .to_string();
                MODE.to_string()
            } else if let Some(host) = p.name.strip_prefix(&hosts) {
                match host.strip_suffix(".MACAddress") {
                    Some(row) => format!("Hosts.{row}.PhysAddress"),
                    None => format!("Hosts.{host}"),
                }
            } else {
                return None;
            };
            p.name = format!("Device.{name}");
            Some(p)
        })
        .collect()
}

/// What the status page reads fresh from a TR-098 gateway (its LAN hosts and address).
pub fn status_reads() -> Vec<String> {
    vec![format!("{ROOT}LANDevice.1.Hosts."), format!("{ROOT}{LAN}IPInterface.1.")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(name: &str, value: &str) -> CachedParam {
        CachedParam { name: name.into(), value: value.into(), ty: "string".into(), updated: 0 }
    }

    #[test]
    fn settings_map_to_tr098_and_back() {
        let pool = to_tr098("DHCPv4.Server.Pool.1.MinAddress", &Value::String("192.168.1.20".into()));
        assert_eq!(
            pool,
            Some(vec![("LANDevice.1.LANHostConfigManagement.MinAddress".into(), Value::String("192.168.1.20".into()))])
        );
        let wpa2 = to_tr098(MODE, &Value::String("WPA2-Personal".into())).expect("WPA2");
        assert_eq!(wpa2[0], (format!("{WLAN}BeaconType"), Value::String("11i".into())));
        assert_eq!(to_tr098(MODE, &Value::String("WPA3-Personal".into())), None);
        assert_eq!(
            unsupported(MODE, &Value::String("WPA3-Personal".into())).as_deref(),
            Some("a TR-098 gateway offers WPA2 or an open network, not WPA3-Personal")
        );
        assert_eq!(
            unsupported("Firewall.Config", &Value::String("High".into())).as_deref(),
            Some("a TR-098 gateway has no setting for Firewall.Config")
        );

        let back = from_tr098(vec![
            cached("InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.MaxAddress", "192.168.1.29"),
            cached("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.BeaconType", "11i"),
            cached("InternetGatewayDevice.LANDevice.1.Hosts.Host.2.MACAddress", "02:00:00:00:00:02"),
            cached("InternetGatewayDevice.LANDevice.1.Hosts.Host.2.IPAddress", "192.168.1.21"),
            cached("InternetGatewayDevice.DeviceInfo.SerialNumber", "gw-1"),
        ]);
        let names: Vec<(&str, &str)> = back.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
        assert_eq!(
            names,
            vec![
                ("Device.DHCPv4.Server.Pool.1.MaxAddress", "192.168.1.29"),
                ("Device.WiFi.AccessPoint.1.Security.ModeEnabled", "WPA2-Personal"),
                ("Device.Hosts.Host.2.PhysAddress", "02:00:00:00:00:02"),
                ("Device.Hosts.Host.2.IPAddress", "192.168.1.21"),
            ]
        );
    }
}
