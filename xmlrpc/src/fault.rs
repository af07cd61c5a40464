//! XML-RPC faults, with the codes of the "specification for fault code interoperability".

use std::fmt;

/// A fault response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// faultCode
    pub code: i32,
    /// faultString
    pub string: String,
}

impl Fault {
    /// Not well-formed XML.
    pub const PARSE_ERROR: i32 = -32700;
    /// A charset we cannot read.
    pub const UNSUPPORTED_ENCODING: i32 = -32701;
    /// Well-formed, but not XML-RPC (or over a limit).
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Wrong parameters for the method.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The server failed.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Authentication required or refused.
    pub const UNAUTHORIZED: i32 = -32401;

    /// A fault.
    pub fn new(code: i32, string: impl Into<String>) -> Fault {
        Fault { code, string: string.into() }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault {}: {}", self.code, self.string)
    }
}

impl std::error::Error for Fault {}
