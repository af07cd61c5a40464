//! Checks for the named Broadband Forum data types whose rules are patterns in the XML
//! (IPv4Address, MACAddress, Alias, ...); the size, range and enumeration facets are in the schema.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Checks `value` against the named data type `dt`. Types without extra rules pass.
pub fn check(dt: &str, value: &str) -> Result<(), String> {
    let ok = match dt {
        "IPv4Address" => value.is_empty() || value.parse::<Ipv4Addr>().is_ok(),
        "IPv6Address" => value.is_empty() || value.parse::<Ipv6Addr>().is_ok(),
        "IPAddress" => value.is_empty() || value.parse::<std::net::IpAddr>().is_ok(),
        "IPv4Prefix" => value.is_empty() || prefix::<Ipv4Addr>(value, 32),
        "IPv6Prefix" => value.is_empty() || prefix::<Ipv6Addr>(value, 128),
        "IPPrefix" => value.is_empty() || prefix::<Ipv4Addr>(value, 32) || prefix::<Ipv6Addr>(value, 128),
        "MACAddress" => value.is_empty() || is_mac(value),
        "Alias" | "_AliasCWMP" => value.chars().next().is_some_and(|c| c.is_ascii_alphabetic()),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{value:?} is not a valid {dt}"))
    }
}

fn prefix<T: std::str::FromStr>(v: &str, max: u8) -> bool {
    v.split_once('/').is_some_and(|(a, n)| a.parse::<T>().is_ok() && n.parse::<u8>().is_ok_and(|n| n <= max))
}

fn is_mac(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn named_types() {
        assert!(check("IPv4Address", "192.168.1.1").is_ok());
        assert!(check("IPv4Address", "").is_ok());
        assert!(check("IPv4Address", "192.168.1.256").is_err());
        assert!(check("IPv4Address", "::1").is_err());
        assert!(check("IPAddress", "::1").is_ok());
        assert!(check("MACAddress", "02:00:5e:10:00:01").is_ok());
        assert!(check("MACAddress", "02-00-5e-10-00-01").is_err());
        assert!(check("IPv4Prefix", "10.0.0.0/8").is_ok());
        assert!(check("IPv4Prefix", "10.0.0.0/33").is_err());
        assert!(check("Alias", "cpe-1").is_ok());
        assert!(check("Alias", "1abc").is_err());
        assert!(check("Alias", "").is_err());
        assert!(check("Dbm1000", "anything").is_ok());
    }
}
