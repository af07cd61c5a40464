//! Writes one encoded sample of every message into a directory (the fuzz seed corpus).
//!
//! `cargo run -p cwmp --example write_corpus -- fuzz/corpus/decode`

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus/decode".into());
    std::fs::create_dir_all(&dir)?;
    for env in common::envelopes() {
        let path = format!("{dir}/{}.xml", env.body.method_name());
        std::fs::write(path, env.encode())?;
    }
    Ok(())
}
