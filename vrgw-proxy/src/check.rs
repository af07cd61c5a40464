//! The proxy's check step: what a configuration must satisfy before it is rendered. Every
//! parameter the renderers write must parse as its type ([`crate::values`]), no writable
//! string parameter may hold a control character, and the vRGW rules shared with the ACS
//! ([`datamodel::rules::check`]: pool order and subnet, mask shape, ...) must hold. Each
//! problem names its parameter and says why; a refused configuration changes nothing.

use cwmp::{FaultCode, ParameterFault, Value};
use datamodel::path::Path;
use datamodel::schema::Access;
use datamodel::Tree;

use crate::model::{text, POOL};
use crate::values::{self, HostName, LeaseTime, PortRange, Ssid, WpaKey};

/// Port mappings.
pub const PORT_MAPPING: &str = "Device.NAT.PortMapping.";

/// Every problem of `t`; empty when it may be rendered and applied.
pub fn check(t: &Tree) -> Vec<ParameterFault> {
    let mut out = typed(t);
    for f in datamodel::rules::check(t) {
        // One reason per parameter: the type's, which quotes a value shortened, when it has one.
        if !out.iter().any(|o| o.parameter_name == f.parameter_name) {
            out.push(f);
        }
    }
    out
}

/// The types of the parameters the renderers write, and no control character anywhere.
fn typed(t: &Tree) -> Vec<ParameterFault> {
    let mut out = Vec::new();
    let mut bad = |path: String, why: String| {
        out.push(ParameterFault { parameter_name: path, code: FaultCode::InvalidParameterValue, string: why })
    };
    for (path, v) in t.stored_values() {
        let Value::String(s) = v else { continue };
        let writable = Path::parse(path)
            .ok()
            .and_then(|p| t.schema().param(&p.template).map(|d| d.access != Access::ReadOnly))
            .unwrap_or(false);
        if writable {
            if let Err(why) = values::no_control(s) {
                let name = path.rsplit('.').next().unwrap_or(path);
                bad(path.to_string(), format!("{name} {why}: no configuration takes one"));
            }
        }
    }
    // A value is checked whenever it is set, rendered now or not (its row may be enabled later).
    let typed_text = |path: &str, parse: fn(&str) -> Result<(), String>| -> Option<(String, String)> {
        let v = text(t, path);
        if v.is_empty() || values::control_char(&v).is_some() {
            return None;
        }
        parse(&v).err().map(|why| (path.to_string(), why))
    };
    let mut found: Vec<(String, String)> = Vec::new();
    for n in t.instances(POOL) {
        let p = format!("{POOL}{n}.");
        found.extend(typed_text(&format!("{p}DomainName"), |v| {
            HostName::parse(v)
                .map(|_| ())
                .map_err(|e| format!("DomainName {} is not a host name: {e}", values::shown(v)))
        }));
        for list in ["IPRouters", "DNSServers"] {
            found.extend(typed_text(&format!("{p}{list}"), |v| values::ipv4_list(v).map(|_| ())));
        }
        if let Some(v) = t.value(&format!("{p}LeaseTime")) {
            if let Err(why) = LeaseTime::from_value(&v) {
                found.push((format!("{p}LeaseTime"), why));
            }
        }
    }
    for n in t.instances(PORT_MAPPING) {
        let p = format!("{PORT_MAPPING}{n}.");
        found.extend(typed_text(&format!("{p}RemoteHost"), |v| {
            values::ipv4(v).map(|_| ()).map_err(|e| {
                format!("RemoteHost must be empty (any host) or one IPv4 address, as the rule matches it: {e}")
            })
        }));
        found.extend(typed_text(&format!("{p}InternalClient"), |v| {
            values::ipv4(v).map(|_| ()).map_err(|e| format!("InternalClient must be an address on the LAN: {e}"))
        }));
        let ext = values::port(t.value(&format!("{p}ExternalPort")).as_ref());
        let end = values::port(t.value(&format!("{p}ExternalPortEndRange")).as_ref());
        if let (Ok(Some(first)), Ok(end)) = (ext, end) {
            if let Err(why) = PortRange::new(first, end) {
                found.push((format!("{p}ExternalPortEndRange"), why));
            }
        }
    }
    for n in t.instances("Device.WiFi.SSID.") {
        found.extend(typed_text(&format!("Device.WiFi.SSID.{n}.SSID"), |v| Ssid::parse(v).map(|_| ())));
    }
    for n in t.instances("Device.WiFi.AccessPoint.") {
        found.extend(typed_text(&format!("Device.WiFi.AccessPoint.{n}.Security.KeyPassphrase"), |v| {
            WpaKey::parse(v).map(|_| ())
        }));
    }
    for (path, why) in found {
        bad(path, why);
    }
    out
}

#[cfg(test)]
mod tests {
    use cwmp::{ParameterValue, Value};

    use super::{check, PORT_MAPPING};
    use crate::model::POOL;

    fn with(values: &[(&str, Value)]) -> Vec<(String, String)> {
        let mut t = crate::model::factory_defaults("t");
        let _ = t.add_object(PORT_MAPPING);
        let list: Vec<ParameterValue> = values.iter().map(|(k, v)| ParameterValue::new(*k, v.clone())).collect();
        let ok = t.validate(&list).expect("the schema takes these");
        t.apply(ok);
        check(&t).into_iter().map(|f| (f.parameter_name, f.string)).collect()
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn the_factory_configuration_passes() {
        assert_eq!(with(&[]), vec![]);
    }

    #[test]
    fn each_refusal_names_the_parameter_and_why() {
        let domain = format!("{POOL}1.DomainName");
        let r = with(&[(&domain, s("home.lan\nserver=6.6.6.6"))]);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].0, domain);
        assert!(r[0].1.contains("control character U+000A at position 9"), "{r:?}");
        let r = with(&[(&domain, s("home lan"))]);
        assert!(r[0].1.starts_with("DomainName \"home lan\" is not a host name"), "{r:?}");
        let remote = format!("{PORT_MAPPING}1.RemoteHost");
        let r = with(&[(&remote, s("1.2.3.4 accept"))]);
        assert_eq!(r[0].0, remote);
        assert!(r[0].1.contains("one IPv4 address"), "{r:?}");
        assert_eq!(with(&[(&remote, s("198.51.100.7"))]), vec![]);
        let end = format!("{PORT_MAPPING}1.ExternalPortEndRange");
        let r =
            with(&[(&format!("{PORT_MAPPING}1.ExternalPort"), Value::UnsignedInt(90)), (&end, Value::UnsignedInt(80))]);
        assert_eq!(r, vec![(end, "ExternalPortEndRange 80 is below ExternalPort 90".into())]);
        let lease = format!("{POOL}1.LeaseTime");
        assert_eq!(with(&[(&lease, Value::Int(60))])[0].0, lease);
        let ssid = "Device.WiFi.SSID.1.SSID";
        let r = with(&[(ssid, s("my\"wifi\u{1b}"))]);
        assert_eq!(r[0].0, ssid);
        assert_eq!(with(&[(ssid, s("my \"wifi\" #1 {x}"))]), vec![], "printable SSIDs stay allowed");
        let desc = format!("{PORT_MAPPING}1.Description");
        assert!(with(&[(&desc, s("web\0"))])[0].1.contains("U+0000"));
        let key = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase";
        let r = with(&[(key, s("pass\u{7f}word"))]);
        assert_eq!(r.len(), 1, "{r:?}");
    }
}

/// The faults of a refused request name the request's own parameters, as CWMP's
/// SetParameterValuesFault does: a rule that blames another parameter of the same object (the
/// pool's MinAddress, when the request set only its MaxAddress below it) is reported against
/// the requested parameters of that object, with the rule's reason, unless a reason of their own
/// names them already. A problem on an object the request did not touch keeps its own name.
pub fn for_request(problems: Vec<ParameterFault>, requested: &[&str]) -> Vec<ParameterFault> {
    let object = |name: &str| name.rsplit_once('.').map_or(String::new(), |(o, _)| o.to_string());
    let mut out: Vec<ParameterFault> = Vec::new();
    let mut push = |f: ParameterFault| {
        if !out.iter().any(|o| o.parameter_name == f.parameter_name) {
            out.push(f);
        }
    };
    // The reasons that name a requested parameter themselves come first (one reason each).
    let (direct, others): (Vec<ParameterFault>, Vec<ParameterFault>) =
        problems.into_iter().partition(|f| requested.iter().any(|n| *n == f.parameter_name));
    for f in direct {
        push(f);
    }
    for f in others {
        let obj = object(&f.parameter_name);
        let same: Vec<&str> = requested.iter().copied().filter(|n| object(n) == obj).collect();
        if same.is_empty() {
            push(f);
        } else {
            for n in same {
                push(ParameterFault { parameter_name: n.to_string(), ..f.clone() });
            }
        }
    }
    out
}

#[cfg(test)]
mod request_tests {
    use super::*;

    fn fault(name: &str) -> ParameterFault {
        ParameterFault {
            parameter_name: name.into(),
            code: FaultCode::InvalidParameterValue,
            string: "MinAddress is above MaxAddress".into(),
        }
    }

    #[test]
    fn a_rule_blaming_another_parameter_of_the_object_names_the_requested_one() {
        let pool = "Device.DHCPv4.Server.Pool.1.";
        let max = format!("{pool}MaxAddress");
        let asked = [max.as_str()];
        let got = for_request(vec![fault(&format!("{pool}MinAddress"))], &asked);
        assert_eq!(
            got.iter().map(|f| f.parameter_name.as_str()).collect::<Vec<_>>(),
            vec![format!("{pool}MaxAddress")]
        );
        assert_eq!(got[0].string, "MinAddress is above MaxAddress", "the rule's reason kept");
        // A problem on an object the request did not touch keeps its name; duplicates go.
        let lan = "Device.IP.Interface.1.IPv4Address.1.IPAddress";
        let own = ParameterFault { string: "outside the LAN subnet".into(), ..fault(&format!("{pool}MaxAddress")) };
        let got = for_request(vec![fault(lan), fault(&format!("{pool}MinAddress")), fault(lan), own], &asked);
        assert_eq!(
            got.iter().map(|f| (f.parameter_name.as_str(), f.string.as_str())).collect::<Vec<_>>(),
            vec![
                (format!("{pool}MaxAddress").as_str(), "outside the LAN subnet"),
                (lan, "MinAddress is above MaxAddress")
            ],
            "its own reason first; the other object's problem kept once"
        );
    }
}
