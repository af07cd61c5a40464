//! gzip both ways for the HTTP front ends (client and server), bounded on the way in.

use std::io::Read;

/// Decompresses a gzip body, refusing to produce more than `max` bytes.
pub(crate) fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(data).take(max as u64 + 1);
    dec.read_to_end(&mut out).map_err(|_| "invalid gzip body\n")?;
    if out.len() > max {
        return Err("request body too large\n");
    }
    Ok(out)
}

/// Compresses a response body (fast level: management traffic, CPU matters more).
#[cfg(feature = "server")]
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}
