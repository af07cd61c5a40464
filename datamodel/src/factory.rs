//! Factory configurations: what a vRGW starts with, shared by the vrgw-proxy (its factory reset)
//! and the host agent (a new instance's profile before its vRGW runs); and the TR-098 gateway the
//! simulated CPE can be ([`tr098_gateway`]), as a real one reports itself.

use cwmp::{Fault, ParameterValue, Value};

use crate::schema::TR098_ROOT;
use crate::{Schema, Tree};

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

const POOL: &str = "Device.DHCPv4.Server.Pool.";

/// A tree with the vRGW's factory configuration: LAN 192.168.1.1/24, one DHCP pool
/// .100 to .199, one SSID with WPA2, masquerade on the WAN, firewall "Low", DNS relay on.
pub fn vrgw(instance_id: &str) -> Tree {
    home_network(Schema::vrgw(), &format!("vrgw-{instance_id}"))
}

/// A physical TR-181 residential gateway as it leaves the factory ([`Schema::gateway`]): the
/// vRGW's configuration (SSID `gw-{serial}`), its identity (the vendor's OUI 00A0B1, product
/// class `SimCPE`, `serial`, `software`). The ManagementServer's URL and connection-request
/// settings are the caller's to set. Errors: a serial number or version the data model refuses
/// (longer than 64 characters), with the fault naming the parameter.
pub fn tr181_gateway(serial: &str, software: &str) -> Result<Tree, Fault> {
    let mut t = home_network(Schema::gateway(), &format!("gw-{serial}"));
    let info = [
        ("Manufacturer", "vRGW Project"),
        ("ManufacturerOUI", "00A0B1"),
        ("ProductClass", "SimCPE"),
        ("ModelName", "TR-181 gateway"),
        ("SerialNumber", serial),
        ("SoftwareVersion", software),
        ("HardwareVersion", "1.0"),
    ];
    for (name, v) in info {
        t.set_internal(&format!("Device.DeviceInfo.{name}"), s(v))?;
    }
    Ok(t)
}

/// The home network's defaults on a tree of `schema` (the vRGW's or a gateway's).
fn home_network(schema: std::sync::Arc<Schema>, ssid: &str) -> Tree {
    let mut t = Tree::new(schema);
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
        ("Device.WiFi.SSID.1.SSID", s(ssid)),
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

/// The TR-098 Inform parameters (TR-098 Annex B "forced inform"; GenieACS reads the same): what a
/// gateway's Inform carries besides its events, in that order. The last is the WAN address of the
/// default connection service.
pub const TR098_INFORM: &[&str] = &[
    "InternetGatewayDevice.DeviceSummary",
    "InternetGatewayDevice.DeviceInfo.HardwareVersion",
    "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
    "InternetGatewayDevice.DeviceInfo.SpecVersion",
    "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
    "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
    "InternetGatewayDevice.ManagementServer.ParameterKey",
    "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress",
];

/// The WAN IP connection of a [`tr098_gateway`] (its default connection service).
pub const TR098_WAN_IP: &str = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.";

/// FNV-1a of `s`: three bytes per device for its MAC addresses and WAN address, stable across runs.
fn device_bytes(s: &str) -> [u8; 3] {
    let h = s.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let [a, b, c, _] = h.to_be_bytes();
    [a, b, c]
}

/// A TR-098 residential gateway as it leaves the factory, with serial number `serial` and software
/// version `software`: LAN 192.168.1.1/24 with its DHCP server (.100 to .199), one WPA2 SSID with
/// its ten pre-shared keys, one LAN host, and one routed WAN IP connection (DHCP, NAT on) holding
/// an address from the ISP. MAC addresses are under the vendor's OUI (00:A0:B1) and, like the WAN
/// address, derived from the serial number. The ManagementServer's URL and connection-request
/// settings are the caller's to set. Errors: a serial number or version the data model refuses
/// (longer than 64 characters), with the fault naming the parameter.
pub fn tr098_gateway(serial: &str, software: &str) -> Result<Tree, Fault> {
    let mut t = Tree::new(Schema::tr098());
    let [a, b, c] = device_bytes(serial);
    let mac = |n: u8| format!("00:a0:b1:{a:02x}:{b:02x}:{:02x}", c.wrapping_add(n));
    let wan_ip = format!("100.{}.{b}.{}", 64 + (a & 0x3f), c.max(2));
    let lan = "InternetGatewayDevice.LANDevice.1.";
    let wlan = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.";
    let rows = [
        "InternetGatewayDevice.LANDevice.",
        "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.IPInterface.",
        "InternetGatewayDevice.LANDevice.1.WLANConfiguration.",
        "InternetGatewayDevice.LANDevice.1.Hosts.Host.",
        "InternetGatewayDevice.WANDevice.",
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.",
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.",
        "InternetGatewayDevice.Layer3Forwarding.Forwarding.",
    ];
    for table in rows {
        t.add_object_internal(table)?;
    }
    // TR-098: a WLANConfiguration has exactly ten PreSharedKey rows.
    for _ in 0..10 {
        t.add_object_internal(&format!("{wlan}PreSharedKey."))?;
    }
    let s = |v: &str| Value::String(v.to_string());
    let (ip, dev, ms) = (TR098_WAN_IP, "InternetGatewayDevice.DeviceInfo.", "InternetGatewayDevice.ManagementServer.");
    let values: Vec<(String, Value)> = vec![
        (
            format!("{TR098_ROOT}DeviceSummary"),
            s("InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, WiFiLAN:1, EthernetWAN:1, Time:1)"),
        ),
        (format!("{dev}Manufacturer"), s("vRGW Project")),
        (format!("{dev}ManufacturerOUI"), s("00A0B1")),
        (format!("{dev}ModelName"), s("SimGW-098")),
        (format!("{dev}Description"), s("Simulated TR-098 residential gateway")),
        (format!("{dev}ProductClass"), s("SimCPE")),
        (format!("{dev}SerialNumber"), s(serial)),
        (format!("{dev}HardwareVersion"), s("SGW-098 rev.B")),
        (format!("{dev}SoftwareVersion"), s(software)),
        (format!("{dev}SpecVersion"), s("1.0")),
        (format!("{dev}ProvisioningCode"), s("FACTORY")),
        (format!("{dev}UpTime"), Value::UnsignedInt(42)),
        (format!("{ms}EnableCWMP"), Value::Boolean(true)),
        (format!("{ms}PeriodicInformEnable"), Value::Boolean(true)),
        (format!("{ms}PeriodicInformInterval"), Value::UnsignedInt(3600)),
        ("InternetGatewayDevice.Time.Enable".into(), Value::Boolean(true)),
        ("InternetGatewayDevice.Time.NTPServer1".into(), s("pool.ntp.org")),
        ("InternetGatewayDevice.Time.Status".into(), s("Synchronized")),
        ("InternetGatewayDevice.Time.LocalTimeZoneName".into(), s("CET-1CEST,M3.5.0,M10.5.0/3")),
        ("InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService".into(), s(ip.trim_end_matches('.'))),
        ("InternetGatewayDevice.Layer3Forwarding.Forwarding.1.Enable".into(), Value::Boolean(true)),
        ("InternetGatewayDevice.Layer3Forwarding.Forwarding.1.Status".into(), s("Enabled")),
        ("InternetGatewayDevice.Layer3Forwarding.Forwarding.1.Type".into(), s("Default")),
        ("InternetGatewayDevice.Layer3Forwarding.Forwarding.1.GatewayIPAddress".into(), s("100.64.0.1")),
        ("InternetGatewayDevice.Layer3Forwarding.Forwarding.1.Interface".into(), s(ip.trim_end_matches('.'))),
        (format!("{lan}LANHostConfigManagement.MACAddress"), s(&mac(1))),
        (format!("{lan}LANHostConfigManagement.DHCPServerConfigurable"), Value::Boolean(true)),
        (format!("{lan}LANHostConfigManagement.DHCPServerEnable"), Value::Boolean(true)),
        (format!("{lan}LANHostConfigManagement.MinAddress"), s("192.168.1.100")),
        (format!("{lan}LANHostConfigManagement.MaxAddress"), s("192.168.1.199")),
        (format!("{lan}LANHostConfigManagement.SubnetMask"), s("255.255.255.0")),
        (format!("{lan}LANHostConfigManagement.DNSServers"), s("192.168.1.1")),
        (format!("{lan}LANHostConfigManagement.DomainName"), s("home")),
        (format!("{lan}LANHostConfigManagement.IPRouters"), s("192.168.1.1")),
        (format!("{lan}LANHostConfigManagement.DHCPLeaseTime"), Value::Int(86400)),
        (format!("{lan}LANHostConfigManagement.IPInterface.1.Enable"), Value::Boolean(true)),
        (format!("{lan}LANHostConfigManagement.IPInterface.1.IPInterfaceIPAddress"), s("192.168.1.1")),
        (format!("{lan}LANHostConfigManagement.IPInterface.1.IPInterfaceSubnetMask"), s("255.255.255.0")),
        (format!("{lan}LANHostConfigManagement.IPInterface.1.IPInterfaceAddressingType"), s("Static")),
        (format!("{wlan}Enable"), Value::Boolean(true)),
        (format!("{wlan}Status"), s("Up")),
        (format!("{wlan}Name"), s("wl0")),
        (format!("{wlan}BSSID"), s(&mac(2))),
        (format!("{wlan}Channel"), Value::UnsignedInt(6)),
        (format!("{wlan}SSID"), s(&format!("SimGW-{b:02X}{c:02X}"))),
        (format!("{wlan}BeaconType"), s("11i")),
        (format!("{wlan}Standard"), s("n")),
        (format!("{wlan}IEEE11iEncryptionModes"), s("AESEncryption")),
        (format!("{wlan}IEEE11iAuthenticationMode"), s("PSKAuthentication")),
        (format!("{wlan}KeyPassphrase"), s(&format!("factory-{a:02x}{b:02x}{c:02x}"))),
        (format!("{wlan}PossibleChannels"), s("1-13")),
        (format!("{wlan}RadioEnabled"), Value::Boolean(true)),
        (format!("{wlan}SSIDAdvertisementEnabled"), Value::Boolean(true)),
        (format!("{wlan}RegulatoryDomain"), s("DE ")),
        (format!("{wlan}PreSharedKey.1.KeyPassphrase"), s(&format!("factory-{a:02x}{b:02x}{c:02x}"))),
        (format!("{lan}Hosts.Host.1.IPAddress"), s("192.168.1.100")),
        (format!("{lan}Hosts.Host.1.AddressSource"), s("DHCP")),
        (format!("{lan}Hosts.Host.1.LeaseTimeRemaining"), Value::Int(85000)),
        (format!("{lan}Hosts.Host.1.MACAddress"), s("3c:22:fb:10:20:30")),
        (format!("{lan}Hosts.Host.1.HostName"), s("laptop")),
        (format!("{lan}Hosts.Host.1.InterfaceType"), s("802.11")),
        (format!("{lan}Hosts.Host.1.Active"), Value::Boolean(true)),
        ("InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.EnabledForInternet".into(), Value::Boolean(true)),
        ("InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.WANAccessType".into(), s("Ethernet")),
        ("InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.PhysicalLinkStatus".into(), s("Up")),
        (
            "InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.Layer1UpstreamMaxBitRate".into(),
            Value::UnsignedInt(1_000_000_000),
        ),
        (
            "InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.Layer1DownstreamMaxBitRate".into(),
            Value::UnsignedInt(1_000_000_000),
        ),
        (format!("{ip}Enable"), Value::Boolean(true)),
        (format!("{ip}ConnectionStatus"), s("Connected")),
        (format!("{ip}PossibleConnectionTypes"), s("IP_Routed,IP_Bridged")),
        (format!("{ip}ConnectionType"), s("IP_Routed")),
        (format!("{ip}Name"), s("Internet")),
        (format!("{ip}Uptime"), Value::UnsignedInt(40)),
        (format!("{ip}LastConnectionError"), s("ERROR_NONE")),
        (format!("{ip}NATEnabled"), Value::Boolean(true)),
        (format!("{ip}AddressingType"), s("DHCP")),
        (format!("{ip}ExternalIPAddress"), s(&wan_ip)),
        (format!("{ip}SubnetMask"), s("255.192.0.0")),
        (format!("{ip}DefaultGateway"), s("100.64.0.1")),
        (format!("{ip}DNSEnabled"), Value::Boolean(true)),
        (format!("{ip}DNSServers"), s("100.64.0.53,100.64.0.54")),
        (format!("{ip}MaxMTUSize"), Value::UnsignedInt(1500)),
        (format!("{ip}MACAddress"), s(&mac(0))),
        (format!("{ip}ConnectionTrigger"), s("AlwaysOn")),
    ];
    for (path, value) in values {
        t.set_internal(&path, value)?;
    }
    Ok(t)
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

    #[test]
    fn the_tr098_gateway_reports_its_inform_parameters() {
        let t = super::tr098_gateway("GW-7", "4.2.1").expect("every factory value fits the schema");
        for name in super::TR098_INFORM {
            assert!(t.value(name).is_some(), "{name}");
        }
        assert_eq!(t.value("InternetGatewayDevice.DeviceInfo.SerialNumber"), Some(super::s("GW-7")));
        assert_eq!(t.value("InternetGatewayDevice.WANDeviceNumberOfEntries"), Some(cwmp::Value::UnsignedInt(1)));
        assert_eq!(
            t.instances("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey."),
            (1..=10).collect::<Vec<u32>>()
        );
        let mac = t.value(&format!("{}MACAddress", super::TR098_WAN_IP));
        assert!(matches!(&mac, Some(cwmp::Value::String(m)) if m.starts_with("00:a0:b1:")), "{mac:?}");
        // Another serial number, other addresses.
        let other = super::tr098_gateway("GW-8", "4.2.1").expect("factory");
        assert_ne!(other.value(&format!("{}MACAddress", super::TR098_WAN_IP)), mac);
        let err = super::tr098_gateway(&"x".repeat(65), "4.2.1").expect_err("too long a serial number");
        assert!(err.string.contains("SerialNumber"), "{err:?}");
    }

    #[test]
    fn the_tr181_gateway_has_the_vrgw_s_parameters_and_an_identity_of_its_own() {
        let t = super::tr181_gateway("GW-9", "2.0").expect("every factory value fits the schema");
        let vrgw = super::vrgw("9");
        // The parameters an OSS sets on either, with the same factory values.
        for name in [
            "Device.DHCPv4.Server.Pool.1.MinAddress",
            "Device.DHCPv4.Server.Pool.1.MaxAddress",
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
            "Device.Firewall.Config",
        ] {
            assert_eq!(t.value(name), vrgw.value(name), "{name}");
            assert!(t.value(name).is_some(), "{name}");
        }
        assert_eq!(t.value("Device.WiFi.SSID.1.SSID"), Some(super::s("gw-GW-9")));
        assert_eq!(t.value("Device.DeviceInfo.SerialNumber"), Some(super::s("GW-9")));
        assert!(t.value("Device.ManagementServer.ConnectionRequestURL").is_some());
        assert_eq!(t.value("Device.DeviceInfo.ProxierInfo.SerialNumber"), None, "nothing proxies it");
        let err = super::tr181_gateway(&"x".repeat(65), "2.0").expect_err("too long a serial number");
        assert!(err.string.contains("SerialNumber") || err.string.contains("64"), "{err:?}");
    }
}
