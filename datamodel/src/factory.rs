//! Factory configurations: what a vRGW starts with, shared by the vrgw-proxy (its factory reset)
//! and the host agent (a new instance's profile before its vRGW runs).

use cwmp::{ParameterValue, Value};

use crate::{Schema, Tree};

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

const POOL: &str = "Device.DHCPv4.Server.Pool.";

/// A tree with the vRGW's factory configuration: LAN 192.168.1.1/24, one DHCP pool
/// .100 to .199, one SSID with WPA2, masquerade on the WAN, firewall "Low", DNS relay on.
pub fn vrgw(instance_id: &str) -> Tree {
    let mut t = Tree::new(Schema::vrgw());
    let add = |t: &mut Tree, p: &str| {
        let _ = t.add_object(p);
    };
    add(&mut t, "Device.IP.Interface.");
    add(&mut t, "Device.IP.Interface.");
    add(&mut t, "Device.IP.Interface.1.IPv4Address.");
    add(&mut t, POOL);
    add(&mut t, "Device.WiFi.SSID.");
    add(&mut t, "Device.WiFi.AccessPoint.");
    add(&mut t, "Device.NAT.InterfaceSetting.");
    let values = [
        ("Device.IP.Interface.1.Enable", Value::Boolean(true)),
        ("Device.IP.Interface.1.IPv4Enable", Value::Boolean(true)),
        ("Device.IP.Interface.1.Alias", s("lan")),
        ("Device.IP.Interface.2.Enable", Value::Boolean(true)),
        ("Device.IP.Interface.2.IPv4Enable", Value::Boolean(true)),
        ("Device.IP.Interface.2.Alias", s("wan")),
        ("Device.IP.Interface.1.IPv4Address.1.Enable", Value::Boolean(true)),
        ("Device.IP.Interface.1.IPv4Address.1.IPAddress", s("192.168.1.1")),
        ("Device.IP.Interface.1.IPv4Address.1.SubnetMask", s("255.255.255.0")),
        ("Device.DHCPv4.Server.Enable", Value::Boolean(true)),
        ("Device.DHCPv4.Server.Pool.1.Enable", Value::Boolean(true)),
        ("Device.DHCPv4.Server.Pool.1.Interface", s("Device.IP.Interface.1")),
        ("Device.DHCPv4.Server.Pool.1.MinAddress", s("192.168.1.100")),
        ("Device.DHCPv4.Server.Pool.1.MaxAddress", s("192.168.1.199")),
        ("Device.DHCPv4.Server.Pool.1.SubnetMask", s("255.255.255.0")),
        ("Device.DHCPv4.Server.Pool.1.IPRouters", s("192.168.1.1")),
        ("Device.DHCPv4.Server.Pool.1.DNSServers", s("192.168.1.1")),
        ("Device.DHCPv4.Server.Pool.1.DomainName", s("home.lan")),
        ("Device.DHCPv4.Server.Pool.1.LeaseTime", Value::Int(86400)),
        ("Device.WiFi.SSID.1.Enable", Value::Boolean(true)),
        ("Device.WiFi.SSID.1.SSID", s(&format!("vrgw-{instance_id}"))),
        ("Device.WiFi.AccessPoint.1.Enable", Value::Boolean(true)),
        ("Device.WiFi.AccessPoint.1.SSIDReference", s("Device.WiFi.SSID.1")),
        ("Device.WiFi.AccessPoint.1.Security.ModeEnabled", s("WPA2-Personal")),
        ("Device.WiFi.AccessPoint.1.Security.KeyPassphrase", s("change-this-passphrase")),
        ("Device.NAT.InterfaceSetting.1.Enable", Value::Boolean(true)),
        ("Device.NAT.InterfaceSetting.1.Interface", s("Device.IP.Interface.2")),
        ("Device.Firewall.Enable", Value::Boolean(true)),
        ("Device.Firewall.Config", s("Low")),
        ("Device.DNS.Relay.Enable", Value::Boolean(true)),
    ];
    let list: Vec<ParameterValue> = values.into_iter().map(|(k, v)| ParameterValue::new(k, v)).collect();
    // The defaults are part of this crate and checked by its tests; a value that did not fit
    // the schema would make every vRGW start unconfigured, so it must never pass them.
    if let Ok(v) = t.validate(&list) {
        t.apply(v);
    }
    let _ = t.set_internal("Device.IP.Interface.1.Name", s("lan"));
    let _ = t.set_internal("Device.IP.Interface.2.Name", s("wan"));
    let _ = t.set_internal("Device.WiFi.SSID.1.Name", s("wlan0"));
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_factory_value_fits_the_schema() {
        let t = super::vrgw("7");
        assert_eq!(t.value("Device.WiFi.SSID.1.SSID"), Some(super::s("vrgw-7")));
        assert_eq!(t.value("Device.DHCPv4.Server.Pool.1.MinAddress"), Some(super::s("192.168.1.100")));
        assert_eq!(t.value("Device.Firewall.Config"), Some(super::s("Low")));
        assert_eq!(t.value("Device.NAT.InterfaceSetting.1.Interface"), Some(super::s("Device.IP.Interface.2")));
    }
}
