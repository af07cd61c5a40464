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

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    /// No Authorization header.
    Missing,
    #[error("malformed Authorization header")]
    /// The header is not Basic or Digest as expected.
    Malformed,
    #[error("unknown user {0:?}")]
    /// No such user.
    UnknownUser(String),
    #[error("wrong password for {0:?}")]
    /// The user exists; the password (or digest) is wrong.
    WrongPassword(String),
    #[error("stale or forged nonce")]
    /// The nonce is expired or was not made here.
    BadNonce,
}

/// The server side: challenges and checks.
#[derive(Clone)]
pub struct Verifier {
    realm: String,
    secret: [u8; 32],
    /// Seconds a nonce stays valid.
    pub nonce_lifetime: i64,
    /// Accept Basic (over TLS, or when the operator allows it).
    pub allow_basic: bool,
}

impl Verifier {
    /// A verifier for `realm` whose nonces are MACed with `secret`.
    pub fn new(realm: &str, secret: [u8; 32]) -> Verifier {
        Verifier { realm: realm.into(), secret, nonce_lifetime: 300, allow_basic: true }
    }

    fn mac(&self, stamp: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(stamp.as_bytes());
        h.finalize().iter().take(16).map(|x| format!("{x:02x}")).collect()
    }

    /// A fresh nonce for time `now` (Unix seconds).
    pub fn nonce(&self, now: i64) -> String {
        let stamp = format!("{now:x}");
        format!("{stamp}.{}", self.mac(&stamp))
    }

    fn nonce_ok(&self, nonce: &str, now: i64) -> bool {
        let Some((stamp, mac)) = nonce.split_once('.') else { return false };
        let Ok(t) = i64::from_str_radix(stamp, 16) else { return false };
        mac == self.mac(stamp) && now >= t && now - t <= self.nonce_lifetime
    }

    /// `WWW-Authenticate` values to send with a 401 (SHA-256 first, then MD5).
    pub fn challenges(&self, now: i64) -> Vec<String> {
        let nonce = self.nonce(now);
        let mut v: Vec<String> = [Algorithm::Sha256, Algorithm::Md5]
            .iter()
            .map(|a| {
                format!("Digest realm=\"{}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\"", self.realm, a.name())
            })
            .collect();
        if self.allow_basic {
            v.push(format!("Basic realm=\"{}\"", self.realm));
        }
        v
    }

    /// Checks an `Authorization` header; `password` looks a user's password up. Returns the user.
    pub fn verify(
        &self,
        method: &str,
        header: Option<&str>,
        password: impl Fn(&str) -> Option<String>,
        now: i64,
    ) -> Result<String, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        if let Some(b) = header.strip_prefix("Basic ") {
            if !self.allow_basic {
                return Err(AuthError::Malformed);
            }
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| AuthError::Malformed)?;
            let raw = String::from_utf8(raw).map_err(|_| AuthError::Malformed)?;
            let (user, pass) = raw.split_once(':').ok_or(AuthError::Malformed)?;
            let want = password(user).ok_or_else(|| AuthError::UnknownUser(user.into()))?;
            return if ct_eq(pass.as_bytes(), want.as_bytes()) {
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
        if !self.nonce_ok(nonce, now) {
            return Err(AuthError::BadNonce);
        }
        let pass = password(user).ok_or_else(|| AuthError::UnknownUser(user.into()))?;
        let ha1 = algo.hash(&format!("{user}:{}:{pass}", self.realm));
        let ha2 = algo.hash(&format!("{method}:{uri}"));
        let want = match get(&p, "qop") {
            Some(qop) => {
                let nc = get(&p, "nc").ok_or(AuthError::Malformed)?;
                let cnonce = get(&p, "cnonce").ok_or(AuthError::Malformed)?;
                algo.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
            }
            None => algo.hash(&format!("{ha1}:{nonce}:{ha2}")),
        };
        if ct_eq(want.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
            Ok(user.into())
        } else {
            Err(AuthError::WrongPassword(user.into()))
        }
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

    fn pw(u: &str) -> Option<String> {
        (u == "cpe").then(|| "secret".to_string())
    }

    #[test]
    fn digest_round_trip_both_algorithms_and_refusals() {
        let v = Verifier::new("acs", [7; 32]);
        for ch in v.challenges(1000).iter().filter(|c| c.starts_with("Digest")) {
            let auth = answer(ch, "POST", "/", "cpe", "secret", "abc").expect("answer");
            assert_eq!(v.verify("POST", Some(&auth), pw, 1010), Ok("cpe".into()), "{ch}");
            // A nonce is good from any connection until it expires.
            assert_eq!(v.verify("POST", Some(&auth), pw, 1200), Ok("cpe".into()));
            assert_eq!(v.verify("POST", Some(&auth), pw, 1400), Err(AuthError::BadNonce));
            let wrong = answer(ch, "POST", "/", "cpe", "nope", "abc").expect("answer");
            assert_eq!(v.verify("POST", Some(&wrong), pw, 1010), Err(AuthError::WrongPassword("cpe".into())));
            let forged = auth.replace(&v.nonce(1000), &format!("{:x}.{}", 1000, "0".repeat(32)));
            assert_eq!(v.verify("POST", Some(&forged), pw, 1010), Err(AuthError::BadNonce));
        }
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
        use base64::Engine as _;
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("cpe:secret"));
        assert_eq!(v.verify("POST", Some(&basic), pw, 0), Ok("cpe".into()));
        assert_eq!(v.verify("POST", None, pw, 0), Err(AuthError::Missing));
    }
}
