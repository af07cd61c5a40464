//! Replays the fuzz seed corpus and a bounded, deterministic set of mutations of it through the
//! strict and lenient decoders: no input may panic, whatever decodes must survive a re-encode,
//! and what decodes strictly decodes leniently to the same value (the properties the cargo-fuzz
//! target `decode` checks). The `quirk-*` seeds are real CPE deviations.

use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 50, "seed corpus has {} files", seeds.len());
    seeds
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x10FFFF;",
    b"]]>",
    b"<![CDATA[x]]>",
    b"<!DOCTYPE a>",
    b"<!--",
    b"-->",
    b"\"",
    b"xsi:type=\"xsd:int\"",
    b"</a>",
    b"<a>",
    b"\xff",
    b"\xc3",
    b"\0",
    b" xmlns=\"urn:dslforum-org:cwmp-1-1\"",
    b"99999999999999999999",
    b"-1",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(5) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                d.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + rng.below(64)).min(d.len());
                d.drain(at..end);
            }
            3 => d.truncate(at),
            _ => {
                let end = (at + rng.below(200)).min(d.len());
                let chunk = d[at..end].to_vec();
                let to = rng.below(d.len() + 1);
                d.splice(to..to, chunk);
            }
        }
    }
    d
}

#[test]
fn corpus_decodes_and_round_trips() {
    for seed in corpus() {
        assert!(cwmp::fuzzing::check_decode(&seed), "seed does not decode:\n{}", String::from_utf8_lossy(&seed));
    }
}

#[test]
fn quirk_seeds_decode_leniently_with_the_quirk_they_hold() {
    use cwmp::QuirkKind as K;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode");
    // Seed, whether the strict decoder reads it too, and the quirks the lenient one reports.
    type Expect = &'static [fn(&K) -> bool];
    let table: &[(&str, bool, Expect)] = &[
        ("quirk-array-count-long.xml", true, &[|k| matches!(k, K::ArrayCount { declared: 3, sent: 4 })]),
        ("quirk-array-count-short.xml", true, &[|k| matches!(k, K::ArrayCount { declared: 3, sent: 2 })]),
        ("quirk-boolean-case.xml", false, &[|k| *k == K::BooleanCase, |k| *k == K::BooleanCase]),
        ("quirk-current-time-empty.xml", false, &[|k| *k == K::InvalidDateTime]),
        ("quirk-current-time-invalid.xml", false, &[|k| *k == K::InvalidDateTime]),
        ("quirk-default-namespace.xml", true, &[]),
        ("quirk-gpn-writable-case.xml", false, &[|k| *k == K::BooleanCase, |k| *k == K::BooleanCase]),
        ("quirk-invalid-utf8-bom.xml", false, &[|k| *k == K::InvalidText { sequences: 2 }]),
        ("quirk-invalid-utf8.xml", false, &[|k| *k == K::InvalidText { sequences: 1 }]),
        ("quirk-missing-value.xml", false, &[|k| *k == K::MissingValue]),
        ("quirk-no-header.xml", true, &[|k| *k == K::NoId]),
        ("quirk-padded-values.xml", true, &[]),
        ("quirk-soap12-namespace.xml", true, &[|k| *k == K::EnvelopeNamespace]),
        ("quirk-soapenv-prefix-crlf.xml", true, &[]),
        ("quirk-transfer-complete-times.xml", false, &[|k| *k == K::InvalidDateTime, |k| *k == K::InvalidDateTime]),
        (
            "quirk-value-not-of-type.xml",
            false,
            &[|k| matches!(k, K::ValueNotOfType { .. }), |k| matches!(k, K::ValueNotOfType { .. })],
        ),
        ("quirk-xsi-type.xml", true, &[|k| *k == K::UntypedValue, |k| matches!(k, K::UnknownType { .. })]),
    ];
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("quirk-"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, table.iter().map(|(n, ..)| n.to_string()).collect::<Vec<_>>(), "every quirk seed is listed");
    for (name, strict_ok, want) in table {
        let bytes = std::fs::read(dir.join(name)).expect("seed");
        let limits = cwmp::Limits::default();
        assert_eq!(cwmp::Envelope::decode(&bytes, &limits).is_ok(), *strict_ok, "{name}: strict");
        let d = cwmp::Envelope::decode_lenient(&bytes, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.quirks.list.len(), want.len(), "{name}: {:?}", d.quirks);
        for (q, ok) in d.quirks.list.iter().zip(want.iter()) {
            assert!(ok(&q.kind), "{name}: {q}");
        }
    }
}

#[test]
fn mutations_never_panic() {
    let seeds = corpus();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let (mut ok, mut total) = (0, 0);
    for _ in 0..200 {
        for seed in &seeds {
            let input = mutate(&mut rng, seed);
            total += 1;
            if cwmp::fuzzing::check_decode(&input) {
                ok += 1;
            }
        }
    }
    // Both paths must be exercised: some mutants still decode, most do not.
    assert!(ok > total / 20 && ok < total, "{ok} of {total} mutants decoded");
}
