//! Tolerant XML input layer (charset, limits, a borrowed element tree) and the envelope writer.
//!
//! Decoding happens in two steps: [`Doc::parse`] turns bytes into a flat tree of elements that
//! borrow from the input (namespace resolved, entity references expanded, DTDs refused), then the
//! message modules walk that tree through [`El`]. Encoding appends to a [`Writer`].

use std::borrow::Cow;
use std::cell::RefCell;

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::ns::{self, CwmpNs};
use crate::quirk::{QuirkKind, Quirks};
use crate::value::DateTime;

/// Longest parameter or object name accepted from a peer, in bytes (the default of
/// [`Limits::max_name_bytes`]). TR-069 gives names 256 characters; our longest generated path,
/// embedded under the host's instance table with 10-digit instance numbers, is well under 256
/// bytes (see `docs/architecture.md`, "Limits on outside input").
pub const MAX_NAME_BYTES: usize = 1024;

/// Most dot-separated segments in a name accepted from a peer (the default of
/// [`Limits::max_name_segments`]). The deepest path of the generated data models is 12 segments:
/// the vRGW's `Device.DHCPv4.Server.Pool.{i}.StaticAddress.{i}.Enable` (8) embedded at the host's
/// `Device.X_VRGW-ORG_Virtualization.Instance.{i}.Device.` (4 more). 32 leaves more than twice
/// that; `cwmp/tests/limits.rs` fails if the data models outgrow half of it.
pub const MAX_NAME_SEGMENTS: usize = 32;

/// Most child elements of one element, and largest `soap-enc:arrayType` size, accepted from a
/// peer (the default of [`Limits::max_items`]). A full GetParameterValues of the host's model
/// answers 282 parameters with one vRGW and 6,024 with 30 (the paper's largest host), about 198
/// per vRGW; 65,536 fits a host of 300 vRGWs, beyond what the default 4 MiB body can carry.
pub const MAX_ITEMS: usize = 65_536;

/// Limits applied while decoding input from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body in bytes.
    pub max_body: usize,
    /// Deepest accepted element nesting.
    pub max_depth: usize,
    /// Longest accepted parameter or object name in bytes ([`MAX_NAME_BYTES`]).
    pub max_name_bytes: usize,
    /// Most dot-separated segments in an accepted name ([`MAX_NAME_SEGMENTS`]).
    pub max_name_segments: usize,
    /// Most child elements of one element and largest declared array size ([`MAX_ITEMS`]).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 4 * 1024 * 1024,
            max_depth: 32,
            max_name_bytes: MAX_NAME_BYTES,
            max_name_segments: MAX_NAME_SEGMENTS,
            max_items: MAX_ITEMS,
        }
    }
}

impl Limits {
    /// Whether a name is within [`Limits::max_name_bytes`] and [`Limits::max_name_segments`].
    pub fn accepts_name(&self, name: &str) -> bool {
        name.len() <= self.max_name_bytes && name_segments(name) <= self.max_name_segments
    }
}

/// The dot-separated segments of a parameter or object name; the trailing dot of a partial path
/// does not count (`Device.DeviceInfo.` and `Device.DeviceInfo.UpTime` have 2 and 3).
pub fn name_segments(name: &str) -> usize {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.bytes().filter(|&b| b == b'.').count() + 1
}

/// The size a `soap-enc:arrayType` value declares (`cwmp:ParameterValueStruct[3]`: 3; several
/// dimensions multiply). `None` when it declares none we can read (`xsd:string[]`); sizes too
/// large for `u64` saturate.
fn declared_len(array_type: &str) -> Option<u64> {
    let open = array_type.rfind('[')?;
    let inner = array_type[open + 1..].strip_suffix(']')?;
    let mut total: u64 = 1;
    for dim in inner.split(',') {
        let dim = dim.trim();
        if dim.is_empty() || !dim.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        total = total.saturating_mul(dim.parse::<u64>().unwrap_or(u64::MAX));
    }
    Some(total)
}

/// Which namespace an element or attribute is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    None,
    SoapEnv,
    SoapEnc,
    Xsi,
    Xsd,
    Cwmp(CwmpNs),
    Other,
}

fn classify(uri: &[u8]) -> Ns {
    match uri {
        b if b == ns::SOAP_ENV.as_bytes() => Ns::SoapEnv,
        b if b == ns::SOAP_ENC.as_bytes() => Ns::SoapEnc,
        b if b == ns::XSI.as_bytes() => Ns::Xsi,
        b if b == ns::XSD.as_bytes() => Ns::Xsd,
        b => match CwmpNs::from_uri(b) {
            Some(v) => Ns::Cwmp(v),
            None => Ns::Other,
        },
    }
}

/// Namespaces matter only for the envelope, its Header and Body, and their children (the
/// method); deeper elements are matched by local name, as real CPEs require. Bindings are
/// therefore tracked down to this depth, which keeps decoding of large parameter lists cheap.
const NS_DEPTH: usize = 3;

/// A namespace declaration in scope: prefix (empty for the default namespace), its
/// namespace, and the depth of the element that declared it.
struct Binding<'a> {
    prefix: &'a [u8],
    ns: Ns,
    depth: usize,
}

fn resolve(bindings: &[Binding<'_>], prefix: &[u8]) -> Ns {
    match bindings.iter().rev().find(|b| b.prefix == prefix) {
        Some(b) => b.ns,
        None if prefix.is_empty() => Ns::None,
        // An undeclared prefix: real CPEs do this; treat it as "some namespace".
        None => Ns::Other,
    }
}

fn split_qname(q: &[u8]) -> (&[u8], &[u8]) {
    match q.iter().position(|&b| b == b':') {
        Some(i) => (&q[..i], &q[i + 1..]),
        None => (&[], q),
    }
}

const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Node<'a> {
    pub ns: Ns,
    pub name: &'a str,
    pub text: Cow<'a, str>,
    /// Local part of `xsi:type`, if present.
    pub xsi_type: Option<&'a str>,
    /// Value of `soap-env:mustUnderstand`, if present.
    pub must_understand: Option<&'a str>,
    /// Value of `soap-enc:arrayType`, if present.
    pub array_type: Option<&'a str>,
    pub offset: usize,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

/// A parsed document: elements in document order, the root at index 0, and the limits it was
/// parsed with (names are checked against them as the messages are read). A lenient document
/// reads known CPE deviations and records them in `quirks` instead of refusing them.
#[derive(Debug)]
pub(crate) struct Doc<'a> {
    nodes: Vec<Node<'a>>,
    limits: Limits,
    lenient: bool,
    quirks: RefCell<Quirks>,
}

/// Finds `part` inside `input` (it must be a sub-slice) and returns it with the input's lifetime.
fn reslice<'a>(input: &'a str, part: &[u8]) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    input.get(start..start.checked_add(part.len())?)
}

/// Where lenient decoding replaced invalid bytes: the first one's offset, the invalid sequences
/// replaced, and the bytes around the first one (escaped).
pub(crate) struct Replaced {
    pub offset: usize,
    pub sequences: usize,
    pub raw: String,
}

/// Like [`to_utf8`], but bytes invalid in the charset become U+FFFD instead of an error.
pub(crate) fn to_utf8_lossy(input: &[u8]) -> Result<(Cow<'_, str>, Option<Replaced>), DecodeError> {
    match to_utf8(input) {
        Ok(text) => Ok((text, None)),
        Err(e) if e.kind != DecodeErrorKind::InvalidUtf8 => Err(e),
        Err(_) => {
            let (enc, body) = match encoding_rs::Encoding::for_bom(input) {
                Some((enc, bom_len)) => (enc, &input[bom_len..]),
                None => {
                    let enc = declared_encoding(input)
                        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
                        .unwrap_or(encoding_rs::UTF_8);
                    (enc, input)
                }
            };
            if enc != encoding_rs::UTF_8 {
                let (text, _) = enc.decode_without_bom_handling(body);
                let sequences = text.matches('\u{FFFD}').count().max(1);
                let offset = text.find('\u{FFFD}').unwrap_or(0);
                let raw = format!("undecodable in {}", enc.name());
                return Ok((Cow::Owned(text.into_owned()), Some(Replaced { offset, sequences, raw })));
            }
            let mut sequences = 0;
            let mut first = None;
            let mut pos = 0;
            for chunk in body.utf8_chunks() {
                pos += chunk.valid().len();
                if !chunk.invalid().is_empty() {
                    sequences += 1;
                    first.get_or_insert(pos);
                }
                pos += chunk.invalid().len();
            }
            let at = first.unwrap_or(0);
            let around = &body[at.saturating_sub(16)..(at + 16).min(body.len())];
            let raw = around.escape_ascii().to_string();
            let text = String::from_utf8_lossy(body).into_owned();
            // Offsets count in the text, which starts after a BOM.
            Ok((Cow::Owned(text), Some(Replaced { offset: at, sequences, raw })))
        }
    }
}

/// Turns raw bytes into UTF-8 text: strips a BOM, follows a UTF-16 BOM or the prolog's charset.
pub(crate) fn to_utf8(input: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(input) {
        let body = &input[bom_len..];
        if enc == encoding_rs::UTF_8 {
            return std::str::from_utf8(body)
                .map(Cow::Borrowed)
                .map_err(|e| DecodeError::at(DecodeErrorKind::InvalidUtf8, bom_len + e.valid_up_to()));
        }
        let (text, had_errors) = enc.decode_without_bom_handling(body);
        if had_errors {
            return Err(DecodeError::at(DecodeErrorKind::InvalidUtf8, 0));
        }
        return Ok(Cow::Owned(text.into_owned()));
    }
    if let Some(label) = declared_encoding(input) {
        let enc = encoding_rs::Encoding::for_label(label.as_bytes())
            .ok_or_else(|| DecodeError::at(DecodeErrorKind::UnsupportedEncoding(label.clone()), 0))?;
        if enc != encoding_rs::UTF_8 {
            let (text, had_errors) = enc.decode_without_bom_handling(input);
            if had_errors {
                return Err(DecodeError::at(DecodeErrorKind::InvalidUtf8, 0));
            }
            return Ok(Cow::Owned(text.into_owned()));
        }
    }
    std::str::from_utf8(input)
        .map(Cow::Borrowed)
        .map_err(|e| DecodeError::at(DecodeErrorKind::InvalidUtf8, e.valid_up_to()))
}

/// The `encoding="..."` of an XML declaration at the very start, if any.
fn declared_encoding(input: &[u8]) -> Option<String> {
    let head = input.get(..input.len().min(256))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

fn char_ref(name: &str) -> Option<char> {
    let digits = name.strip_prefix('#')?;
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u32>().ok()?,
    };
    char::from_u32(code)
}

/// XML 1.0 section 2.11: a CR LF pair and a lone CR in character data are read as LF (a CR sent
/// as `&#13;` stays a CR).
fn normalize_newlines(piece: &str) -> Cow<'_, str> {
    if !piece.contains('\r') {
        return Cow::Borrowed(piece);
    }
    Cow::Owned(piece.replace("\r\n", "\n").replace('\r', "\n"))
}

fn push_text<'a>(text: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if text.is_empty() {
        *text = piece;
    } else {
        text.to_mut().push_str(&piece);
    }
}

impl<'a> Doc<'a> {
    /// Parses `input` into an element tree. `input` must already be UTF-8 (see [`to_utf8`]).
    /// `lenient`: the messages read from it accept known CPE deviations (see [`crate::quirk`]).
    pub fn parse(input: &'a str, limits: &Limits, lenient: bool) -> Result<Doc<'a>, DecodeError> {
        let mut reader = Reader::from_str(input);
        let cfg = reader.config_mut();
        cfg.trim_text(false);
        cfg.expand_empty_elements = true;
        cfg.check_end_names = true;
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(16 + input.len() / 40);
        // Open elements: index and child elements so far.
        let mut stack: Vec<(u32, usize)> = Vec::with_capacity(16);
        let mut bindings: Vec<Binding<'a>> = Vec::new();
        let mut seen_root = false;
        loop {
            let offset = reader.buffer_position() as usize;
            let event = match reader.read_event() {
                Ok(v) => v,
                Err(e) => {
                    let pos = reader.error_position() as usize;
                    return Err(DecodeError::at(DecodeErrorKind::Syntax(e.to_string()), pos));
                }
            };
            match event {
                Event::Start(start) => {
                    let depth = stack.len();
                    if depth >= limits.max_depth {
                        return Err(DecodeError::at(DecodeErrorKind::TooDeep(limits.max_depth), offset));
                    }
                    if depth == 0 && seen_root {
                        return Err(DecodeError::at(
                            DecodeErrorKind::Syntax("more than one root element".into()),
                            offset,
                        ));
                    }
                    seen_root = true;
                    if let Some((parent, children)) = stack.last_mut() {
                        *children += 1;
                        if *children > limits.max_items {
                            let element = nodes[*parent as usize].name.to_string();
                            return Err(DecodeError::at(
                                DecodeErrorKind::TooManyItems { element, limit: limits.max_items },
                                offset,
                            ));
                        }
                    }
                    let syntax = || DecodeError::at(DecodeErrorKind::Syntax("element name".into()), offset);
                    let qname = reslice(input, start.name().as_ref()).ok_or_else(syntax)?;
                    let (prefix, local) = split_qname(qname.as_bytes());
                    let name = reslice(input, local).ok_or_else(syntax)?;
                    let mut xsi_type = None;
                    let mut must_understand = None;
                    let mut array_type = None;
                    if !start.attributes_raw().iter().all(u8::is_ascii_whitespace) {
                        for attr in start.attributes().with_checks(false) {
                            let attr =
                                attr.map_err(|e| DecodeError::at(DecodeErrorKind::Syntax(e.to_string()), offset))?;
                            let key = reslice(input, attr.key.as_ref()).unwrap_or("").as_bytes();
                            let value = reslice(input, &attr.value);
                            let (apfx, alocal) = split_qname(key);
                            if key == b"xmlns" || apfx == b"xmlns" {
                                if depth < NS_DEPTH {
                                    let uri = value.unwrap_or("").as_bytes();
                                    let p = if key == b"xmlns" { &[][..] } else { alocal };
                                    bindings.push(Binding { prefix: p, ns: classify(uri), depth });
                                }
                            } else if !apfx.is_empty() && alocal == b"type" {
                                xsi_type = value.map(|v| v.rsplit(':').next().unwrap_or(v).trim());
                            } else if !apfx.is_empty() && alocal == b"mustUnderstand" {
                                must_understand = value.map(str::trim);
                            } else if !apfx.is_empty() && alocal == b"arrayType" {
                                let declared = value.unwrap_or("");
                                array_type = value;
                                if declared_len(declared).is_some_and(|n| n > limits.max_items as u64) {
                                    return Err(DecodeError::at(
                                        DecodeErrorKind::ArrayTooLarge {
                                            element: name.to_string(),
                                            declared: truncate(declared),
                                            limit: limits.max_items,
                                        },
                                        offset,
                                    ));
                                }
                            }
                        }
                    }
                    let elem_ns = if depth < NS_DEPTH { resolve(&bindings, prefix) } else { Ns::Other };
                    let idx = nodes.len() as u32;
                    nodes.push(Node {
                        ns: elem_ns,
                        name,
                        text: Cow::Borrowed(""),
                        xsi_type,
                        must_understand,
                        array_type,
                        offset,
                        first_child: NONE,
                        last_child: NONE,
                        next_sibling: NONE,
                    });
                    if let Some(&(parent, _)) = stack.last() {
                        let p = &mut nodes[parent as usize];
                        let prev = p.last_child;
                        p.last_child = idx;
                        if prev == NONE {
                            p.first_child = idx;
                        } else {
                            nodes[prev as usize].next_sibling = idx;
                        }
                    }
                    stack.push((idx, 0));
                }
                Event::End(_) => {
                    stack.pop();
                    let depth = stack.len();
                    while bindings.last().is_some_and(|b| b.depth >= depth) {
                        bindings.pop();
                    }
                }
                Event::Text(t) => {
                    if let Some(&(cur, _)) = stack.last() {
                        let piece = reslice(input, &t)
                            .map(normalize_newlines)
                            .ok_or_else(|| DecodeError::at(DecodeErrorKind::Syntax("text".into()), offset))?;
                        push_text(&mut nodes[cur as usize].text, piece);
                    } else if !t.iter().all(u8::is_ascii_whitespace) {
                        return Err(DecodeError::at(
                            DecodeErrorKind::Syntax("text outside the root element".into()),
                            offset,
                        ));
                    }
                }
                Event::CData(t) => {
                    if let Some(&(cur, _)) = stack.last() {
                        let piece = reslice(input, &t)
                            .map(normalize_newlines)
                            .ok_or_else(|| DecodeError::at(DecodeErrorKind::Syntax("CDATA".into()), offset))?;
                        push_text(&mut nodes[cur as usize].text, piece);
                    }
                }
                Event::GeneralRef(r) => {
                    let name = std::str::from_utf8(&r).unwrap_or("");
                    let ch = predefined_entity(name)
                        .or_else(|| char_ref(name))
                        .ok_or_else(|| DecodeError::at(DecodeErrorKind::UndefinedEntity(name.to_string()), offset))?;
                    if let Some(&(cur, _)) = stack.last() {
                        nodes[cur as usize].text.to_mut().push(ch);
                    }
                }
                Event::DocType(_) => return Err(DecodeError::at(DecodeErrorKind::Dtd, offset)),
                Event::Empty(_) => {
                    // expand_empty_elements is on: never produced.
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(DecodeError::at(DecodeErrorKind::Syntax("unexpected end of input".into()), input.len()));
        }
        if nodes.is_empty() {
            return Err(DecodeError::at(DecodeErrorKind::NotAnEnvelope, 0));
        }
        Ok(Doc { nodes, limits: *limits, lenient, quirks: RefCell::new(Quirks::default()) })
    }

    /// Records a deviation (lenient documents only).
    pub fn quirk(&self, kind: QuirkKind, element: &str, raw: &str, offset: usize) {
        if self.lenient {
            self.quirks.borrow_mut().push(kind, element, raw, offset);
        }
    }

    /// The deviations recorded while reading.
    pub fn take_quirks(&self) -> Quirks {
        self.quirks.take()
    }

    /// Name of the element whose start tag is the last one before `offset`.
    pub fn element_before(&self, offset: usize) -> &'a str {
        let i = self.nodes.partition_point(|n| n.offset < offset);
        self.nodes[i.saturating_sub(1)].name
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn root(&self) -> El<'_, 'a> {
        El { doc: self, idx: 0 }
    }
}

/// A cursor on one element of a [`Doc`], with typed accessors that report what and where.
#[derive(Clone, Copy)]
pub(crate) struct El<'d, 'a> {
    doc: &'d Doc<'a>,
    idx: u32,
}

impl<'d, 'a> El<'d, 'a> {
    fn node(&self) -> &'d Node<'a> {
        &self.doc.nodes[self.idx as usize]
    }
    pub fn name(&self) -> &'a str {
        self.node().name
    }
    pub fn ns(&self) -> Ns {
        self.node().ns
    }
    pub fn offset(&self) -> usize {
        self.node().offset
    }
    pub fn xsi_type(&self) -> Option<&'a str> {
        self.node().xsi_type
    }
    /// Whether this element's document is read leniently.
    pub fn lenient(&self) -> bool {
        self.doc.lenient
    }
    /// Records a deviation found in this element (lenient documents only).
    pub fn quirk(&self, kind: QuirkKind, raw: &str) {
        self.doc.quirk(kind, self.name(), raw, self.offset());
    }
    pub fn must_understand(&self) -> bool {
        matches!(self.node().must_understand, Some("1") | Some("true"))
    }
    /// Text content with surrounding white space removed.
    pub fn text(&self) -> &'d str {
        self.node().text.trim()
    }
    /// Text content exactly as sent (entity references expanded).
    pub fn raw_text(&self) -> &'d str {
        &self.node().text
    }
    /// Element children in document order.
    pub fn children(&self) -> Children<'d, 'a> {
        Children { doc: self.doc, next: self.node().first_child }
    }
    /// First child element with this local name, whatever its namespace.
    pub fn opt(&self, name: &str) -> Option<El<'d, 'a>> {
        self.children().find(|c| c.name() == name)
    }
    /// First child element with this local name, or a missing-element error.
    pub fn req(&self, name: &'static str) -> Result<El<'d, 'a>, DecodeError> {
        self.opt(name).ok_or_else(|| {
            DecodeError::at(
                DecodeErrorKind::MissingElement { parent: self.name().to_string(), child: name },
                self.offset(),
            )
        })
    }
    pub fn invalid(&self, expected: &'static str) -> DecodeError {
        DecodeError::at(
            DecodeErrorKind::InvalidValue { element: self.name().to_string(), value: truncate(self.text()), expected },
            self.offset(),
        )
    }
    pub fn string(&self, name: &'static str) -> Result<String, DecodeError> {
        Ok(self.req(name)?.raw_text().to_string())
    }
    pub fn opt_string(&self, name: &str) -> Option<String> {
        self.opt(name).map(|e| e.raw_text().to_string())
    }
    pub fn as_u32(&self) -> Result<u32, DecodeError> {
        self.text().parse().map_err(|_| self.invalid("unsignedInt"))
    }
    pub fn as_i32(&self) -> Result<i32, DecodeError> {
        self.text().parse().map_err(|_| self.invalid("int"))
    }
    pub fn as_bool(&self) -> Result<bool, DecodeError> {
        if let Some(b) = parse_bool(self.text()) {
            return Ok(b);
        }
        match parse_bool_any_case(self.text()).filter(|_| self.lenient()) {
            Some(b) => {
                self.quirk(QuirkKind::BooleanCase, self.raw_text());
                Ok(b)
            }
            None => Err(self.invalid("boolean")),
        }
    }
    pub fn u32(&self, name: &'static str) -> Result<u32, DecodeError> {
        self.req(name)?.as_u32()
    }
    pub fn i32(&self, name: &'static str) -> Result<i32, DecodeError> {
        self.req(name)?.as_i32()
    }
    pub fn bool(&self, name: &'static str) -> Result<bool, DecodeError> {
        self.req(name)?.as_bool()
    }
    pub fn datetime(&self, name: &'static str) -> Result<DateTime, DecodeError> {
        let e = self.req(name)?;
        match DateTime::parse(e.text()) {
            Some(d) => Ok(d),
            None if e.lenient() => {
                e.quirk(QuirkKind::InvalidDateTime, e.raw_text());
                Ok(DateTime::unknown())
            }
            None => Err(e.invalid("dateTime")),
        }
    }
    /// Checks `text`, a name sent in this element, against the document's name limits.
    fn checked_name(&self, text: &str) -> Result<String, DecodeError> {
        let limits = &self.doc.limits;
        let kind = if text.len() > limits.max_name_bytes {
            DecodeErrorKind::NameTooLong {
                element: self.name().to_string(),
                name: truncate(text),
                len: text.len(),
                limit: limits.max_name_bytes,
            }
        } else if name_segments(text) > limits.max_name_segments {
            DecodeErrorKind::NameTooDeep {
                element: self.name().to_string(),
                name: truncate(text),
                segments: name_segments(text),
                limit: limits.max_name_segments,
            }
        } else {
            return Ok(text.to_string());
        };
        Err(DecodeError::at(kind, self.offset()))
    }
    /// This element's text as a parameter or object name (white space trimmed), within the
    /// name limits.
    pub fn as_path(&self) -> Result<String, DecodeError> {
        self.checked_name(self.text())
    }
    /// The named child's text as a parameter or object name, within the name limits.
    pub fn path(&self, name: &'static str) -> Result<String, DecodeError> {
        self.req(name)?.as_path()
    }
    /// The same for an optional child.
    pub fn opt_path(&self, name: &str) -> Result<Option<String>, DecodeError> {
        self.opt(name).map(|e| e.as_path()).transpose()
    }
    /// Names of a SOAP array of `xsd:string` (each exactly as sent), within the name limits.
    pub fn path_list(&self, name: &'static str) -> Result<Vec<String>, DecodeError> {
        self.list(name, |e| e.checked_name(e.raw_text()))
    }
    /// Decodes every child element (the members of a SOAP array) with `f`.
    pub fn list<T>(
        &self,
        name: &'static str,
        f: impl Fn(El<'d, 'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let array = self.req(name)?;
        let items = array.children().map(f).collect::<Result<Vec<T>, DecodeError>>()?;
        if let Some(array_type) = array.node().array_type.filter(|_| array.lenient()) {
            if let Some(declared) = declared_len(array_type).filter(|n| *n != items.len() as u64) {
                array.quirk(QuirkKind::ArrayCount { declared, sent: items.len() }, array_type);
            }
        }
        Ok(items)
    }
    /// Strings of a SOAP array of `xsd:string`.
    pub fn string_list(&self, name: &'static str) -> Result<Vec<String>, DecodeError> {
        self.list(name, |e| Ok(e.raw_text().to_string()))
    }
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// `true` and `false` in any case (`True`, `FALSE`), which some CPEs send.
pub(crate) fn parse_bool_any_case(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= 64 {
        return s.to_string();
    }
    let mut end = 64;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Iterator over the element children of an element.
pub(crate) struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    next: u32,
}

impl<'d, 'a> Iterator for Children<'d, 'a> {
    type Item = El<'d, 'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next == NONE {
            return None;
        }
        let el = El { doc: self.doc, idx: self.next };
        self.next = self.doc.nodes[self.next as usize].next_sibling;
        Some(el)
    }
}

/// Appends escaped XML to a string buffer. Prefixes: `soap-env`, `soap-enc`, `xsd`, `xsi`, `cwmp`.
pub(crate) struct Writer {
    pub buf: String,
}

impl Writer {
    pub fn new(capacity: usize) -> Self {
        Writer { buf: String::with_capacity(capacity) }
    }
    pub fn open(&mut self, name: &str) {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
    }
    pub fn close(&mut self, name: &str) {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }
    pub fn escape(&mut self, text: &str) {
        let mut last = 0;
        for (i, b) in text.bytes().enumerate() {
            let rep = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\r' => "&#13;",
                _ => continue,
            };
            self.buf.push_str(&text[last..i]);
            self.buf.push_str(rep);
            last = i + 1;
        }
        self.buf.push_str(&text[last..]);
    }
    /// `<name>text</name>`
    pub fn text(&mut self, name: &str, text: &str) {
        self.open(name);
        self.escape(text);
        self.close(name);
    }
    pub fn display(&mut self, name: &str, v: impl std::fmt::Display) {
        use std::fmt::Write;
        self.open(name);
        let _ = write!(self.buf, "{v}");
        self.close(name);
    }
    pub fn bool(&mut self, name: &str, v: bool) {
        self.text(name, if v { "true" } else { "false" });
    }
    /// Opens a SOAP-encoded array: `<name soap-enc:arrayType="item_type[len]">`.
    pub fn array_open(&mut self, name: &str, item_type: &str, len: usize) {
        use std::fmt::Write;
        let _ = write!(self.buf, "<{name} soap-enc:arrayType=\"{item_type}[{len}]\">");
    }
    /// A whole array of `xsd:string`, each member named `string`.
    pub fn string_array(&mut self, name: &str, items: &[String]) {
        self.array_open(name, "xsd:string", items.len());
        for s in items {
            self.text("string", s);
        }
        self.close(name);
    }
    /// A whole array of structs, each encoded by `f` inside `<item_name>`.
    pub fn struct_array<T>(&mut self, name: &str, item_name: &str, items: &[T], f: impl Fn(&mut Self, &T)) {
        self.array_open(name, &format!("cwmp:{item_name}"), items.len());
        for item in items {
            self.open(item_name);
            f(self, item);
            self.close(item_name);
        }
        self.close(name);
    }
}
