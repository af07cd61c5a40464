//! Decode errors: what went wrong, where, and which CWMP fault the peer should receive.

use crate::fault::FaultCode;

/// Which side of the session received the bad message (and so which fault range answers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The CPE received it: answer with a 9xxx fault.
    Cpe,
    /// The ACS received it: answer with an 8xxx fault.
    Acs,
}

/// What was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The body is larger than the configured limit.
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// Elements nest deeper than the configured limit.
    #[error("elements nest deeper than {0} levels")]
    TooDeep(usize),
    /// An element has more child elements (an array more members) than [`Limits::max_items`].
    ///
    /// [`Limits::max_items`]: crate::Limits::max_items
    #[error("element {element:?} has more than {limit} child elements")]
    TooManyItems {
        /// The element.
        element: String,
        /// The limit.
        limit: usize,
    },
    /// An array's `soap-enc:arrayType` declares more members than [`Limits::max_items`].
    ///
    /// [`Limits::max_items`]: crate::Limits::max_items
    #[error("element {element:?} declares {declared:?} members, more than {limit}")]
    ArrayTooLarge {
        /// The element.
        element: String,
        /// The declared size as sent (shortened).
        declared: String,
        /// The limit.
        limit: usize,
    },
    /// A parameter or object name is longer than [`Limits::max_name_bytes`].
    ///
    /// [`Limits::max_name_bytes`]: crate::Limits::max_name_bytes
    #[error("name in {element:?} is {len} bytes long, more than {limit} ({name:?})")]
    NameTooLong {
        /// The element holding the name.
        element: String,
        /// The name (shortened).
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A parameter or object name has more dot-separated segments than
    /// [`Limits::max_name_segments`].
    ///
    /// [`Limits::max_name_segments`]: crate::Limits::max_name_segments
    #[error("name in {element:?} has {segments} segments, more than {limit} ({name:?})")]
    NameTooDeep {
        /// The element holding the name.
        element: String,
        /// The name (shortened).
        name: String,
        /// Its segment count.
        segments: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not valid in the declared or detected charset.
    #[error("text is not valid in its character encoding")]
    InvalidUtf8,
    /// The XML prolog names a charset we do not know.
    #[error("unsupported character encoding {0:?}")]
    UnsupportedEncoding(String),
    /// Malformed XML.
    #[error("malformed XML: {0}")]
    Syntax(String),
    /// A document type declaration (DTDs and entity declarations are refused).
    #[error("document type declarations are not allowed")]
    Dtd,
    /// A reference to an entity that XML does not predefine.
    #[error("undefined entity &{0};")]
    UndefinedEntity(String),
    /// The root is not a SOAP envelope, or it has no Body.
    #[error("not a SOAP envelope with a Body")]
    NotAnEnvelope,
    /// The Body holds no element.
    #[error("the SOAP Body is empty")]
    EmptyBody,
    /// The Body's element names no CWMP method we know.
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// A header element we do not know carries mustUnderstand="1".
    #[error("header element {0:?} must be understood but is unknown")]
    MustUnderstand(String),
    /// A required element is missing.
    #[error("element {child:?} missing in {parent:?}")]
    MissingElement {
        /// The element that should contain it.
        parent: String,
        /// The missing element's name.
        child: &'static str,
    },
    /// An element's text is not of the required type.
    #[error("element {element:?} has value {value:?}, expected {expected}")]
    InvalidValue {
        /// The element.
        element: String,
        /// Its text (shortened).
        value: String,
        /// What it should have been.
        expected: &'static str,
    },
}

/// Line and column (from 1, columns in characters) of a byte offset into `input`.
pub(crate) fn line_column(input: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(input.len());
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    let before = &input[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// A decode error with its position in the input (byte offset, and line and column from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (line {line}, column {column})")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// Byte offset into the (UTF-8) input.
    pub offset: usize,
    /// Line, from 1 (0 for errors found before the text was decoded).
    pub line: usize,
    /// Column in characters, from 1 (0 like `line`).
    pub column: usize,
}

impl DecodeError {
    pub(crate) fn at(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError { kind, offset, line: 0, column: 0 }
    }

    /// Fills in line and column from the input the offset points into.
    pub(crate) fn locate(mut self, input: &str) -> Self {
        (self.line, self.column) = line_column(input, self.offset);
        self
    }

    /// The fault the peer should receive for this message, given who received it.
    pub fn fault_code(&self, receiver: Role) -> FaultCode {
        use DecodeErrorKind as K;
        use FaultCode as F;
        enum Class {
            Resources,
            Method,
            Type,
            Arguments,
        }
        let class = match &self.kind {
            K::TooLarge { .. } | K::TooDeep(_) | K::TooManyItems { .. } | K::ArrayTooLarge { .. } => Class::Resources,
            K::UnknownMethod(_) => Class::Method,
            K::InvalidValue { .. } => Class::Type,
            K::InvalidUtf8
            | K::UnsupportedEncoding(_)
            | K::Syntax(_)
            | K::Dtd
            | K::UndefinedEntity(_)
            | K::NotAnEnvelope
            | K::EmptyBody
            | K::MustUnderstand(_)
            | K::MissingElement { .. }
            | K::NameTooLong { .. }
            | K::NameTooDeep { .. } => Class::Arguments,
        };
        match (class, receiver) {
            (Class::Resources, Role::Cpe) => F::ResourcesExceeded,
            (Class::Resources, Role::Acs) => F::AcsResourcesExceeded,
            (Class::Method, Role::Cpe) => F::MethodNotSupported,
            (Class::Method, Role::Acs) => F::AcsMethodNotSupported,
            (Class::Type, Role::Cpe) => F::InvalidParameterType,
            (Class::Type | Class::Arguments, Role::Acs) => F::AcsInvalidArguments,
            (Class::Arguments, Role::Cpe) => F::InvalidArguments,
        }
    }
}
