//! Replays the seed corpus of the fuzz target `render` and a bounded, deterministic set of
//! mutations of it through the same property ([`vrgw_proxy::fuzzing::check_render`]): no
//! value that passed the schema makes the renderers write a line they may not write, and the
//! check step refuses whatever they leave out. CI runs this; cargo-fuzz needs nightly.

use vrgw_proxy::fuzzing::HOSTILE;

#[path = "../../fuzz/props/replay.rs"]
mod replay;

/// The seeds, each a list of `path=value` records (the shared loader of the fuzz replays).
fn corpus() -> Vec<Vec<u8>> {
    replay::corpus("render", 50)
}

/// splitmix64: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

/// One to three edits of a seed's records: a token put into a value, a value replaced by a
/// token, a record's value moved to another record's path, a record dropped, or a byte
/// flipped anywhere.
fn mutate(rng: &mut Rng, seed: &[u8], all: &[Vec<u8>]) -> Vec<u8> {
    let text = String::from_utf8_lossy(seed).into_owned();
    let mut records: Vec<(String, String)> =
        text.split('\u{1e}').filter_map(|r| r.split_once('=').map(|(p, v)| (p.to_string(), v.to_string()))).collect();
    let mut flip = None;
    for _ in 0..1 + rng.below(3) {
        let n = records.len();
        let token = HOSTILE[rng.below(HOSTILE.len())];
        match (rng.below(5), n) {
            (0, 1..) => {
                let v = &mut records[rng.below(n)].1;
                let mut at = rng.below(v.len() + 1);
                while !v.is_char_boundary(at) {
                    at -= 1;
                }
                v.insert_str(at, token);
            }
            (1, 1..) => records[rng.below(n)].1 = token.repeat(1 + rng.below(80)),
            (2, 1..) => {
                let other = String::from_utf8_lossy(&all[rng.below(all.len())]).into_owned();
                if let Some((path, _)) = other.split('\u{1e}').next().and_then(|r| r.split_once('=')) {
                    records[rng.below(n)].0 = path.to_string();
                }
            }
            (3, 2..) => {
                records.remove(rng.below(n));
            }
            _ => flip = Some(rng.below(1 << 16)),
        }
    }
    let mut out = records.iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join("\u{1e}").into_bytes();
    if let Some(r) = flip.filter(|_| !out.is_empty()) {
        let i = r % out.len();
        out[i] ^= 1 << (r % 8);
    }
    out
}

#[test]
fn corpus_renders_within_the_property() {
    let seeds = corpus();
    let accepted = seeds.iter().filter(|s| vrgw_proxy::fuzzing::check_render(s)).count();
    // The seeds hold both configurations the check step accepts and ones it refuses.
    assert!(accepted >= 20 && accepted < seeds.len() - 10, "{accepted} of {} seeds accepted", seeds.len());
}

#[test]
fn mutations_keep_the_property() {
    let seeds = corpus();
    let mut rng = Rng(0x5eed_0f7e_4de4_ed00);
    let (mut accepted, mut total) = (0, 0);
    for _ in 0..60 {
        for seed in &seeds {
            let input = mutate(&mut rng, seed, &seeds);
            total += 1;
            if vrgw_proxy::fuzzing::check_render(&input) {
                accepted += 1;
            }
        }
    }
    // Both paths must be exercised: some mutants pass the check step, many do not.
    assert!(accepted > total / 20 && accepted < total, "{accepted} of {total} mutants accepted");
}
