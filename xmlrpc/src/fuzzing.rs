//! The property the decode fuzz target checks, shared with the corpus replay test.

use crate::codec::{decode_call, decode_response, encode_call, encode_response, Limits};

/// Decodes `data` as a call and as a response; whatever decodes must re-encode to an equal value.
/// NaN doubles compare unequal, so they are compared by their encoding. Returns how many decoded.
pub fn check_decode(data: &[u8]) -> usize {
    let limits = Limits { max_body: 1 << 20, max_depth: 64 };
    let mut n = 0;
    if let Ok(call) = decode_call(data, &limits) {
        let again = encode_call(&call.name, &call.params);
        let back = decode_call(again.as_bytes(), &limits).unwrap_or_else(|e| panic!("re-encoded call: {e}\n{again}"));
        assert_eq!(encode_call(&back.name, &back.params), again, "call changed on re-encoding");
        n += 1;
    }
    if let Ok(resp) = decode_response(data, &limits) {
        let again = encode_response(&resp);
        let back =
            decode_response(again.as_bytes(), &limits).unwrap_or_else(|e| panic!("re-encoded response: {e}\n{again}"));
        assert_eq!(encode_response(&back), again, "response changed on re-encoding");
        n += 1;
    }
    n
}
