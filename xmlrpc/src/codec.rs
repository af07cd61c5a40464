//! Encoding and decoding of `methodCall` and `methodResponse` documents.
//!
//! The tokenizer is our own (XML-RPC needs a small, fast subset of XML). Decoding is strict
//! about structure and tolerant about form: any namespace prefix on type
//! elements (`ex:i8`, `ex:nil`), untyped values as strings, whitespace and comments between
//! elements, base64 with line breaks, a UTF-8 BOM and the prolog's charset. DTDs and entity
//! declarations are refused; body size and nesting depth are limited.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;

use crate::fault::Fault;
use crate::value::{DateTime, Value};

/// Limits on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body (after gzip decompression), bytes.
    pub max_body: usize,
    /// Deepest accepted nesting of arrays and structs.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: 8 * 1024 * 1024, max_depth: 64 }
    }
}

/// A call: method name and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodCall {
    /// Method name.
    pub name: String,
    /// Parameters.
    pub params: Vec<Value>,
}

/// A response: one value, or a fault.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodResponse {
    /// The returned value.
    Success(Value),
    /// The fault.
    Fault(Fault),
}

/// Why a document could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct DecodeError {
    /// What was wrong.
    pub message: String,
    /// Byte offset.
    pub offset: usize,
    /// Line from 1.
    pub line: usize,
    /// Column from 1.
    pub column: usize,
    /// The fault a server answers with.
    pub fault_code: i32,
}

impl DecodeError {
    fn new(message: impl Into<String>, offset: usize, fault_code: i32, input: &str) -> DecodeError {
        let mut end = offset.min(input.len());
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        let before = &input[..end];
        let line = before.matches('\n').count() + 1;
        let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
        DecodeError { message: message.into(), offset, line, column, fault_code }
    }
}

/// Bytes of element names (the prefix separator `:` included): 1 a name byte, 0 anything else.
const NAME_CHAR: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c >= 0x80 {
            t[i] = 1;
        }
        i += 1;
    }
    t[b':' as usize] = 1;
    t
};

enum Tok<'a> {
    Start(&'a str),
    End(&'a str),
    Text(Cow<'a, str>),
    Eof,
}

struct Parser<'a> {
    input: &'a str,
    /// Cursor into `input`.
    at: usize,
    limits: Limits,
    pos: usize,
    /// The end of an empty element (`<nil/>`), delivered after its start.
    pending_end: Option<&'a str>,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl Into<String>) -> DecodeError {
        DecodeError::new(msg, self.pos, Fault::INVALID_REQUEST, self.input)
    }

    fn syntax(&self, msg: impl Into<String>) -> DecodeError {
        DecodeError::new(msg, self.pos, Fault::PARSE_ERROR, self.input)
    }

    fn find(&self, from: usize, pat: &str) -> Option<usize> {
        let b = self.input.as_bytes();
        let p = pat.as_bytes();
        let first = *p.first()?;
        let mut i = from;
        while i < b.len() {
            let k = memchr::memchr(first, &b[i..])? + i;
            if b[k..].starts_with(p) {
                return Some(k);
            }
            i = k + 1;
        }
        None
    }

    /// The tokenizer: elements, text (entity references expanded), CDATA; comments and
    /// processing instructions skipped; DTDs refused. Attribute values are skipped (namespace
    /// declarations do not matter to XML-RPC); element names lose their prefix.
    fn tok(&mut self) -> Result<Tok<'a>, DecodeError> {
        if let Some(name) = self.pending_end.take() {
            return Ok(Tok::End(name));
        }
        let b = self.input.as_bytes();
        loop {
            self.pos = self.at;
            let Some(&c) = b.get(self.at) else { return Ok(Tok::Eof) };
            if c != b'<' {
                let start = self.at;
                // Text is mostly short: a plain loop beats a vectorised search here.
                let mut end = start;
                let mut amp = false;
                while let Some(&x) = b.get(end) {
                    match x {
                        b'<' => break,
                        b'&' => amp = true,
                        _ => {}
                    }
                    end += 1;
                }
                self.at = end;
                let raw = &self.input[start..end];
                return Ok(Tok::Text(if amp { Cow::Owned(self.unescape(raw)?) } else { Cow::Borrowed(raw) }));
            }
            match b.get(self.at + 1) {
                Some(b'/') => {
                    let (name_end, local) = self.scan_name(self.at + 2)?;
                    if b.get(name_end) == Some(&b'>') {
                        self.at = name_end + 1;
                        return Ok(Tok::End(local));
                    }
                    let close = memchr::memchr(b'>', &b[name_end..])
                        .map(|i| name_end + i)
                        .filter(|&k| b[name_end..k].iter().all(u8::is_ascii_whitespace))
                        .ok_or_else(|| self.syntax("malformed end tag"))?;
                    self.at = close + 1;
                    return Ok(Tok::End(local));
                }
                Some(b'!') => {
                    let rest = &self.input[self.at..];
                    if rest.starts_with("<!--") {
                        let end = self.find(self.at + 4, "-->").ok_or_else(|| self.syntax("unterminated comment"))?;
                        self.at = end + 3;
                        continue;
                    }
                    if rest.starts_with("<![CDATA[") {
                        let start = self.at + 9;
                        let end = self.find(start, "]]>").ok_or_else(|| self.syntax("unterminated CDATA section"))?;
                        self.at = end + 3;
                        return Ok(Tok::Text(Cow::Borrowed(&self.input[start..end])));
                    }
                    return Err(self.syntax("document type declarations are not allowed"));
                }
                Some(b'?') => {
                    let end = self
                        .find(self.at + 2, "?>")
                        .ok_or_else(|| self.syntax("unterminated processing instruction"))?;
                    self.at = end + 2;
                    continue;
                }
                _ => {}
            }
            // A start tag: name, then attributes up to `>` or `/>`.
            let (mut i, local) = self.scan_name(self.at + 1)?;
            loop {
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                match b.get(i) {
                    Some(b'>') => {
                        self.at = i + 1;
                        return Ok(Tok::Start(local));
                    }
                    Some(b'/') if b.get(i + 1) == Some(&b'>') => {
                        self.at = i + 2;
                        self.pending_end = Some(local);
                        return Ok(Tok::Start(local));
                    }
                    Some(_) => i = self.skip_attribute(i)?,
                    None => return Err(self.syntax("unterminated start tag")),
                }
            }
        }
    }

    /// Reads an element name starting at `from`; returns where it ends and its local part.
    fn scan_name(&self, from: usize) -> Result<(usize, &'a str), DecodeError> {
        let b = self.input.as_bytes();
        let rest = b.get(from..).unwrap_or_default();
        let len = rest.iter().position(|&x| NAME_CHAR[x as usize] == 0).unwrap_or(rest.len());
        let name = &rest[..len];
        let local_start = name.iter().rposition(|&x| x == b':').map_or(0, |k| k + 1);
        let first_ok = name.first().is_some_and(|&x| x.is_ascii_alphabetic() || x == b'_' || x >= 0x80);
        // The name ends at an ASCII byte (or the end), so both ends are character boundaries.
        match self.input.get(from + local_start..from + len) {
            Some(local) if first_ok && !local.is_empty() => Ok((from + len, local)),
            _ => Err(self.syntax("malformed XML: invalid element name")),
        }
    }

    /// Skips `name = "value"` starting at `i`; returns the position after it.
    fn skip_attribute(&self, i: usize) -> Result<usize, DecodeError> {
        let b = self.input.as_bytes();
        let eq =
            memchr::memchr(b'=', &b[i..]).map(|k| i + k).ok_or_else(|| self.syntax("attribute without a value"))?;
        if !b[i..eq].trim_ascii().iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b':' | b'_' | b'-' | b'.')) {
            return Err(self.syntax("malformed attribute"));
        }
        let mut j = eq + 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let q = match b.get(j) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(self.syntax("attribute value must be quoted")),
        };
        match memchr::memchr2(q, b'<', &b[j + 1..]).map(|k| j + 1 + k) {
            Some(k) if b[k] == q => Ok(k + 1),
            _ => Err(self.syntax("unterminated attribute value")),
        }
    }

    fn unescape(&self, raw: &str) -> Result<String, DecodeError> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let after = &rest[amp + 1..];
            let semi = after.find(';').ok_or_else(|| self.syntax("malformed XML: '&' without ';'"))?;
            let name = &after[..semi];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                n => n
                    .strip_prefix('#')
                    .and_then(|d| match d.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => d.parse().ok(),
                    })
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.syntax(format!("undefined entity &{};", truncate(n))))?,
            };
            out.push(c);
            rest = &after[semi + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Moves past XML white space (unless an empty element's end is still to be delivered).
    fn skip_ws(&mut self) {
        if self.pending_end.is_none() {
            let b = self.input.as_bytes();
            while b.get(self.at).is_some_and(|x| matches!(x, b' ' | b'\t' | b'\r' | b'\n')) {
                self.at += 1;
            }
        }
    }

    /// The fast path for the canonical form: after white space, a tag like `<value>` or
    /// `</value>` (letters, digits and dots, no prefix, attributes or inner white space) is
    /// consumed and returned. Anything else is left to the tokenizer, which accepts every form.
    fn plain_tag(&mut self) -> Option<Tok<'a>> {
        if self.pending_end.is_some() {
            return None;
        }
        self.skip_ws();
        let b = self.input.as_bytes();
        if b.get(self.at) != Some(&b'<') {
            return None;
        }
        let end = b.get(self.at + 1) == Some(&b'/');
        let start = self.at + 1 + usize::from(end);
        let mut i = start;
        while b.get(i).is_some_and(|x| x.is_ascii_lowercase()) {
            i += 1;
        }
        while b.get(i).is_some_and(|x| x.is_ascii_alphanumeric() || *x == b'.') {
            i += 1;
        }
        if i == start || b.get(i) != Some(&b'>') {
            return None;
        }
        let name = self.input.get(start..i)?;
        self.pos = self.at;
        self.at = i + 1;
        Some(if end { Tok::End(name) } else { Tok::Start(name) })
    }

    /// The fast path for the canonical form: after white space, exactly `<name>` (or `</name>`),
    /// without prefix, attributes or inner white space, is consumed. Anything else is left to
    /// the tokenizer, which accepts every form.
    fn eat_tag(&mut self, end: bool, name: &str) -> bool {
        if self.pending_end.is_some() {
            return false;
        }
        let b = self.input.as_bytes();
        if b.get(self.at) != Some(&b'<') {
            self.skip_ws();
        }
        let open = 1 + usize::from(end);
        let n = name.len();
        let Some(r) = b.get(self.at..self.at + open + n + 1) else { return false };
        let hit =
            r[0] == b'<' && (!end || r[1] == b'/') && r[open..open + n] == *name.as_bytes() && r[open + n] == b'>';
        if hit {
            self.pos = self.at;
            self.at += open + n + 1;
        }
        hit
    }

    /// Next token that is not white space.
    fn tok_skip_ws(&mut self) -> Result<Tok<'a>, DecodeError> {
        if let Some(t) = self.plain_tag() {
            return Ok(t);
        }
        loop {
            match self.tok()? {
                Tok::Text(t) if t.trim().is_empty() => continue,
                Tok::Text(t) => return Err(self.err(format!("unexpected text {:?}", truncate(&t)))),
                other => return Ok(other),
            }
        }
    }

    fn expect_start(&mut self, name: &str) -> Result<(), DecodeError> {
        if self.eat_tag(false, name) {
            return Ok(());
        }
        match self.tok_skip_ws()? {
            Tok::Start(n) if n == name => Ok(()),
            other => Err(self.err(format!("expected <{name}>, found {}", describe(&other)))),
        }
    }

    fn expect_end(&mut self, name: &str) -> Result<(), DecodeError> {
        if self.eat_tag(true, name) {
            return Ok(());
        }
        match self.tok_skip_ws()? {
            Tok::End(n) if n == name => Ok(()),
            other => Err(self.err(format!("expected </{name}>, found {}", describe(&other)))),
        }
    }

    /// Text up to `</name>`; no child elements allowed.
    fn text_until_end(&mut self, name: &str) -> Result<Cow<'a, str>, DecodeError> {
        if self.pending_end.is_none() {
            let b = self.input.as_bytes();
            let start = self.at;
            let mut end = start;
            while let Some(&x) = b.get(end) {
                if x == b'<' || x == b'&' {
                    break;
                }
                end += 1;
            }
            self.at = end;
            if b.get(end) == Some(&b'<') && self.eat_tag(true, name) {
                return Ok(Cow::Borrowed(&self.input[start..end]));
            }
            self.at = start;
        }
        let mut text: Cow<'a, str> = Cow::Borrowed("");
        loop {
            match self.tok()? {
                Tok::Text(t) => {
                    if text.is_empty() {
                        text = t;
                    } else {
                        text.to_mut().push_str(&t);
                    }
                }
                Tok::End(n) if n == name => return Ok(text),
                other => return Err(self.err(format!("expected text in <{name}>, found {}", describe(&other)))),
            }
        }
    }

    /// Parses what follows `<value>`, up to and including `</value>`.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > self.limits.max_depth {
            return Err(DecodeError::new(
                format!("values nest deeper than {} levels", self.limits.max_depth),
                self.pos,
                Fault::INVALID_REQUEST,
                self.input,
            ));
        }
        // White space before a type element is the common case: skip it without keeping it,
        // unless the value turns out to be an untyped string.
        let ws_start = self.at;
        self.skip_ws();
        let b = self.input.as_bytes();
        let mut text = String::new();
        match (b.get(self.at), b.get(self.at + 1)) {
            // `<value>  </value>`: an untyped string of white space (or empty).
            (Some(b'<'), Some(b'/')) => text.push_str(&self.input[ws_start..self.at]),
            // A start tag: the type element.
            (Some(b'<'), Some(&x)) if NAME_CHAR[x as usize] == 1 => {
                if let Some(Tok::Start(ty)) = self.plain_tag() {
                    let v = self.typed(ty, depth)?;
                    self.expect_end("value")?;
                    return Ok(v);
                }
            }
            // Text, a comment, CDATA: read it all as it comes.
            _ => self.at = ws_start,
        }
        loop {
            match self.tok()? {
                Tok::Text(t) => text.push_str(&t),
                Tok::End("value") => return Ok(Value::String(text)),
                Tok::Start(ty) => {
                    if !text.trim().is_empty() {
                        return Err(self.err("text next to a type element"));
                    }
                    let v = self.typed(ty, depth)?;
                    self.expect_end("value")?;
                    return Ok(v);
                }
                other => return Err(self.err(format!("unexpected {} in <value>", describe(&other)))),
            }
        }
    }

    fn typed(&mut self, ty: &str, depth: usize) -> Result<Value, DecodeError> {
        let bad = |p: &Self, t: &str| p.err(format!("{:?} is not a valid {ty}", truncate(t)));
        Ok(match ty {
            "int" | "i4" => {
                let t = self.text_until_end(ty)?;
                Value::Int(t.trim().parse().map_err(|_| bad(self, &t))?)
            }
            "i8" => {
                let t = self.text_until_end(ty)?;
                Value::I8(t.trim().parse().map_err(|_| bad(self, &t))?)
            }
            "boolean" => {
                let t = self.text_until_end(ty)?;
                Value::Bool(match t.trim() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad(self, &t)),
                })
            }
            "string" => Value::String(self.text_until_end(ty)?.into_owned()),
            "double" => {
                let t = self.text_until_end(ty)?;
                Value::Double(t.trim().parse().map_err(|_| bad(self, &t))?)
            }
            "dateTime.iso8601" => {
                let t = self.text_until_end(ty)?;
                Value::DateTime(DateTime::parse(&t).ok_or_else(|| bad(self, &t))?)
            }
            "base64" => {
                let t = self.text_until_end(ty)?;
                let compact: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                Value::Base64(
                    base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).map_err(|_| bad(self, &t))?,
                )
            }
            "nil" => {
                let t = self.text_until_end(ty)?;
                if !t.trim().is_empty() {
                    return Err(bad(self, &t));
                }
                Value::Nil
            }
            "struct" => {
                let mut members = Vec::with_capacity(8);
                loop {
                    let tok = if self.eat_tag(false, "member") { Tok::Start("member") } else { self.tok_skip_ws()? };
                    match tok {
                        Tok::End("struct") => break,
                        Tok::Start("member") => {
                            let (mut name, mut value) = (None, None);
                            loop {
                                // The canonical order first: <name>, <value>, </member>.
                                let tok = if name.is_none() && self.eat_tag(false, "name") {
                                    Tok::Start("name")
                                } else if value.is_none() && self.eat_tag(false, "value") {
                                    Tok::Start("value")
                                } else if value.is_some() && self.eat_tag(true, "member") {
                                    Tok::End("member")
                                } else {
                                    self.tok_skip_ws()?
                                };
                                match tok {
                                    Tok::Start("name") => name = Some(self.text_until_end("name")?.into_owned()),
                                    Tok::Start("value") => value = Some(self.value(depth + 1)?),
                                    Tok::End("member") => break,
                                    other => {
                                        return Err(self.err(format!("unexpected {} in <member>", describe(&other))))
                                    }
                                }
                            }
                            match (name, value) {
                                (Some(n), Some(v)) => members.push((n, v)),
                                _ => return Err(self.err("a <member> needs a <name> and a <value>")),
                            }
                        }
                        other => return Err(self.err(format!("unexpected {} in <struct>", describe(&other)))),
                    }
                }
                Value::Struct(members)
            }
            "array" => {
                self.expect_start("data")?;
                let mut items = Vec::new();
                loop {
                    let tok = if self.eat_tag(false, "value") { Tok::Start("value") } else { self.tok_skip_ws()? };
                    match tok {
                        Tok::Start("value") => items.push(self.value(depth + 1)?),
                        Tok::End("data") => break,
                        other => return Err(self.err(format!("unexpected {} in <data>", describe(&other)))),
                    }
                }
                self.expect_end("array")?;
                Value::Array(items)
            }
            other => return Err(self.err(format!("unknown value type <{other}>"))),
        })
    }

    fn params(&mut self) -> Result<Vec<Value>, DecodeError> {
        let mut params = Vec::new();
        loop {
            match self.tok_skip_ws()? {
                Tok::Start("param") => {
                    self.expect_start("value")?;
                    params.push(self.value(1)?);
                    self.expect_end("param")?;
                }
                Tok::End("params") => return Ok(params),
                other => return Err(self.err(format!("unexpected {} in <params>", describe(&other)))),
            }
        }
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        match self.tok_skip_ws()? {
            Tok::Eof => Ok(()),
            other => Err(self.err(format!("unexpected {} after the document", describe(&other)))),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn describe(t: &Tok<'_>) -> String {
    match t {
        Tok::Start(n) => format!("<{n}>"),
        Tok::End(n) => format!("</{n}>"),
        Tok::Text(t) => format!("text {:?}", truncate(t)),
        Tok::Eof => "the end of the document".into(),
    }
}

/// Bytes to UTF-8 text: a UTF-8 BOM is dropped, a UTF-16 BOM or the prolog's charset followed.
fn text_of(input: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    let fail = |m: &str| DecodeError {
        message: m.to_string(),
        offset: 0,
        line: 1,
        column: 1,
        fault_code: Fault::UNSUPPORTED_ENCODING,
    };
    let (enc, body) = match encoding_rs_lite::sniff(input) {
        Some((enc, skip)) => (Some(enc), &input[skip..]),
        None => (None, input),
    };
    match enc {
        Some(encoding_rs_lite::Enc::Utf16Le) | Some(encoding_rs_lite::Enc::Utf16Be) => {
            let le = matches!(enc, Some(encoding_rs_lite::Enc::Utf16Le));
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
                .collect();
            String::from_utf16(&units).map(Cow::Owned).map_err(|_| fail("invalid UTF-16"))
        }
        Some(encoding_rs_lite::Enc::Latin1) => Ok(Cow::Owned(body.iter().map(|&b| b as char).collect())),
        Some(encoding_rs_lite::Enc::Utf8) | None => {
            std::str::from_utf8(body).map(Cow::Borrowed).map_err(|_| fail("text is not valid UTF-8"))
        }
        Some(encoding_rs_lite::Enc::Unknown(name)) => Err(fail(&format!("unsupported character encoding {name:?}"))),
    }
}

/// The few charsets XML-RPC peers use, recognised from a BOM or the XML declaration.
mod encoding_rs_lite {
    pub enum Enc {
        Utf8,
        Utf16Le,
        Utf16Be,
        Latin1,
        Unknown(String),
    }

    pub fn sniff(input: &[u8]) -> Option<(Enc, usize)> {
        if input.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Some((Enc::Utf8, 3));
        }
        if input.starts_with(&[0xFF, 0xFE]) {
            return Some((Enc::Utf16Le, 2));
        }
        if input.starts_with(&[0xFE, 0xFF]) {
            return Some((Enc::Utf16Be, 2));
        }
        let head = input.get(..input.len().min(200))?;
        if !head.starts_with(b"<?xml") {
            return None;
        }
        let end = head.windows(2).position(|w| w == b"?>")?;
        let decl = std::str::from_utf8(&head[..end]).ok()?;
        let rest = decl[decl.find("encoding")? + 8..].trim_start().strip_prefix('=')?.trim_start();
        let q = rest.chars().next()?;
        let name = rest.get(1..)?.split(q).next()?.to_ascii_lowercase();
        Some((
            match name.as_str() {
                "utf-8" | "utf8" | "us-ascii" | "ascii" => Enc::Utf8,
                "iso-8859-1" | "latin1" | "latin-1" | "iso8859-1" => Enc::Latin1,
                other => Enc::Unknown(other.to_string()),
            },
            0,
        ))
    }
}

fn parser<'a>(text: &'a str, limits: &Limits) -> Parser<'a> {
    Parser { input: text, at: 0, limits: *limits, pos: 0, pending_end: None }
}

fn too_large(len: usize, limits: &Limits) -> Result<(), DecodeError> {
    if len > limits.max_body {
        return Err(DecodeError {
            message: format!("body of {len} bytes exceeds the limit of {} bytes", limits.max_body),
            offset: limits.max_body,
            line: 0,
            column: 0,
            fault_code: Fault::INVALID_REQUEST,
        });
    }
    Ok(())
}

/// Decodes a `methodCall`.
pub fn decode_call(input: &[u8], limits: &Limits) -> Result<MethodCall, DecodeError> {
    too_large(input.len(), limits)?;
    let text = text_of(input)?;
    let mut p = parser(&text, limits);
    p.expect_start("methodCall")?;
    p.expect_start("methodName")?;
    let name = p.text_until_end("methodName")?.trim().to_string();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/')) {
        return Err(p.err(format!("invalid method name {:?}", truncate(&name))));
    }
    let params = match p.tok_skip_ws()? {
        Tok::Start("params") => {
            let params = p.params()?;
            p.expect_end("methodCall")?;
            params
        }
        Tok::End("methodCall") => Vec::new(),
        other => return Err(p.err(format!("expected <params>, found {}", describe(&other)))),
    };
    p.finish()?;
    Ok(MethodCall { name, params })
}

/// Decodes a `methodResponse`.
pub fn decode_response(input: &[u8], limits: &Limits) -> Result<MethodResponse, DecodeError> {
    too_large(input.len(), limits)?;
    let text = text_of(input)?;
    let mut p = parser(&text, limits);
    p.expect_start("methodResponse")?;
    let resp = match p.tok_skip_ws()? {
        Tok::Start("params") => {
            let mut params = p.params()?;
            if params.len() != 1 {
                return Err(p.err(format!("a response holds one value, not {}", params.len())));
            }
            MethodResponse::Success(params.remove(0))
        }
        Tok::Start("fault") => {
            p.expect_start("value")?;
            let v = p.value(1)?;
            p.expect_end("fault")?;
            let code = v.get("faultCode").and_then(Value::as_i64);
            let string = v.get("faultString").and_then(Value::as_str);
            match (code, string) {
                (Some(c), Some(s)) => MethodResponse::Fault(Fault::new(c as i32, s)),
                _ => return Err(p.err("a fault needs an int faultCode and a string faultString")),
            }
        }
        other => return Err(p.err(format!("expected <params> or <fault>, found {}", describe(&other)))),
    };
    p.expect_end("methodResponse")?;
    p.finish()?;
    Ok(resp)
}

fn escape(out: &mut String, s: &str) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\r' => "&#13;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

/// Appends `<value>...</value>`.
pub fn encode_value(out: &mut String, v: &Value) {
    out.push_str("<value>");
    match v {
        Value::Int(i) => {
            let _ = write!(out, "<int>{i}</int>");
        }
        Value::I8(i) => {
            let _ = write!(out, "<i8>{i}</i8>");
        }
        Value::Bool(b) => out.push_str(if *b { "<boolean>1</boolean>" } else { "<boolean>0</boolean>" }),
        Value::String(s) => {
            out.push_str("<string>");
            escape(out, s);
            out.push_str("</string>");
        }
        Value::Double(d) => {
            if d.is_nan() {
                out.push_str("<double>nan</double>");
            } else if d.is_infinite() {
                out.push_str(if *d > 0.0 { "<double>inf</double>" } else { "<double>-inf</double>" });
            } else {
                let _ = write!(out, "<double>{d:?}</double>");
            }
        }
        Value::DateTime(dt) => {
            let _ = write!(out, "<dateTime.iso8601>{dt}</dateTime.iso8601>");
        }
        Value::Base64(b) => {
            out.push_str("<base64>");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push_str("</base64>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (k, v) in members {
                out.push_str("<member><name>");
                escape(out, k);
                out.push_str("</name>");
                encode_value(out, v);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for v in items {
                encode_value(out, v);
            }
            out.push_str("</data></array>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

/// Encodes a `methodCall`.
pub fn encode_call(name: &str, params: &[Value]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    escape(&mut out, name);
    out.push_str("</methodName><params>");
    for p in params {
        out.push_str("<param>");
        encode_value(&mut out, p);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>\n");
    out
}

/// Encodes a `methodResponse`.
pub fn encode_response(resp: &MethodResponse) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\"?>\n<methodResponse>");
    match resp {
        MethodResponse::Success(v) => {
            out.push_str("<params><param>");
            encode_value(&mut out, v);
            out.push_str("</param></params>");
        }
        MethodResponse::Fault(f) => {
            out.push_str("<fault>");
            let v =
                Value::structure([("faultCode", Value::Int(f.code)), ("faultString", Value::String(f.string.clone()))]);
            encode_value(&mut out, &v);
            out.push_str("</fault>");
        }
    }
    out.push_str("</methodResponse>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt_call(params: Vec<Value>) {
        let xml = encode_call("a.b", &params);
        let back = decode_call(xml.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(back, MethodCall { name: "a.b".into(), params }, "{xml}");
    }

    #[test]
    fn every_type_round_trips() {
        rt_call(vec![
            Value::Int(i32::MIN),
            Value::I8(i64::MAX),
            Value::Bool(true),
            Value::String("a < b & \"c\" \r\n é 😀".into()),
            Value::String(String::new()),
            Value::Double(-1.5e300),
            Value::Double(0.1),
            Value::Double(f64::INFINITY),
            Value::DateTime(DateTime::parse("19980717T14:08:55Z").expect("dt")),
            Value::Base64(vec![0, 1, 2, 255]),
            Value::structure([("x", Value::Int(1)), ("y", Value::Array(vec![Value::Nil, Value::Struct(vec![])]))]),
            Value::Array(vec![]),
            Value::Nil,
        ]);
        let resp = MethodResponse::Fault(Fault::new(9007, "MinAddress above MaxAddress"));
        assert_eq!(decode_response(encode_response(&resp).as_bytes(), &Limits::default()), Ok(resp));
    }

    #[test]
    fn canonical_fast_path_and_general_tokenizer_agree() {
        // The decoder takes a fast path for canonical tags (`<value>`); the same document with
        // every tag in another legal form (prefixed, with white space or a comment inside and
        // around it) must go through the general tokenizer and give the same values.
        let params = vec![
            Value::structure([
                ("a", Value::Int(1)),
                ("b", Value::String(" spaced <&> ".into())),
                ("c", Value::Array(vec![Value::Bool(true), Value::Double(0.5), Value::Nil])),
                ("d", Value::structure([("e", Value::String(String::new()))])),
            ]),
            Value::Array(vec![]),
            Value::String("   ".into()),
        ];
        let canonical = encode_call("m", &params);
        let reformed = canonical
            .replace("<value>", "<value >")
            .replace("</value>", "</value\n>")
            .replace("<member>", "<x:member xmlns:x=\"urn:x\"> <!-- m -->")
            .replace("</member>", "</x:member >")
            .replace("<name>", "\n<name\t>")
            .replace("<struct>", "<struct>\n")
            .replace("<data>", "<data> ");
        assert_ne!(canonical, reformed);
        for doc in [&canonical, &reformed] {
            let c = decode_call(doc.as_bytes(), &Limits::default()).expect("decodes");
            assert_eq!(c.params, params, "{doc}");
        }
    }

    #[test]
    fn tolerant_forms() {
        let xml = "\u{feff}<?xml version=\"1.0\"?>\n<!-- c --><methodCall>\n <methodName>m</methodName>\n <params>\n  <param><value>untyped &amp; spaced </value></param>\n  <param><value/></param>\n  <param><value><i4> -7 </i4></value></param>\n  <param><value><ex:i8 xmlns:ex=\"http://ws.apache.org/xmlrpc/namespaces/extensions\">-9000000000</ex:i8></value></param>\n  <param><value><ex:nil xmlns:ex=\"http://ws.apache.org/xmlrpc/namespaces/extensions\"/></value></param>\n  <param><value><base64>AAEC\n/w==\n</base64></value></param>\n  <param><value><struct><member><value><int>1</int></value><name>k</name></member></struct></value></param>\n </params>\n</methodCall>\n";
        let c = decode_call(xml.as_bytes(), &Limits::default()).expect("decodes");
        assert_eq!(
            c.params,
            vec![
                Value::String("untyped & spaced ".into()),
                Value::String(String::new()),
                Value::Int(-7),
                Value::I8(-9_000_000_000),
                Value::Nil,
                Value::Base64(vec![0, 1, 2, 255]),
                Value::structure([("k", Value::Int(1))]),
            ]
        );
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall><methodName>m</methodName><params><param><value>caf\xe9</value></param></params></methodCall>";
        assert_eq!(
            decode_call(latin1, &Limits::default()).expect("latin-1").params,
            vec![Value::String("café".into())]
        );
        let untyped = "<methodCall><methodName>m</methodName><params><param><value>  </value></param><param><value>\n <!-- c --> x </value></param></params></methodCall>";
        assert_eq!(
            decode_call(untyped.as_bytes(), &Limits::default()).expect("untyped").params,
            vec![Value::String("  ".into()), Value::String("\n  x ".into())]
        );
        let no_params = "<methodCall><methodName>system.listMethods</methodName></methodCall>";
        assert_eq!(decode_call(no_params.as_bytes(), &Limits::default()).expect("no params").params, vec![]);
    }

    #[test]
    fn refusals_say_what_and_where() {
        let cases: &[(&str, &str)] = &[
            ("<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>", "\"x\" is not a valid int"),
            ("<methodCall><methodName>m</methodName><params><param><value><int>2147483648</int></value></param></params></methodCall>", "not a valid int"),
            ("<methodCall><methodName>m</methodName><params><param><value><float>1</float></value></param></params></methodCall>", "unknown value type <float>"),
            ("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><methodCall/>", "document type declarations are not allowed"),
            ("<methodCall><methodName>m</methodName><params><param><value>&xxe;</value></param></params></methodCall>", "undefined entity"),
            ("<methodCall><methodName>bad name</methodName></methodCall>", "invalid method name"),
            ("<methodCall><methodName>m</methodName></methodCall><x/>", "after the document"),
            ("<methodCall><methodName>m</methodName><params><param><value><struct><member><name>a</name></member></struct></value></param></params></methodCall>", "needs a <name> and a <value>"),
            ("<methodCall><methodName>m</methodName>", "expected <params>, found the end"),
            ("<methodCall><methodName>m</methodName></methodName>", "expected <params>, found </methodName>"),
            ("<methodCall><methodName>m</methodName><params><param><value><int a=1>1</int></value></param></params></methodCall>", "attribute value must be quoted"),
            ("<methodCall><methodName>m</methodName><params><param><value>a &b</value></param></params></methodCall>", "'&' without ';'"),
        ];
        for (xml, want) in cases {
            let e = decode_call(xml.as_bytes(), &Limits::default()).expect_err(xml);
            assert!(e.to_string().contains(want), "{xml}: {e}");
        }
        let deep = format!(
            "<methodCall><methodName>m</methodName><params><param>{}{}</param></params></methodCall>",
            "<value><array><data>".repeat(100),
            "</data></array></value>".repeat(100)
        );
        assert!(decode_call(deep.as_bytes(), &Limits::default()).expect_err("deep").message.contains("deeper than 64"));
        let big = encode_call("m", &[Value::String("x".repeat(1000))]);
        let small = Limits { max_body: 500, ..Limits::default() };
        assert!(decode_call(big.as_bytes(), &small).expect_err("big").message.contains("exceeds the limit"));
        let e = decode_call(b"<methodCall>\n<methodName>m</methodName>\n<params><param><value><boolean>2</boolean></value></param></params></methodCall>", &Limits::default()).expect_err("bool");
        assert_eq!((e.line, e.fault_code), (3, Fault::INVALID_REQUEST));
        let fault_without_code = "<methodResponse><fault><value><struct><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>";
        assert!(decode_response(fault_without_code.as_bytes(), &Limits::default()).is_err());
    }
}
