//! The property the decode fuzz target checks, shared with the corpus replay test.

use crate::{Envelope, Limits};

/// Decodes `data`; whatever decodes must re-encode to something that decodes to the same value.
/// Panics when the property does not hold (a bug); returns whether `data` decoded.
pub fn check_decode(data: &[u8]) -> bool {
    let limits = Limits { max_body: 1 << 20, ..Limits::default() };
    let Ok(env) = Envelope::decode(data, &limits) else {
        return false;
    };
    let again = env.encode();
    match Envelope::decode(again.as_bytes(), &Limits { max_body: usize::MAX, ..limits }) {
        Ok(back) => assert_eq!(back, env, "re-encoded message decodes differently:\n{again}"),
        Err(e) => panic!("re-encoded message does not decode: {e}\n{again}"),
    }
    true
}

/// Parses `data` into the element tree only (no message mapping); the node count. For profiling.
pub fn parse_tree_only(data: &[u8]) -> usize {
    let Ok(text) = crate::xml::to_utf8(data) else { return 0 };
    crate::xml::Doc::parse(&text, &Limits::default()).map_or(0, |d| d.len())
}
