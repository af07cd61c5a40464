//! HTTP authentication of TR-069 (section 3.4.4): Digest (RFC 7616, MD5 and SHA-256, qop=auth)
//! and Basic, both sides and sans-IO: an ACS verifying CPEs and a CPE verifying connection
//! requests use [`Verifier`]; a CPE answering an ACS's challenge and an ACS making a connection
//! request use [`answer`]. Nonces are stateless (a time stamp and its MAC), so they are not tied
//! to one TCP connection. The crate draws no randomness: the verifier's secret and the client
//! nonce are arguments (the hosts take them from `http_shell::random`).

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// Digest hash algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 7616 and the older RFC 2617).
    Md5,
    /// SHA-256 (RFC 7616).
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
    fn parse(s: &str) -> Option<Algorithm> {
        match s.trim_matches('"').to_ascii_uppercase().as_str() {
            "MD5" | "" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }
    fn hash(self, data: &str) -> String {
        fn hex(b: &[u8]) -> String {
            b.iter().map(|x| format!("{x:02x}")).collect()
        }
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

/// Parses `Digest k=v, k="v", ...` into pairs.
pub fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

/// Why a request was not authenticated. The variants are for the log; the peer gets the same
/// answer for all of them (a 401 with fresh challenges), so it cannot tell an unknown user from a
/// wrong password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    /// No Authorization header.
    Missing,
    #[error("malformed Authorization header")]
    /// The header is not Basic or Digest as expected.
    Malformed,
    #[error("Basic authentication is not accepted here (Digest, or Basic under TLS)")]
    /// Basic offered where only Digest is accepted.
    BasicRefused,
    #[error("unknown user {0:?}")]
    /// No such user.
    UnknownUser(String),
    #[error("wrong password for {0:?}")]
    /// The user exists; the password (or digest) is wrong.
    WrongPassword(String),
    #[error("stale or forged nonce")]
    /// The nonce is expired or was not made here.
    BadNonce,
    #[error("digest for URI {got:?} presented on {want:?}")]
    /// The Digest was computed for another request URI.
    WrongUri {
        /// The `uri` the digest covers.
        got: String,
        /// The URI of the request it came with.
        want: String,
    },
    #[error("replayed digest (nonce count {0} already seen)")]
    /// The nonce count is not above the last one accepted for that nonce: a captured header sent
    /// again.
    Replayed(u64),
}

/// What a verifier keeps of a user's password: the Digest `H(user:realm:password)` for each
/// algorithm (RFC 7616 section 3.4.2; the form of a Digest secret that can be stored instead of
/// the password itself). It is password-equivalent for this realm and nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    /// MD5 of `user:realm:password`, lower-case hex.
    pub md5: String,
    /// SHA-256 of `user:realm:password`, lower-case hex.
    pub sha256: String,
}

impl std::fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ha1(..)")
    }
}

impl Ha1 {
    /// The secrets of `user` with `password` in `realm`.
    pub fn of(user: &str, realm: &str, password: &str) -> Ha1 {
        let a1 = format!("{user}:{realm}:{password}");
        Ha1 { md5: Algorithm::Md5.hash(&a1), sha256: Algorithm::Sha256.hash(&a1) }
    }

    fn get(&self, algo: Algorithm) -> &str {
        match algo {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
        }
    }
}

/// One request, as far as authentication looks at it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The request target as it came (origin form: path and query).
    pub uri: &'a str,
    /// The `Authorization` header, if any.
    pub header: Option<&'a str>,
    /// Whether the request came over TLS (Basic is accepted only then, and only when allowed).
    pub tls: bool,
}

/// Nonce counts accepted so far, per nonce, so that a captured header cannot be sent again.
#[derive(Debug, Default)]
struct Seen {
    /// nonce -> (its time stamp, highest nonce count accepted).
    counts: std::collections::HashMap<String, (i64, u64)>,
    /// Nonces stamped at or before this were forgotten to make room: refused as stale (the
    /// client asks again and gets a fresh one), so a forgotten nonce is never accepted twice.
    /// `None` until the memory was first full.
    forgotten_until: Option<i64>,
}

/// Most nonces remembered at once (about 10 MB); beyond that the oldest quarter is forgotten
/// early, and their headers are refused as stale by [`Seen::check`], never accepted twice.
const MAX_SEEN: usize = 100_000;

impl Seen {
    /// Records `nc` for `nonce` (stamped `stamp`) when it is above the last one; else refuses.
    fn check(&mut self, nonce: &str, stamp: i64, nc: u64, now: i64, lifetime: i64) -> Result<(), AuthError> {
        if let Some((_, last)) = self.counts.get(nonce) {
            if nc <= *last {
                return Err(AuthError::Replayed(nc));
            }
        } else {
            if self.forgotten_until.is_some_and(|f| stamp <= f) {
                return Err(AuthError::BadNonce);
            }
            if self.counts.len() >= MAX_SEEN {
                self.counts.retain(|_, (t, _)| now - *t <= lifetime);
            }
            if self.counts.len() >= MAX_SEEN {
                let mut stamps: Vec<i64> = self.counts.values().map(|(t, _)| *t).collect();
                stamps.sort_unstable();
                let cutoff = stamps[stamps.len() / 4];
                self.counts.retain(|_, (t, _)| *t > cutoff);
                let until = self.forgotten_until.map_or(cutoff, |f| f.max(cutoff));
                self.forgotten_until = Some(until);
                if stamp <= until {
                    return Err(AuthError::BadNonce);
                }
            }
        }
        self.counts.insert(nonce.to_string(), (stamp, nc));
        Ok(())
    }
}

/// The server side: challenges and checks. Clones share what they have seen of nonce counts.
#[derive(Clone)]
pub struct Verifier {
    realm: String,
    secret: [u8; 32],
    /// Seconds a nonce stays valid.
    pub nonce_lifetime: i64,
    /// Accept Basic over TLS (never over plain HTTP).
    pub allow_basic: bool,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
}

impl Verifier {
    /// A verifier for `realm` whose nonces are MACed with `secret`.
    pub fn new(realm: &str, secret: [u8; 32]) -> Verifier {
        Verifier { realm: realm.into(), secret, nonce_lifetime: 300, allow_basic: true, seen: Default::default() }
    }

    /// The realm challenges name.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, stamp: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(stamp.as_bytes());
        h.finalize().iter().take(16).map(|x| format!("{x:02x}")).collect()
    }

    /// A fresh nonce for time `now` (Unix seconds): a time stamp, a random-looking part made
    /// from a process-wide counter, and their MAC, so two challenges in the same second differ.
    pub fn nonce(&self, now: i64) -> String {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stamp = format!("{now:x}-{n:x}");
        format!("{stamp}.{}", self.mac(&stamp))
    }

    /// The time stamp of a nonce made here and still valid at `now`.
    fn nonce_time(&self, nonce: &str, now: i64) -> Option<i64> {
        let (stamp, mac) = nonce.split_once('.')?;
        let t = i64::from_str_radix(stamp.split('-').next()?, 16).ok()?;
        (ct_eq(mac.as_bytes(), self.mac(stamp).as_bytes()) && now >= t && now - t <= self.nonce_lifetime).then_some(t)
    }

    /// `WWW-Authenticate` values to send with a 401 (SHA-256 first, then MD5; Basic only when
    /// `tls` and allowed).
    pub fn challenges_for(&self, now: i64, tls: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        let mut v: Vec<String> = [Algorithm::Sha256, Algorithm::Md5]
            .iter()
            .map(|a| {
                format!("Digest realm=\"{}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\"", self.realm, a.name())
            })
            .collect();
        if self.allow_basic && tls {
            v.push(format!("Basic realm=\"{}\"", self.realm));
        }
        v
    }

    /// Digest challenges only (for listeners that never take Basic).
    pub fn challenges(&self, now: i64) -> Vec<String> {
        self.challenges_for(now, false)
    }

    /// Checks `attempt`; `secret` looks a user's [`Ha1`] up. Returns the user. A Digest must use
    /// `qop=auth`, cover this request's URI, carry a nonce made here within its lifetime, and a
    /// nonce count above any accepted before with that nonce. Basic is taken only over TLS and
    /// when [`Verifier::allow_basic`]. An unknown user costs the same hashing as a known one.
    pub fn check(
        &self,
        attempt: Attempt<'_>,
        secret: impl Fn(&str) -> Option<Ha1>,
        now: i64,
    ) -> Result<String, AuthError> {
        let header = attempt.header.ok_or(AuthError::Missing)?;
        if let Some(b) = header.strip_prefix("Basic ") {
            if !(self.allow_basic && attempt.tls) {
                return Err(AuthError::BasicRefused);
            }
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| AuthError::Malformed)?;
            let raw = String::from_utf8(raw).map_err(|_| AuthError::Malformed)?;
            let (user, pass) = raw.split_once(':').ok_or(AuthError::Malformed)?;
            let given = Ha1::of(user, &self.realm, pass);
            let Some(want) = secret(user) else { return Err(AuthError::UnknownUser(user.into())) };
            return if ct_eq(given.sha256.as_bytes(), want.sha256.as_bytes()) {
                Ok(user.into())
            } else {
                Err(AuthError::WrongPassword(user.into()))
            };
        }
        let d = header.strip_prefix("Digest ").ok_or(AuthError::Malformed)?;
        let p = parse_params(d);
        let user = get(&p, "username").ok_or(AuthError::Malformed)?;
        let nonce = get(&p, "nonce").ok_or(AuthError::Malformed)?;
        let uri = get(&p, "uri").ok_or(AuthError::Malformed)?;
        let response = get(&p, "response").ok_or(AuthError::Malformed)?;
        let algo = Algorithm::parse(get(&p, "algorithm").unwrap_or("MD5")).ok_or(AuthError::Malformed)?;
        if get(&p, "realm") != Some(self.realm.as_str()) {
            return Err(AuthError::Malformed);
        }
        // Without qop there is no nonce count, and nothing to tell a replay by.
        if get(&p, "qop") != Some("auth") {
            return Err(AuthError::Malformed);
        }
        let nc_text = get(&p, "nc").ok_or(AuthError::Malformed)?;
        let nc = u64::from_str_radix(nc_text, 16).map_err(|_| AuthError::Malformed)?;
        let cnonce = get(&p, "cnonce").ok_or(AuthError::Malformed)?;
        if !same_target(uri, attempt.uri) {
            return Err(AuthError::WrongUri { got: uri.into(), want: attempt.uri.into() });
        }
        let stamp = self.nonce_time(nonce, now).ok_or(AuthError::BadNonce)?;
        // An unknown user is hashed against a throw-away secret, so the answer takes as long.
        let known = secret(user);
        let ha1 = known.clone().unwrap_or_else(|| Ha1::of(user, &self.realm, &self.mac(user)));
        let ha2 = algo.hash(&format!("{}:{uri}", attempt.method));
        let want = algo.hash(&format!("{}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}", ha1.get(algo)));
        let matches = ct_eq(want.as_bytes(), response.to_ascii_lowercase().as_bytes());
        match (known, matches) {
            (None, _) => Err(AuthError::UnknownUser(user.into())),
            (Some(_), false) => Err(AuthError::WrongPassword(user.into())),
            (Some(_), true) => {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.check(nonce, stamp, nc, now, self.nonce_lifetime)?;
                Ok(user.into())
            }
        }
    }

    /// [`Verifier::check`] for a peer whose password is known in clear (a CPE checking the ACS's
    /// connection request).
    pub fn check_password(
        &self,
        attempt: Attempt<'_>,
        password: impl Fn(&str) -> Option<String>,
        now: i64,
    ) -> Result<String, AuthError> {
        self.check(attempt, |u| password(u).map(|p| Ha1::of(u, &self.realm, &p)), now)
    }

    /// The older entry point: a request on `/` over plain HTTP with a password known in clear.
    /// Kept for callers that do not know their request URI yet; the URI is then not compared.
    pub fn verify(
        &self,
        method: &str,
        header: Option<&str>,
        password: impl Fn(&str) -> Option<String>,
        now: i64,
    ) -> Result<String, AuthError> {
        let uri = header
            .and_then(|h| h.strip_prefix("Digest "))
            .and_then(|d| get(&parse_params(d), "uri").map(str::to_string))
            .unwrap_or_else(|| "/".into());
        self.check_password(Attempt { method, uri: &uri, header, tls: false }, password, now)
    }
}

/// Whether a Digest's `uri` names the request target `actual`: the same origin-form text, or an
/// absolute URI whose path and query are it.
fn same_target(digest_uri: &str, actual: &str) -> bool {
    if digest_uri == actual {
        return true;
    }
    let rest = digest_uri.strip_prefix("http://").or_else(|| digest_uri.strip_prefix("https://"));
    match rest.and_then(|r| r.find('/').map(|i| &r[i..])) {
        Some(path) => path == actual,
        None => false,
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client side: an `Authorization: Digest ...` answering `challenge` (a `WWW-Authenticate`
/// value), or None when the challenge is not Digest or names an unknown algorithm.
pub fn answer(challenge: &str, method: &str, uri: &str, user: &str, pass: &str, cnonce: &str) -> Option<String> {
    let p = parse_params(challenge.strip_prefix("Digest ")?);
    let realm = get(&p, "realm").unwrap_or("");
    let nonce = get(&p, "nonce")?;
    let algo = Algorithm::parse(get(&p, "algorithm").unwrap_or("MD5"))?;
    let ha1 = algo.hash(&format!("{user}:{realm}:{pass}"));
    let ha2 = algo.hash(&format!("{method}:{uri}"));
    let nc = "00000001";
    let qop = get(&p, "qop").map(|q| if q.split(',').any(|x| x.trim() == "auth") { "auth" } else { q });
    let (response, qop_part) = match qop {
        Some(q) => (
            algo.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{q}:{ha2}")),
            format!(", qop={q}, nc={nc}, cnonce=\"{cnonce}\""),
        ),
        None => (algo.hash(&format!("{ha1}:{nonce}:{ha2}")), String::new()),
    };
    let opaque = get(&p, "opaque").map(|o| format!(", opaque=\"{o}\"")).unwrap_or_default();
    Some(format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}, response=\"{response}\"{qop_part}{opaque}",
        algo.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_memory_of_nonces_forgets_the_oldest_and_never_accepts_them_again() {
        let mut seen = Seen::default();
        let lifetime = 300;
        // All within their lifetime (stamps 1000 + i/1000 at "now" 1100).
        for i in 0..MAX_SEEN {
            seen.check(&format!("n{i}"), 1000 + (i / 1000) as i64, 1, 1100, lifetime).expect("fresh");
        }
        seen.check("new", 1100, 1, 1100, lifetime).expect("room is made");
        assert!(seen.counts.len() < MAX_SEEN, "the oldest quarter went");
        // A forgotten nonce's next count is refused as stale, not taken as new.
        assert_eq!(seen.check("n0", 1000, 2, 1100, lifetime), Err(AuthError::BadNonce));
        // A remembered one goes on; its replay is refused.
        let kept = format!("n{}", MAX_SEEN - 1);
        let stamp = 1000 + ((MAX_SEEN - 1) / 1000) as i64;
        seen.check(&kept, stamp, 2, 1100, lifetime).expect("next count");
        assert_eq!(seen.check(&kept, stamp, 2, 1100, lifetime), Err(AuthError::Replayed(2)));
    }

    fn pw(u: &str) -> Option<String> {
        (u == "cpe").then(|| "secret".to_string())
    }

    fn post<'a>(uri: &'a str, header: &'a str) -> Attempt<'a> {
        Attempt { method: "POST", uri, header: Some(header), tls: false }
    }

    #[test]
    fn digest_round_trip_both_algorithms_and_refusals() {
        let v = Verifier::new("acs", [7; 32]);
        // Both challenges of one 401 share a nonce: each algorithm gets a 401 of its own here.
        for ch in (0..2).map(|i| v.challenges(1000)[i].clone()) {
            let ch = &ch;
            assert!(ch.starts_with("Digest"), "{ch}");
            let auth = answer(ch, "POST", "/", "cpe", "secret", "abc").expect("answer");
            assert_eq!(v.check_password(post("/", &auth), pw, 1010), Ok("cpe".into()), "{ch}");
            let wrong = answer(ch, "POST", "/", "cpe", "nope", "abc").expect("answer");
            assert_eq!(v.check_password(post("/", &wrong), pw, 1010), Err(AuthError::WrongPassword("cpe".into())));
            let unknown = answer(ch, "POST", "/", "nobody", "secret", "abc").expect("answer");
            assert_eq!(v.check_password(post("/", &unknown), pw, 1010), Err(AuthError::UnknownUser("nobody".into())));
        }
        let ch = &v.challenges(1000)[0];
        let auth = answer(ch, "POST", "/", "cpe", "secret", "abc").expect("answer");
        assert_eq!(v.check_password(post("/", &auth), pw, 1400), Err(AuthError::BadNonce), "expired");
        let nonce = get(&parse_params(&auth["Digest ".len()..]), "nonce").expect("nonce").to_string();
        let forged = auth.replace(&nonce, &format!("3e8-0.{}", "0".repeat(32)));
        assert_eq!(v.check_password(post("/", &forged), pw, 1010), Err(AuthError::BadNonce));
        // RFC 7616 3.9.1 example (MD5): the known response.
        let ch = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let a = answer(
            ch,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        .expect("answer");
        assert!(a.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""), "{a}");
        assert_eq!(v.check_password(Attempt { header: None, ..post("/", "") }, pw, 0), Err(AuthError::Missing));
    }

    #[test]
    fn a_captured_digest_is_not_accepted_twice_nor_on_another_uri() {
        let v = Verifier::new("acs", [7; 32]);
        let ch = &v.challenges(1000)[0];
        let auth = answer(ch, "POST", "/acs", "cpe", "secret", "abc").expect("answer");
        assert_eq!(
            v.check_password(post("/other", &auth), pw, 1001),
            Err(AuthError::WrongUri { got: "/acs".into(), want: "/other".into() })
        );
        assert_eq!(v.check_password(post("/acs", &auth), pw, 1001), Ok("cpe".into()));
        // The same header again, also through a clone of the verifier (the agent clones its own).
        assert_eq!(v.check_password(post("/acs", &auth), pw, 1002), Err(AuthError::Replayed(1)));
        assert_eq!(v.clone().check_password(post("/acs", &auth), pw, 1002), Err(AuthError::Replayed(1)));
        // The client's next request on the same nonce counts up and is taken.
        let next = auth.replace("nc=00000001", "nc=00000002");
        let p = parse_params(&next["Digest ".len()..]);
        let (nonce, cnonce) = (get(&p, "nonce").expect("nonce"), get(&p, "cnonce").expect("cnonce"));
        let ha1 = Ha1::of("cpe", "acs", "secret");
        let ha2 = Algorithm::Sha256.hash("POST:/acs");
        let response = Algorithm::Sha256.hash(&format!("{}:{nonce}:00000002:{cnonce}:auth:{ha2}", ha1.sha256));
        let old = get(&p, "response").expect("response").to_string();
        let next = next.replace(&old, &response);
        assert_eq!(v.check_password(post("/acs", &next), pw, 1003), Ok("cpe".into()));
        // An absolute URI in the digest names the same target.
        let ch = &v.challenges(1000)[0];
        let abs = answer(ch, "POST", "http://acs.example:7547/acs", "cpe", "secret", "x").expect("answer");
        assert_eq!(v.check_password(post("/acs", &abs), pw, 1001), Ok("cpe".into()));
        // Without qop there is no count to tell a replay by: refused.
        let bare = answer(&ch.replace("qop=\"auth\", ", ""), "POST", "/acs", "cpe", "secret", "x").expect("answer");
        assert_eq!(v.check_password(post("/acs", &bare), pw, 1001), Err(AuthError::Malformed));
    }

    #[test]
    fn basic_only_under_tls_and_when_allowed() {
        use base64::Engine as _;
        let mut v = Verifier::new("acs", [7; 32]);
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("cpe:secret"));
        assert_eq!(v.check_password(post("/", &basic), pw, 0), Err(AuthError::BasicRefused));
        assert!(!v.challenges_for(0, false).iter().any(|c| c.starts_with("Basic")));
        let tls = Attempt { tls: true, ..post("/", &basic) };
        assert_eq!(v.check_password(tls, pw, 0), Ok("cpe".into()));
        assert!(v.challenges_for(0, true).iter().any(|c| c.starts_with("Basic")));
        let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("cpe:nope"));
        assert_eq!(
            v.check_password(Attempt { tls: true, ..post("/", &wrong) }, pw, 0),
            Err(AuthError::WrongPassword("cpe".into()))
        );
        v.allow_basic = false;
        assert_eq!(v.check_password(tls, pw, 0), Err(AuthError::BasicRefused));
    }
}
