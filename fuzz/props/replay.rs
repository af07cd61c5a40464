//! Corpus replay for CI (stable Rust, no cargo-fuzz): a target's seed corpus and a bounded,
//! deterministic set of mutations of it, fed to the same property the target checks. Included
//! with `#[path]` by the replay tests of crates whose targets live here (`acs`,
//! `hypervisor-agent`).
#![allow(dead_code)]

use std::path::Path;

/// Every file of `fuzz/corpus/<target>/`, sorted; at least `min` of them.
pub fn corpus(target: &str, min: usize) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= min, "{target}: seed corpus has {} files, expected {min} or more", seeds.len());
    seeds
}

/// xorshift64: the same mutations on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four edits of `seed`: a bit flip, a token from `tokens` inserted, a span deleted, the
/// tail cut, or a span copied elsewhere.
pub fn mutate(rng: &mut Rng, seed: &[u8], tokens: &[&[u8]]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(5) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !tokens.is_empty() => {
                let t = tokens[rng.below(tokens.len())];
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

/// Runs `check` on every seed (each must return `true`: the seeds are meant to be accepted)
/// and on `rounds` mutations of each; returns (accepted, total) over the mutations.
pub fn replay(
    target: &str,
    min_seeds: usize,
    rounds: usize,
    tokens: &[&[u8]],
    check: impl Fn(&[u8]) -> bool,
) -> (usize, usize) {
    let seeds = corpus(target, min_seeds);
    for seed in &seeds {
        assert!(check(seed), "{target}: seed not accepted:\n{}", String::from_utf8_lossy(seed));
    }
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let (mut ok, mut total) = (0, 0);
    for _ in 0..rounds {
        for seed in &seeds {
            total += 1;
            if check(&mutate(&mut rng, seed, tokens)) {
                ok += 1;
            }
        }
    }
    (ok, total)
}
