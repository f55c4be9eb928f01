//! What the targets' tests share: the corpus, and mutations of it made
//! the way fuzzers make them.

use hull_fuzz_corpus::mutation;
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
    mutation::in_rounds(rng, input, |rng, out, at| match rng.gen_range(0..5) {
        0 => mutation::flip_bit(rng, out, at),
        1 => out[at] = mutation::pick(rng, &[0, 1, 2, 4, 5, 0x7f, 0xff]),
        2 => {
            let values = [0u32, 1, 44, 0x1_0000, 0x1_0001, 0x2_ffff, u32::MAX];
            mutation::overwrite(out, at, &mutation::pick(rng, &values).to_le_bytes());
        }
        3 => mutation::repeat_range(rng, out, at, 64),
        _ => out.truncate(at),
    })
}
