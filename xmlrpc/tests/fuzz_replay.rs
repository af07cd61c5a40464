//! Replays the XML-RPC fuzz corpus and a bounded, deterministic set of mutations of it through
//! the decoder: no input may panic, and whatever decodes must re-encode to the same document
//! (the property of the cargo-fuzz target `xmlrpc_decode`).

use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/xmlrpc_decode");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn corpus_decodes() {
    let seeds = corpus();
    assert!(seeds.len() >= 7);
    for s in &seeds {
        assert_eq!(xmlrpc::fuzzing::check_decode(s), 1, "{}", String::from_utf8_lossy(s));
    }
}

#[test]
fn mutants_never_panic() {
    const SPLICE: &[&[u8]] = &[
        b"<",
        b"</value>",
        b"<value>",
        b"&",
        b"&#0;",
        b"<nil/>",
        b"<i8>",
        b"<!--",
        b"<![CDATA[",
        b"\xff",
        b"\"",
        b"=",
        b"<struct>",
        b"<array><data>",
    ];
    let mut state: u64 = 0x0ddb_a11c_0ffe_e123;
    let mut next = move |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n.max(1)
    };
    let seeds = corpus();
    let (mut decoded, mut total) = (0, 0);
    for round in 0..1500 {
        let mut d = seeds[round % seeds.len()].clone();
        for _ in 0..1 + next(3) {
            let at = next(d.len() + 1);
            match next(4) {
                0 if !d.is_empty() => {
                    let i = next(d.len());
                    d[i] = d[i].wrapping_add(1 + next(255) as u8);
                }
                1 => {
                    let t = SPLICE[next(SPLICE.len())];
                    d.splice(at..at, t.iter().copied());
                }
                2 => d.truncate(at),
                _ => {
                    let end = (at + next(40)).min(d.len());
                    d.drain(at..end);
                }
            }
        }
        total += 1;
        decoded += usize::from(xmlrpc::fuzzing::check_decode(&d) > 0);
    }
    assert!(decoded > 0 && decoded < total, "{decoded} of {total} mutants decoded");
}
