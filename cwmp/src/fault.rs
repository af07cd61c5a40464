//! CWMP fault codes (TR-069 A.5.1 and A.5.2) and the SOAP Fault with its `cwmp:Fault` detail.

use serde::Serialize;

use crate::error::DecodeError;
use crate::xml::{El, Writer};

macro_rules! fault_codes {
    ($($name:ident = $code:literal, $text:literal;)*) => {
        /// A CWMP fault code: the ACS's 8000-8006, the CPE's 9000-9032, vendor ranges.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum FaultCode {
            $(#[doc = $text] $name,)*
            /// 8800-8899 (ACS) or 9800-9899 (CPE): vendor specific.
            Vendor(u32),
            /// A code outside every defined range, kept as received.
            Unknown(u32),
        }

        impl FaultCode {
            /// The numeric code.
            pub fn code(self) -> u32 {
                match self {
                    $(FaultCode::$name => $code,)*
                    FaultCode::Vendor(c) | FaultCode::Unknown(c) => c,
                }
            }
            /// The code for a number.
            pub fn from_code(code: u32) -> FaultCode {
                match code {
                    $($code => FaultCode::$name,)*
                    8800..=8899 | 9800..=9899 => FaultCode::Vendor(code),
                    c => FaultCode::Unknown(c),
                }
            }
            /// The fault string TR-069 gives the code.
            pub fn description(self) -> &'static str {
                match self {
                    $(FaultCode::$name => $text,)*
                    FaultCode::Vendor(_) => "Vendor defined fault",
                    FaultCode::Unknown(_) => "Unknown fault",
                }
            }
        }
    };
}

fault_codes! {
    AcsMethodNotSupported = 8000, "Method not supported";
    AcsRequestDenied = 8001, "Request denied (no reason specified)";
    AcsInternalError = 8002, "Internal error";
    AcsInvalidArguments = 8003, "Invalid arguments";
    AcsResourcesExceeded = 8004, "Resources exceeded";
    AcsRetryRequest = 8005, "Retry request";
    AcsVersionIncompatible = 8006, "ACS version incompatible with CPE";
    MethodNotSupported = 9000, "Method not supported";
    RequestDenied = 9001, "Request denied (no reason specified)";
    InternalError = 9002, "Internal error";
    InvalidArguments = 9003, "Invalid arguments";
    ResourcesExceeded = 9004, "Resources exceeded";
    InvalidParameterName = 9005, "Invalid parameter name";
    InvalidParameterType = 9006, "Invalid parameter type";
    InvalidParameterValue = 9007, "Invalid parameter value";
    NonWritableParameter = 9008, "Attempt to set a non-writable parameter";
    NotificationRequestRejected = 9009, "Notification request rejected";
    FileTransferFailure = 9010, "File transfer failure";
    UploadFailure = 9011, "Upload failure";
    FileTransferAuthFailure = 9012, "File transfer server authentication failure";
    UnsupportedTransferProtocol = 9013, "Unsupported protocol for file transfer";
    MulticastJoinFailure = 9014, "File transfer failure: unable to join multicast group";
    FileServerUnreachable = 9015, "File transfer failure: unable to contact file server";
    FileAccessFailure = 9016, "File transfer failure: unable to access file";
    DownloadIncomplete = 9017, "File transfer failure: unable to complete download";
    FileCorrupted = 9018, "File transfer failure: file corrupted";
    FileAuthenticationFailure = 9019, "File transfer failure: file authentication failure";
    DownloadWindowMissed = 9020, "File transfer failure: unable to complete download within specified time windows";
    CancelNotPermitted = 9021, "Cancelation of file transfer not permitted in current transfer state";
    InvalidUuid = 9022, "Invalid UUID format";
    UnknownExecutionEnvironment = 9023, "Unknown Execution Environment";
    DisabledExecutionEnvironment = 9024, "Disabled Execution Environment";
    DeploymentUnitMismatch = 9025, "Deployment Unit to Execution Environment Mismatch";
    DuplicateDeploymentUnit = 9026, "Duplicate Deployment Unit";
    SystemResourcesExceeded = 9027, "System Resources Exceeded";
    UnknownDeploymentUnit = 9028, "Unknown Deployment Unit";
    InvalidDeploymentUnitState = 9029, "Invalid Deployment Unit State";
    DowngradeNotPermitted = 9030, "Invalid Deployment Unit Update: Downgrade not permitted";
    VersionNotSpecified = 9031, "Invalid Deployment Unit Update: Version not specified";
    VersionAlreadyExists = 9032, "Invalid Deployment Unit Update: Version already exists";
}

impl FaultCode {
    /// Whether the SOAP faultcode is `Client` (the request was at fault) rather than `Server`.
    pub fn is_client_fault(self) -> bool {
        matches!(
            self,
            FaultCode::AcsInvalidArguments
                | FaultCode::AcsVersionIncompatible
                | FaultCode::InvalidArguments
                | FaultCode::InvalidParameterName
                | FaultCode::InvalidParameterType
                | FaultCode::InvalidParameterValue
                | FaultCode::NonWritableParameter
                | FaultCode::InvalidUuid
        )
    }
}

/// One entry of the `SetParameterValuesFault` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterFault {
    /// The parameter.
    pub parameter_name: String,
    /// Why it was refused (9005 to 9008 typically).
    pub code: FaultCode,
    /// Human-readable reason.
    pub string: String,
}

/// A SOAP Fault carrying a CWMP fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// The CWMP fault code.
    pub code: FaultCode,
    /// The CWMP fault string.
    pub string: String,
    /// Per-parameter faults (SetParameterValues only).
    pub set_parameter_values_faults: Vec<ParameterFault>,
}

impl Fault {
    /// A fault with the code's standard description.
    pub fn new(code: FaultCode) -> Fault {
        Fault { code, string: code.description().to_string(), set_parameter_values_faults: Vec::new() }
    }
    /// A fault with a specific explanation.
    pub fn with_string(code: FaultCode, string: impl Into<String>) -> Fault {
        Fault { code, string: string.into(), set_parameter_values_faults: Vec::new() }
    }

    pub(crate) fn decode(el: El<'_, '_>) -> Result<Fault, DecodeError> {
        let detail = el.req("detail")?;
        let f = detail.req("Fault")?;
        let code = FaultCode::from_code(f.u32("FaultCode")?);
        let string = f.opt_string("FaultString").unwrap_or_default();
        let mut spvf = Vec::new();
        for c in f.children().filter(|c| c.name() == "SetParameterValuesFault") {
            spvf.push(ParameterFault {
                parameter_name: c.path("ParameterName")?,
                code: FaultCode::from_code(c.u32("FaultCode")?),
                string: c.opt_string("FaultString").unwrap_or_default(),
            });
        }
        Ok(Fault { code, string, set_parameter_values_faults: spvf })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.open("soap-env:Fault");
        w.text("faultcode", if self.code.is_client_fault() { "Client" } else { "Server" });
        w.text("faultstring", "CWMP fault");
        w.open("detail");
        w.open("cwmp:Fault");
        w.display("FaultCode", self.code.code());
        w.text("FaultString", &self.string);
        for p in &self.set_parameter_values_faults {
            w.open("SetParameterValuesFault");
            w.text("ParameterName", &p.parameter_name);
            w.display("FaultCode", p.code.code());
            w.text("FaultString", &p.string);
            w.close("SetParameterValuesFault");
        }
        w.close("cwmp:Fault");
        w.close("detail");
        w.close("soap-env:Fault");
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code.code(), self.string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in (8000..8007).chain(9000..9033) {
            let f = FaultCode::from_code(c);
            assert!(!matches!(f, FaultCode::Unknown(_) | FaultCode::Vendor(_)), "{c}");
            assert_eq!(f.code(), c);
        }
        assert_eq!(FaultCode::from_code(9850), FaultCode::Vendor(9850));
        assert_eq!(FaultCode::from_code(7000), FaultCode::Unknown(7000));
    }
}
