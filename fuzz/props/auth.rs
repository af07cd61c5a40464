//! The property of the fuzz target `auth`: HTTP authentication headers as `cwmp::auth` reads
//! them, on both sides. Input: a first line `METHOD URI` (with ` tls` when the request came
//! over TLS), then the header value. It is checked as an `Authorization` header by a
//! [`Verifier`] (the ACS checking a CPE, a CPE checking a connection request) and answered as a
//! `WWW-Authenticate` challenge by [`answer`] (the ACS making a connection request). Included
//! with `#[path]` by the fuzz target and by `acs/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use cwmp::auth::{answer, parse_params, Attempt, AuthError, Ha1, Verifier};

/// The realm, the verifier's nonce secret and the clock of the property: the seed corpus holds
/// nonces made with them (`cargo test -p acs --test fuzz_replay -- --ignored write_seeds`).
pub const REALM: &str = "acs";
/// The verifier's secret.
pub const SECRET: [u8; 32] = [0x5a; 32];
/// Unix seconds at which every check runs.
pub const NOW: i64 = 1_800_000_000;
/// The users the verifier knows, with their passwords.
pub const USERS: &[(&str, &str)] = &[("cpe", "secret"), ("00D09E-vRGW-0001", "p@ss:word with space")];
/// The client nonce [`answer`] is given.
pub const CNONCE: &str = "0a4f113b";

/// A verifier as the property uses it, with nothing seen yet.
pub fn verifier() -> Verifier {
    Verifier::new(REALM, SECRET)
}

fn lookup(users: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<Ha1> {
    move |u| users.iter().find(|(name, _)| *name == u).map(|(name, pass)| Ha1::of(name, REALM, pass))
}

/// The same users, each password changed.
const WRONG: &[(&str, &str)] = &[("cpe", "secreT"), ("00D09E-vRGW-0001", "p@ss:word with spacE")];

/// `(method, uri, tls, header)` of an input, or None when it has no first line.
pub fn split(data: &[u8]) -> Option<(String, String, bool, String)> {
    let text = String::from_utf8_lossy(data);
    let (first, header) = text.split_once('\n')?;
    let mut words = first.split(' ');
    let method = words.next()?.to_string();
    let uri = words.next()?.to_string();
    let tls = words.next() == Some("tls");
    Some((method, uri, tls, header.to_string()))
}

/// Checks the property on one input; panics when it does not hold. Returns whether the input
/// was accepted on either side (a header the verifier took, or a challenge whose answer it took).
pub fn check_auth(data: &[u8]) -> bool {
    let Some((method, uri, tls, header)) = split(data) else { return false };
    let accepted_header = check_header(&method, &uri, tls, &header);
    let accepted_challenge = check_challenge(&method, &uri, &header);
    accepted_header || accepted_challenge
}

/// The parameter list of a Digest header or challenge: parsing what was parsed, re-encoded,
/// gives the same pairs (when no value holds a quote, which the quoted form cannot carry).
fn params_round_trip(header: &str) {
    let Some(d) = header.strip_prefix("Digest ") else { return };
    let p = parse_params(d);
    for (k, _) in &p {
        assert_eq!(k, &k.to_ascii_lowercase(), "keys are lower-cased: {k:?}");
        assert_eq!(k, k.trim(), "keys are trimmed: {k:?}");
    }
    if p.iter().all(|(k, v)| !v.contains('"') && !k.is_empty() && !k.starts_with(',')) {
        let again: Vec<String> = p.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        assert_eq!(parse_params(&again.join(", ")), p, "re-encoded parameters parse differently: {header:?}");
    }
}

pub fn check_header(method: &str, uri: &str, tls: bool, header: &str) -> bool {
    params_round_trip(header);
    let attempt = Attempt { method, uri, header: Some(header), tls };
    let v = verifier();
    let Ok(user) = v.check(attempt, lookup(USERS), NOW) else { return false };
    assert!(USERS.iter().any(|(u, _)| *u == user), "accepted an unknown user {user:?}");
    // Another password for the same user: refused.
    assert_eq!(
        verifier().check(attempt, lookup(WRONG), NOW),
        Err(AuthError::WrongPassword(user.clone())),
        "accepted with a wrong password: {header:?}"
    );
    if header.starts_with("Basic ") {
        assert!(tls, "Basic accepted over plain HTTP");
        let mut no_basic = verifier();
        no_basic.allow_basic = false;
        assert_eq!(no_basic.check(attempt, lookup(USERS), NOW), Err(AuthError::BasicRefused));
        let plain = Attempt { tls: false, ..attempt };
        assert_eq!(verifier().check(plain, lookup(USERS), NOW), Err(AuthError::BasicRefused));
        return true;
    }
    assert!(header.starts_with("Digest "), "accepted a header that is neither Basic nor Digest: {header:?}");
    // The same header again: a replay.
    assert!(
        matches!(v.check(attempt, lookup(USERS), NOW), Err(AuthError::Replayed(_))),
        "the same Digest header was accepted twice: {header:?}"
    );
    // On another request URI: refused.
    let elsewhere = format!("{uri}-elsewhere");
    let moved = Attempt { uri: &elsewhere, ..attempt };
    assert!(
        matches!(verifier().check(moved, lookup(USERS), NOW), Err(AuthError::WrongUri { .. })),
        "a Digest header was accepted on another URI: {header:?}"
    );
    // Long after: the nonce is stale.
    assert_eq!(verifier().check(attempt, lookup(USERS), NOW + 3600), Err(AuthError::BadNonce));
    true
}

/// The header as a challenge: answering never panics, and the answer to a challenge this
/// verifier made (realm, `qop=auth`, a nonce of its own) is one it accepts.
fn check_challenge(method: &str, uri: &str, challenge: &str) -> bool {
    params_round_trip(challenge);
    let Some(reply) = answer(challenge, method, uri, "cpe", "secret", CNONCE) else { return false };
    let p =
        parse_params(reply.strip_prefix("Digest ").unwrap_or_else(|| panic!("an answer that is not Digest: {reply}")));
    let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("username"), Some("cpe"), "{reply}");
    let c = parse_params(challenge.strip_prefix("Digest ").unwrap_or_default());
    let cget = |k: &str| c.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let ours = cget("realm") == Some(REALM)
        && cget("qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"))
        && cget("nonce").is_some_and(|n| !n.contains('"'))
        && !uri.contains('"')
        && method.bytes().all(|b| b.is_ascii_uppercase());
    if !ours {
        return false;
    }
    let attempt = Attempt { method, uri, header: Some(&reply), tls: false };
    match verifier().check(attempt, lookup(USERS), NOW) {
        Ok(user) => {
            assert_eq!(user, "cpe");
            true
        }
        // A nonce not made here, or one out of date, is all that may refuse it.
        Err(AuthError::BadNonce) => false,
        Err(e) => panic!("the answer to our own challenge was refused ({e}):\n{challenge}\n{reply}"),
    }
}
