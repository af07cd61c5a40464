//! Namespace URIs and CWMP protocol versions, with version negotiation (TR-069 Amd 5, 3.5 and A.2).

use serde::Serialize;

/// SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.1 encoding namespace.
pub const SOAP_ENC: &str = "http://schemas.xmlsoap.org/soap/encoding/";
/// XML Schema namespace.
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema";
/// XML Schema instance namespace.
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The three CWMP namespaces; CWMP 1.2, 1.3 and 1.4 all use `cwmp-1-2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CwmpNs {
    /// `urn:dslforum-org:cwmp-1-0`
    #[serde(rename = "urn:dslforum-org:cwmp-1-0")]
    V1_0,
    /// `urn:dslforum-org:cwmp-1-1`
    #[serde(rename = "urn:dslforum-org:cwmp-1-1")]
    V1_1,
    /// `urn:dslforum-org:cwmp-1-2`
    #[serde(rename = "urn:dslforum-org:cwmp-1-2")]
    V1_2,
}

impl CwmpNs {
    /// The namespace URI.
    pub fn uri(self) -> &'static str {
        match self {
            CwmpNs::V1_0 => "urn:dslforum-org:cwmp-1-0",
            CwmpNs::V1_1 => "urn:dslforum-org:cwmp-1-1",
            CwmpNs::V1_2 => "urn:dslforum-org:cwmp-1-2",
        }
    }
    /// Recognises a CWMP namespace URI.
    pub fn from_uri(uri: &[u8]) -> Option<CwmpNs> {
        match uri {
            b"urn:dslforum-org:cwmp-1-0" => Some(CwmpNs::V1_0),
            b"urn:dslforum-org:cwmp-1-1" => Some(CwmpNs::V1_1),
            b"urn:dslforum-org:cwmp-1-2" => Some(CwmpNs::V1_2),
            _ => None,
        }
    }
}

/// A CWMP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CwmpVersion {
    /// 1.0 (TR-069 Amd 1)
    V1_0,
    /// 1.1 (TR-069 Amd 2)
    V1_1,
    /// 1.2 (TR-069 Amd 3)
    V1_2,
    /// 1.3 (TR-069 Amd 4)
    V1_3,
    /// 1.4 (TR-069 Amd 5)
    V1_4,
}

impl CwmpVersion {
    /// Every version this crate speaks, oldest first.
    pub const ALL: [CwmpVersion; 5] =
        [CwmpVersion::V1_0, CwmpVersion::V1_1, CwmpVersion::V1_2, CwmpVersion::V1_3, CwmpVersion::V1_4];
    /// The namespace messages of this version are written in.
    pub fn namespace(self) -> CwmpNs {
        match self {
            CwmpVersion::V1_0 => CwmpNs::V1_0,
            CwmpVersion::V1_1 => CwmpNs::V1_1,
            _ => CwmpNs::V1_2,
        }
    }
    /// The newest version that writes in `ns` (what a peer that sends no version header means).
    pub fn from_namespace(ns: CwmpNs) -> CwmpVersion {
        match ns {
            CwmpNs::V1_0 => CwmpVersion::V1_0,
            CwmpNs::V1_1 => CwmpVersion::V1_1,
            CwmpNs::V1_2 => CwmpVersion::V1_2,
        }
    }
    /// "1.0" ... "1.4"
    pub fn as_str(self) -> &'static str {
        match self {
            CwmpVersion::V1_0 => "1.0",
            CwmpVersion::V1_1 => "1.1",
            CwmpVersion::V1_2 => "1.2",
            CwmpVersion::V1_3 => "1.3",
            CwmpVersion::V1_4 => "1.4",
        }
    }
    /// Parses "1.2" (and tolerates "1.2.0").
    pub fn parse(s: &str) -> Option<CwmpVersion> {
        let s = s.trim();
        let s = s.strip_suffix(".0").filter(|r| r.contains('.')).unwrap_or(s);
        CwmpVersion::ALL.into_iter().find(|v| v.as_str() == s)
    }
    /// Parses a `SupportedCWMPVersions` list ("1.0,1.1,1.2,1.3,1.4"), skipping unknown entries.
    pub fn parse_list(s: &str) -> Vec<CwmpVersion> {
        s.split(',').filter_map(CwmpVersion::parse).collect()
    }
    /// Formats a version list for `SupportedCWMPVersions`.
    pub fn format_list(versions: &[CwmpVersion]) -> String {
        versions.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(",")
    }
}

/// Picks the version for a session: the highest that both sides support.
///
/// `cpe_supported` comes from the Inform's `SupportedCWMPVersions` header; when the CPE sent
/// none, pass `None` and the Inform's namespace decides (the newest version of that namespace).
/// Returns `None` when the two sides have no version in common (the ACS then answers fault 8006).
pub fn negotiate(
    inform_ns: CwmpNs,
    cpe_supported: Option<&[CwmpVersion]>,
    acs_supported: &[CwmpVersion],
) -> Option<CwmpVersion> {
    match cpe_supported {
        Some(list) => list.iter().copied().filter(|v| acs_supported.contains(v)).max(),
        None => {
            let v = CwmpVersion::from_namespace(inform_ns);
            if acs_supported.contains(&v) {
                Some(v)
            } else {
                // The CPE may still speak an older namespace's versions; pick our best below it.
                acs_supported.iter().copied().filter(|a| *a <= v).max()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_highest_common() {
        let all = CwmpVersion::ALL;
        let cpe = CwmpVersion::parse_list("1.0,1.1,1.2,1.3");
        assert_eq!(negotiate(CwmpNs::V1_2, Some(&cpe), &all), Some(CwmpVersion::V1_3));
        assert_eq!(negotiate(CwmpNs::V1_0, None, &all), Some(CwmpVersion::V1_0));
        assert_eq!(negotiate(CwmpNs::V1_2, None, &[CwmpVersion::V1_0, CwmpVersion::V1_1]), Some(CwmpVersion::V1_1));
        assert_eq!(negotiate(CwmpNs::V1_2, Some(&[CwmpVersion::V1_4]), &[CwmpVersion::V1_0]), None);
        assert_eq!(CwmpVersion::parse("1.4.0"), Some(CwmpVersion::V1_4));
        assert_eq!(CwmpVersion::parse("2.0"), None);
        assert_eq!(CwmpVersion::V1_3.namespace(), CwmpNs::V1_2);
    }
}
