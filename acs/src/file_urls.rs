//! The URLs devices fetch files from (`GET /files/<name>` on the CWMP listener): each Download
//! names its file with a URL signed for that device and good for [`LIFETIME`] seconds, so the
//! listener serves a file only to the device the ACS sent it to, and no one can list or guess
//! the operator's files. `?device=<DeviceId>&expires=<unix seconds>&sig=<HMAC-SHA256, hex>`; the
//! key is kept in the store, so URLs given before a restart stay good.

use ring::hmac;

use crate::nbi::{encode, query_params};

/// How long a Download's URL is good (a CPE may delay the transfer; TR-069 lets it).
pub const LIFETIME: i64 = 2 * 24 * 3600;

/// Makes and checks the signed URLs.
#[derive(Clone)]
pub struct FileUrls {
    key: hmac::Key,
    base: String,
}

impl std::fmt::Debug for FileUrls {
    /// The base URL only: the key is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileUrls").field("base", &self.base).finish_non_exhaustive()
    }
}

/// Why a file URL is refused (the listener answers 403 with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadUrl {
    /// No `device`, `expires` or `sig`.
    #[error("a file is fetched with the URL its Download gave (signed for one device); this one is not signed")]
    Unsigned,
    /// The signature does not match.
    #[error("the file URL's signature does not match")]
    Forged,
    /// Past `expires`.
    #[error("the file URL has expired; the ACS gives a new one with the next Download")]
    Expired,
}

impl FileUrls {
    /// With this secret `key` (32 bytes) and the base URL devices reach the listener at.
    pub fn new(key: &[u8], base: &str) -> FileUrls {
        FileUrls { key: hmac::Key::new(hmac::HMAC_SHA256, key), base: base.trim_end_matches('/').to_string() }
    }

    fn sign(&self, file: &str, device: &str, expires: i64) -> String {
        let tag = hmac::sign(&self.key, format!("files\n{file}\n{device}\n{expires}").as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The URL `device` downloads `file` from, made at `now`.
    pub fn url(&self, device: &str, file: &str, now: i64) -> String {
        let expires = now + LIFETIME;
        format!(
            "{}/{}?device={}&expires={expires}&sig={}",
            self.base,
            encode(file),
            encode(device),
            self.sign(file, device, expires)
        )
    }

    /// Checks the query of a request for `file` at `now`: the device it was signed for.
    pub fn check(&self, file: &str, query: Option<&str>, now: i64) -> Result<String, BadUrl> {
        let q = query_params(query);
        let (Some(device), Some(expires), Some(sig)) = (q.get("device"), q.get("expires"), q.get("sig")) else {
            return Err(BadUrl::Unsigned);
        };
        let expires: i64 = expires.parse().map_err(|_| BadUrl::Forged)?;
        let bytes: Option<Vec<u8>> = (sig.len() == 64)
            .then(|| (0..32).map(|i| u8::from_str_radix(sig.get(2 * i..2 * i + 2)?, 16).ok()).collect())
            .flatten();
        let Some(bytes) = bytes else { return Err(BadUrl::Forged) };
        hmac::verify(&self.key, format!("files\n{file}\n{device}\n{expires}").as_bytes(), &bytes)
            .map_err(|_| BadUrl::Forged)?;
        if now > expires {
            return Err(BadUrl::Expired);
        }
        Ok(device.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> &str {
        url.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    #[test]
    fn a_url_is_good_for_its_file_and_device_until_it_expires() {
        let urls = FileUrls::new(&[7; 32], "http://acs:7547/files/");
        let url = urls.url("00A0B1-CPE-1", "fw 1.bin", 1000);
        assert!(url.starts_with("http://acs:7547/files/fw%201.bin?device=00A0B1-CPE-1&expires=173800&sig="), "{url}");
        assert_eq!(urls.check("fw 1.bin", Some(query(&url)), 1000), Ok("00A0B1-CPE-1".into()));
        assert_eq!(urls.check("fw 1.bin", Some(query(&url)), 1000 + LIFETIME + 1), Err(BadUrl::Expired));
        assert_eq!(urls.check("other.bin", Some(query(&url)), 1000), Err(BadUrl::Forged));
        let moved = query(&url).replace("CPE-1", "CPE-2");
        assert_eq!(urls.check("fw 1.bin", Some(&moved), 1000), Err(BadUrl::Forged));
        let later = query(&url).replace("expires=173800", "expires=999999");
        assert_eq!(urls.check("fw 1.bin", Some(&later), 1000), Err(BadUrl::Forged));
        assert_eq!(urls.check("fw 1.bin", None, 1000), Err(BadUrl::Unsigned));
        assert_eq!(urls.check("fw 1.bin", Some("device=x&expires=1&sig=zz"), 0), Err(BadUrl::Forged));
        let other_key = FileUrls::new(&[8; 32], "http://acs:7547/files");
        assert_eq!(other_key.check("fw 1.bin", Some(query(&url)), 1000), Err(BadUrl::Forged));
    }
}
