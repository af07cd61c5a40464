//! Randomness for the hosts: Digest secrets and client nonces, session cookies, salts. The
//! protocol crates take what they need as arguments and never draw it themselves.

use ring::rand::SecureRandom as _;

/// Fills `buf` from the operating system's generator.
///
/// # Panics
/// When the operating system's generator fails (`getrandom` unavailable): nothing secure can
/// be done without it.
pub fn fill_random(buf: &mut [u8]) {
    ring::rand::SystemRandom::new().fill(buf).expect("the system's random number generator failed");
}

/// `bytes` random bytes from the operating system's generator, hex-encoded: session cookies,
/// client nonces, per-instance secrets. If the generator ever failed, nothing that must not be
/// guessable may go on with zeros, so this stops the program instead.
pub fn random_hex(bytes: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    let mut out = String::with_capacity(bytes * 2);
    for b in buf {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// A 32-byte secret (the key of a Digest nonce MAC).
pub fn secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    fill_random(&mut s);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_has_twice_the_bytes_and_differs() {
        let (a, b) = (super::random_hex(16), super::random_hex(16));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
