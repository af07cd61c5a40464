//! Faults of the contract: [`ProxyFault`], what travels as an XML-RPC fault (its faultCode is a
//! CWMP fault code, or one of XML-RPC's own when a call did not fit the contract), and
//! [`WireFault`], one refused parameter in a `validate` or `try_set` result.

use cwmp::{Fault, FaultCode, ParameterFault};
use serde::{Deserialize, Serialize};

/// Why the proxy answered with a fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyFault {
    /// A CWMP fault of the vRGW's data model or daemons (9001 refused, 9002 a daemon refused or
    /// failed, 9003 malformed, 9005 to 9008 a parameter, ...), with its reason.
    #[error("{code}: {1}", code = .0.code())]
    Cwmp(FaultCode, String),
    /// A fault of the XML-RPC layer itself (`-32700` to `-32600`: not XML-RPC, no such method,
    /// parameters that do not fit the method): the caller and the proxy disagree on the contract.
    #[error("XML-RPC fault {0}: {1}")]
    Protocol(i32, String),
}

impl From<Fault> for ProxyFault {
    fn from(f: Fault) -> ProxyFault {
        ProxyFault::Cwmp(f.code, f.string)
    }
}

impl From<ProxyFault> for xmlrpc::Fault {
    fn from(f: ProxyFault) -> xmlrpc::Fault {
        match f {
            ProxyFault::Cwmp(code, string) => {
                xmlrpc::Fault::new(i32::try_from(code.code()).unwrap_or(xmlrpc::Fault::INTERNAL_ERROR), string)
            }
            ProxyFault::Protocol(code, string) => xmlrpc::Fault::new(code, string),
        }
    }
}

impl From<xmlrpc::Fault> for ProxyFault {
    /// Positive codes are CWMP codes; the others are XML-RPC's.
    fn from(f: xmlrpc::Fault) -> ProxyFault {
        match u32::try_from(f.code) {
            Ok(code) => ProxyFault::Cwmp(FaultCode::from_code(code), f.string),
            Err(_) => ProxyFault::Protocol(f.code, f.string),
        }
    }
}

impl From<ProxyFault> for Fault {
    /// The CWMP fault the host answers with: the proxy's own, or 9002 (internal error) when the
    /// host and its vRGW disagree on the contract.
    fn from(f: ProxyFault) -> Fault {
        match f {
            ProxyFault::Cwmp(code, string) => Fault::with_string(code, string),
            ProxyFault::Protocol(code, string) => Fault::with_string(
                FaultCode::InternalError,
                format!("the vRGW's proxy: XML-RPC fault {code}: {string}"),
            ),
        }
    }
}

/// One refused parameter: `{name, code, reason}`, `code` a CWMP fault code (9005 to 9008).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFault {
    /// The parameter path.
    pub name: String,
    /// The CWMP fault code.
    pub code: u32,
    /// Why.
    pub reason: String,
}

impl From<ParameterFault> for WireFault {
    fn from(p: ParameterFault) -> WireFault {
        WireFault { name: p.parameter_name, code: p.code.code(), reason: p.string }
    }
}

impl From<WireFault> for ParameterFault {
    fn from(w: WireFault) -> ParameterFault {
        ParameterFault { parameter_name: w.name, code: FaultCode::from_code(w.code), string: w.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwmp_codes_cross_as_fault_codes_and_come_back() {
        for code in [FaultCode::RequestDenied, FaultCode::InternalError, FaultCode::InvalidParameterValue] {
            let f = ProxyFault::Cwmp(code, "why".into());
            let rpc = xmlrpc::Fault::from(f.clone());
            assert_eq!(rpc.code, code.code() as i32);
            assert_eq!(ProxyFault::from(rpc), f);
            assert_eq!(Fault::from(f), Fault::with_string(code, "why"));
        }
        let p = ProxyFault::from(xmlrpc::Fault::new(xmlrpc::Fault::METHOD_NOT_FOUND, "no method try_set"));
        assert_eq!(p, ProxyFault::Protocol(-32601, "no method try_set".into()));
        let f = Fault::from(p);
        assert_eq!(f.code, FaultCode::InternalError);
        assert!(f.string.contains("no method try_set"), "{}", f.string);
    }
}
