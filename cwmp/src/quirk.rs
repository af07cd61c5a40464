//! What the lenient decoder accepts from a CPE that CWMP does not allow, and how it read it.
//!
//! [`Envelope::decode_lenient`](crate::Envelope::decode_lenient) is the ACS's entry point for
//! what CPEs send: it reads the deviations real CPEs are known for into the typed message and
//! reports each as a [`Quirk`] that keeps the text as sent. [`Envelope::decode`](crate::Envelope::decode)
//! stays strict and reports nothing; the CPE side reads the ACS with it. Encoding is always
//! strict: whatever the lenient decoder reads re-encodes as a valid message.
//!
//! | what the CPE sent | strict (`decode`) | lenient (`decode_lenient`) |
//! |---|---|---|
//! | dateTime element (CurrentTime, StartTime, ...) empty or invalid (`2024-13-45T..`) | refused, 8003/9006 | unknown time `0001-01-01T00:00:00Z`, [`QuirkKind::InvalidDateTime`] |
//! | `0001-01-01T00:00:00`, a dateTime without a zone | read as sent | read as sent, no quirk (CWMP allows both) |
//! | ParameterValueStruct without Value | refused, 8003/9003 | empty `xsd:string`, [`QuirkKind::MissingValue`] |
//! | ParameterValueStruct without Name | refused, 8003/9003 | refused, 8003 (whose value it is is unknown) |
//! | bytes not valid UTF-8 (or in the declared charset) | refused, 8003/9003 | U+FFFD each, [`QuirkKind::InvalidText`] |
//! | `arrayType` declaring 3, 2 or 4 members sent | read as sent | read as sent, [`QuirkKind::ArrayCount`] |
//! | `arrayType` declaring more than `Limits::max_items` | refused, 8004/9004 | refused, 8004 |
//! | no Header / no `cwmp:ID` | read, no ID | read, no ID in the reply, [`QuirkKind::NoId`] |
//! | `SOAP-ENV`, `soapenv`, default namespace | read | read, no quirk (namespaces match by URI) |
//! | Envelope in another namespace (SOAP 1.2) or undeclared prefix | read | read, [`QuirkKind::EnvelopeNamespace`] |
//! | Envelope in no namespace | refused, 8003/9003 | refused, 8003 |
//! | method in no CWMP namespace | read as CWMP 1.0 | read as CWMP 1.0, [`QuirkKind::NoCwmpNamespace`] |
//! | CR LF line ends | read as LF (XML 1.0 2.11) | same, no quirk |
//! | white space around numbers and booleans | read (xsd collapses it) | same, no quirk; strings kept exactly |
//! | Value without `xsi:type` | `xsd:string` | `xsd:string`, [`QuirkKind::UntypedValue`] |
//! | `xsi:type` with another prefix (`xs:int`, undeclared `ns1:int`) | read by local name | same, no quirk |
//! | `xsi:type` naming no TR-069 type (`xsd:float`) | `xsd:string` | `xsd:string`, [`QuirkKind::UnknownType`] |
//! | boolean `True`, `FALSE` (any case) | refused, 8003/9006 | the boolean, [`QuirkKind::BooleanCase`] |
//! | boolean `yes`, `on` where a boolean is required (Writable, ...) | refused, 8003/9003 | refused, 8003 |
//! | Value not of its `xsi:type` (`xsd:int` "abc", `xsd:boolean` "yes") | refused, 8003/9006 | `xsd:string` as sent, [`QuirkKind::ValueNotOfType`] |
//! | other numbers not numbers (RetryCount, Status 2, ...) | refused, 8003/9006 | refused, 8003 |
//! | names over `Limits::max_name_bytes` / `max_name_segments` | refused, 8003/9003 | refused, 8003 |
//! | DTDs, undefined entities, malformed XML, unknown charset | refused, 8003/9003 | refused, 8003 |
//!
//! Fault numbers are `DecodeError::fault_code` for the ACS and the CPE as receiver. One message
//! keeps at most [`MAX_QUIRKS`] quirks and counts the rest.

use serde::Serialize;

use crate::value::XsdType;

/// Most quirks kept for one message; further ones are only counted ([`Quirks::dropped`]).
pub const MAX_QUIRKS: usize = 64;

/// Longest raw text kept in a [`Quirk`], in bytes (longer text is cut at a character boundary
/// and ends with `...`).
pub const MAX_RAW_BYTES: usize = 256;

/// One kind of deviation, with what the decoder made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "quirk", rename_all = "camelCase")]
pub enum QuirkKind {
    /// Bytes that are not valid UTF-8 (or not valid in the declared charset): each invalid
    /// sequence became U+FFFD. `raw` shows the first one with the bytes around it, escaped.
    InvalidText {
        /// Invalid sequences replaced.
        sequences: usize,
    },
    /// A dateTime element (CurrentTime, StartTime, ...) empty or not an `xsd:dateTime`: read as
    /// the unknown time `0001-01-01T00:00:00Z`.
    InvalidDateTime,
    /// A ParameterValueStruct without its Value: read as an empty `xsd:string`. `raw` is the
    /// parameter's name.
    MissingValue,
    /// A Value whose text is not of its `xsi:type`: kept as an `xsd:string` with the text as
    /// sent.
    ValueNotOfType {
        /// The type the CPE declared.
        declared: XsdType,
    },
    /// A Value without `xsi:type`: read as an `xsd:string`.
    UntypedValue,
    /// A Value whose `xsi:type` names no type of TR-069 A.2.1: read as an `xsd:string`.
    UnknownType {
        /// The local part of the type sent.
        declared: String,
    },
    /// A boolean spelled in another case (`True`, `FALSE`): read as the boolean.
    BooleanCase,
    /// A SOAP array whose `soap-enc:arrayType` declares another number of members than it
    /// holds: the members sent are read.
    ArrayCount {
        /// Members declared.
        declared: u64,
        /// Members sent.
        sent: usize,
    },
    /// No `cwmp:ID` header (or no Header at all): the reply carries none either.
    NoId,
    /// The Envelope is not in the SOAP 1.1 namespace (another URI or an undeclared prefix).
    EnvelopeNamespace,
    /// The method element is in no CWMP namespace: CWMP 1.0 (`urn:dslforum-org:cwmp-1-0`) is
    /// assumed.
    NoCwmpNamespace,
}

impl std::fmt::Display for QuirkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuirkKind::InvalidText { sequences } => {
                write!(f, "{sequences} invalid byte sequence(s) in the text, replaced by U+FFFD")
            }
            QuirkKind::InvalidDateTime => f.write_str("not an xsd:dateTime, read as 0001-01-01T00:00:00Z"),
            QuirkKind::MissingValue => f.write_str("ParameterValueStruct without Value, read as an empty string"),
            QuirkKind::ValueNotOfType { declared } => {
                write!(f, "value is not a valid {}, kept as xsd:string", declared.qname())
            }
            QuirkKind::UntypedValue => f.write_str("value without xsi:type, read as xsd:string"),
            QuirkKind::UnknownType { declared } => write!(f, "unknown xsi:type {declared:?}, read as xsd:string"),
            QuirkKind::BooleanCase => f.write_str("boolean in another case, read as the boolean"),
            QuirkKind::ArrayCount { declared, sent } => {
                write!(f, "arrayType declares {declared} members, {sent} sent (those sent are read)")
            }
            QuirkKind::NoId => f.write_str("no cwmp:ID header"),
            QuirkKind::EnvelopeNamespace => f.write_str("Envelope not in the SOAP 1.1 namespace"),
            QuirkKind::NoCwmpNamespace => f.write_str("method in no CWMP namespace, CWMP 1.0 assumed"),
        }
    }
}

/// A deviation found in a message, where it was, and the text as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quirk {
    /// What it was and how it was read.
    pub kind: QuirkKind,
    /// Local name of the element it was found in.
    pub element: String,
    /// The text as sent (at most [`MAX_RAW_BYTES`]).
    pub raw: String,
    /// Byte offset into the (UTF-8) input.
    pub offset: usize,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl std::fmt::Display for Quirk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {:?} (line {}, column {}): {:?}", self.kind, self.element, self.line, self.column, self.raw)
    }
}

/// The quirks of one message: the first [`MAX_QUIRKS`], and how many more there were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Quirks {
    /// In document order.
    pub list: Vec<Quirk>,
    /// Quirks found beyond [`MAX_QUIRKS`], not kept.
    pub dropped: usize,
}

impl Quirks {
    /// Whether the message had none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.dropped == 0
    }

    /// How many the message had, kept or not.
    pub fn total(&self) -> usize {
        self.list.len() + self.dropped
    }

    pub(crate) fn push(&mut self, kind: QuirkKind, element: &str, raw: &str, offset: usize) {
        if self.list.len() >= MAX_QUIRKS {
            self.dropped += 1;
            return;
        }
        self.list.push(Quirk { kind, element: element.to_string(), raw: cut(raw), offset, line: 0, column: 0 });
    }

    /// Fills in lines and columns from the text the offsets point into; sorts by offset.
    pub(crate) fn locate(&mut self, text: &str) {
        self.list.sort_by_key(|q| q.offset);
        for q in &mut self.list {
            (q.line, q.column) = crate::error::line_column(text, q.offset);
        }
    }
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_RAW_BYTES {
        return s.to_string();
    }
    let mut end = MAX_RAW_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
