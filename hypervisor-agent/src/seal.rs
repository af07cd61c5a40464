//! Sealing what travels with a vRGW in a ColdContext migration (its configuration, secrets
//! included, and its virtual CWMP device's state) to the destination host, through the ACS that
//! carries it without being able to read it.
//!
//! The destination makes an X25519 key pair at Prepare ([`Opener`], memory only) and shows the
//! public half; the source agrees a key with it from a key pair of its own made for this one
//! message, derives a ChaCha20-Poly1305 key with HKDF-SHA256 (salt: both public halves), and
//! sends its public half with the ciphertext. Each key seals one message, so the nonce is zero.

use base64::Engine as _;
use ring::{aead, agreement, hkdf, rand};

/// Why a context could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The peer's public key is not an X25519 public key in base64.
    #[error("the destination's key is not an X25519 public key in base64")]
    BadKey,
    /// The sealed text is not base64, too short, or does not open with this key (another
    /// destination's, altered on the way, or cut).
    #[error("the context does not open with this host's key (altered, cut, or sealed to another host)")]
    Unopenable,
    /// The system's random source failed.
    #[error("no randomness: {0}")]
    Random(&'static str),
}

const INFO: &[u8] = b"vrgw migration context v1";
const PUBLIC_LEN: usize = 32;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn cipher(shared: &[u8], sender: &[u8], receiver: &[u8]) -> Result<aead::LessSafeKey, ring::error::Unspecified> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &[sender, receiver].concat());
    let prk = salt.extract(shared);
    let okm = prk.expand(&[INFO], &aead::CHACHA20_POLY1305)?;
    Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
}

/// The destination's private half, good for opening one context.
pub struct Opener {
    private: agreement::EphemeralPrivateKey,
    public: Vec<u8>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener").field("public", &self.public_key()).finish()
    }
}

impl Opener {
    /// A new key pair.
    pub fn new() -> Result<Opener, SealError> {
        let rng = rand::SystemRandom::new();
        let private = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng)
            .map_err(|_| SealError::Random("making a key pair"))?;
        let public =
            private.compute_public_key().map_err(|_| SealError::Random("computing the public key"))?.as_ref().to_vec();
        Ok(Opener { private, public })
    }

    /// The public half, base64: what the source seals to.
    pub fn public_key(&self) -> String {
        b64().encode(&self.public)
    }

    /// Opens a context [`seal`]ed to this key (the key is used up either way).
    pub fn open(self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = b64().decode(sealed.trim()).map_err(|_| SealError::Unopenable)?;
        if !shaped(sealed) {
            return Err(SealError::Unopenable);
        }
        let (sender, body) = bytes.split_at(PUBLIC_LEN);
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, sender);
        let receiver = self.public;
        let key = agreement::agree_ephemeral(self.private, &peer, |shared| cipher(shared, sender, &receiver))
            .map_err(|_| SealError::Unopenable)?
            .map_err(|_| SealError::Unopenable)?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(aead::Nonce::assume_unique_for_key([0; 12]), aead::Aad::empty(), &mut body)
            .map_err(|_| SealError::Unopenable)?;
        Ok(plain.to_vec())
    }
}

/// Whether `text` has the shape of a sealed context (base64 of a sender's public key, a
/// ciphertext and its tag): what [`Opener::open`] tries to open.
pub fn shaped(text: &str) -> bool {
    b64().decode(text.trim()).is_ok_and(|b| b.len() >= PUBLIC_LEN + aead::CHACHA20_POLY1305.tag_len())
}

/// Seals `plain` to `peer_public` (an [`Opener::public_key`]), as base64.
pub fn seal(peer_public: &str, plain: &[u8]) -> Result<String, SealError> {
    let receiver = b64().decode(peer_public.trim()).map_err(|_| SealError::BadKey)?;
    if receiver.len() != PUBLIC_LEN {
        return Err(SealError::BadKey);
    }
    let rng = rand::SystemRandom::new();
    let private = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng)
        .map_err(|_| SealError::Random("making a key pair"))?;
    let sender =
        private.compute_public_key().map_err(|_| SealError::Random("computing the public key"))?.as_ref().to_vec();
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, &receiver);
    let key = agreement::agree_ephemeral(private, &peer, |shared| cipher(shared, &sender, &receiver))
        .map_err(|_| SealError::BadKey)?
        .map_err(|_| SealError::BadKey)?;
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key([0; 12]), aead::Aad::empty(), &mut body)
        .map_err(|_| SealError::BadKey)?;
    Ok(b64().encode([sender, body].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_opens_only_with_the_key_it_was_sealed_to_and_only_unaltered() {
        let dst = Opener::new().expect("key");
        let other = Opener::new().expect("key");
        let text = br#"{"profile":{"KeyPassphrase":"s3cret"}}"#;
        let sealed = seal(&dst.public_key(), text).expect("sealed");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(other.open(&sealed), Err(SealError::Unopenable), "another host's key");

        // One byte changed anywhere (the sender's half, the ciphertext, the tag) is refused.
        let len = b64().decode(&sealed).expect("base64").len();
        for at in [0, PUBLIC_LEN + 3, len - 1] {
            let k = Opener::new().expect("key");
            let s = seal(&k.public_key(), text).expect("sealed");
            let mut b = b64().decode(&s).expect("base64");
            b[at] ^= 1;
            assert_eq!(k.open(&b64().encode(&b)), Err(SealError::Unopenable), "byte {at} altered");
        }
        assert_eq!(dst.open(&sealed).expect("opens"), text.to_vec());
    }

    #[test]
    fn bad_keys_and_cut_texts_are_refused() {
        assert_eq!(seal("not base64!", b"x"), Err(SealError::BadKey));
        assert_eq!(seal(&b64().encode([1u8; 16]), b"x"), Err(SealError::BadKey));
        let k = Opener::new().expect("key");
        let sealed = seal(&k.public_key(), b"hello").expect("sealed");
        let cut = &sealed[..sealed.len() - 8];
        assert_eq!(k.open(cut), Err(SealError::Unopenable));
        assert_eq!(Opener::new().expect("key").open(""), Err(SealError::Unopenable));
    }
}
