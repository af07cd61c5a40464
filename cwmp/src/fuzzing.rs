//! The property the decode fuzz target checks, shared with the corpus replay test.

use crate::{Envelope, Limits, QuirkKind};

/// Decodes `data` strictly and leniently. Whatever decodes must re-encode to something that
/// decodes strictly to the same value; what decodes strictly must decode leniently to the same
/// value, with no quirk that changed how it was read. Panics when a property does not hold (a
/// bug); returns whether `data` decoded either way.
pub fn check_decode(data: &[u8]) -> bool {
    let limits = Limits { max_body: 1 << 20, ..Limits::default() };
    let strict = Envelope::decode(data, &limits);
    let lenient = Envelope::decode_lenient(data, &limits);
    if let Ok(env) = &strict {
        re_encodes(env, &limits);
        match &lenient {
            Ok(d) => {
                assert_eq!(&d.envelope, env, "lenient decoding reads a strict message differently");
                for q in &d.quirks.list {
                    assert!(
                        matches!(
                            q.kind,
                            QuirkKind::UntypedValue
                                | QuirkKind::UnknownType { .. }
                                | QuirkKind::ArrayCount { .. }
                                | QuirkKind::NoId
                                | QuirkKind::EnvelopeNamespace
                                | QuirkKind::NoCwmpNamespace
                        ),
                        "a message strict decoding accepts has quirk {q}"
                    );
                }
            }
            Err(e) => panic!("strict decoding accepts what lenient decoding refuses: {e}"),
        }
    }
    if let Ok(d) = &lenient {
        re_encodes(&d.envelope, &limits);
        assert!(d.quirks.list.len() <= crate::quirk::MAX_QUIRKS);
    }
    strict.is_ok() || lenient.is_ok()
}

fn re_encodes(env: &Envelope, limits: &Limits) {
    let again = env.encode();
    match Envelope::decode(again.as_bytes(), &Limits { max_body: usize::MAX, ..*limits }) {
        Ok(back) => assert_eq!(&back, env, "re-encoded message decodes differently:\n{again}"),
        Err(e) => panic!("re-encoded message does not decode: {e}\n{again}"),
    }
}

/// Parses `data` into the element tree only (no message mapping); the node count. For profiling.
pub fn parse_tree_only(data: &[u8]) -> usize {
    let Ok(text) = crate::xml::to_utf8(data) else { return 0 };
    crate::xml::Doc::parse(&text, &Limits::default(), false).map_or(0, |d| d.len())
}
