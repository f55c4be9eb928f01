//! What the targets' tests share: the corpus, and mutations of it made
//! the way fuzzers make them.

use rand::rngs::StdRng;
use rand::Rng;

/// Mutations of each corpus file run per target: bounded, and the same on
/// every run (a fixed seed).
pub(super) const MUTATIONS: usize = 256;
/// Fewer for targets making a directory tree, a server or a worker thread
/// per input.
pub(super) const COSTLY_MUTATIONS: usize = 96;

/// The corpus of `target`, file name and bytes, sorted by name.
pub(super) fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    hull_fuzz_corpus::corpus(env!("CARGO_MANIFEST_DIR"), target)
}

/// The corpus file `name` of `target`.
pub(super) fn seed(target: &str, name: &str) -> Vec<u8> {
    corpus(target)
        .into_iter()
        .find(|(file, _)| file == name)
        .unwrap_or_else(|| panic!("no seed {name} for {target}"))
        .1
}

/// Runs `target` on its corpus and on `mutations` mutations of each
/// input.
pub(super) fn run(name: &str, target: fn(&[u8]), mutations: usize) {
    hull_fuzz_corpus::run(env!("CARGO_MANIFEST_DIR"), name, target, mutations, mutate);
}

/// `input` changed the way fuzzers change inputs: bytes flipped or set to
/// boundary values, a little-endian u32 (a descriptor's length or address,
/// a header's `len`, a register's offset or value) rewritten, a range
/// repeated, or the input cut short.
fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    if out.is_empty() {
        return vec![rng.gen()];
    }
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..out.len());
        match rng.gen_range(0..5) {
            0 => out[at] ^= 1 << rng.gen_range(0..8),
            1 => out[at] = [0, 1, 2, 4, 5, 0x7f, 0xff][rng.gen_range(0..7)],
            2 => {
                let value =
                    [0u32, 1, 44, 0x1_0000, 0x1_0001, 0x2_ffff, u32::MAX][rng.gen_range(0..7)];
                let end = (at + 4).min(out.len());
                out[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
            }
            3 => {
                let end = rng.gen_range(at..=out.len().min(at + 64));
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            _ => out.truncate(at),
        }
        if out.is_empty() {
            break;
        }
    }
    out
}
