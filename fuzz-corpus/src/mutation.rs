//! The changes every crate's mutator is made of, as fuzzers make them. A
//! crate's mutator picks among these and its own (it knows its format's
//! weak spots: tar header fields, frame lengths, DNS counts) in
//! [`in_rounds`].

use rand::rngs::StdRng;
use rand::Rng;

/// `input` with one to three changes, each made by `change` at a random
/// place of the input as it is by then; stops early once the input is
/// empty. An empty input starts as one random byte.
pub fn in_rounds(
    rng: &mut StdRng,
    input: &[u8],
    mut change: impl FnMut(&mut StdRng, &mut Vec<u8>, usize),
) -> Vec<u8> {
    let mut out = input.to_vec();
    if out.is_empty() {
        return vec![rng.gen()];
    }
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..out.len());
        change(rng, &mut out, at);
        if out.is_empty() {
            break;
        }
    }
    out
}

/// One of `values`.
pub fn pick<T: Copy>(rng: &mut StdRng, values: &[T]) -> T {
    values[rng.gen_range(0..values.len())]
}

/// Flips one bit of the byte at `at`.
pub fn flip_bit(rng: &mut StdRng, out: &mut [u8], at: usize) {
    out[at] ^= 1 << rng.gen_range(0..8);
}

/// Writes `bytes` at `at`, as many as fit before the end.
pub fn overwrite(out: &mut [u8], at: usize, bytes: &[u8]) {
    let end = (at + bytes.len()).min(out.len());
    out[at..end].copy_from_slice(&bytes[..end - at]);
}

/// Repeats a range starting at `at`, at most `max_len` bytes long, in
/// place.
pub fn repeat_range(rng: &mut StdRng, out: &mut Vec<u8>, at: usize, max_len: usize) {
    let end = rng.gen_range(at..=out.len().min(at.saturating_add(max_len)));
    let copy = out[at..end].to_vec();
    out.splice(at..at, copy);
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn rounds_change_the_input_and_an_empty_one_gets_a_byte() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(in_rounds(&mut rng, &[], |_, _, _| {}).len(), 1);
        let changed = in_rounds(&mut rng, &[0u8; 16], |rng, out, at| flip_bit(rng, out, at));
        assert_eq!(changed.len(), 16);
        assert_ne!(changed, [0u8; 16]);
    }

    #[test]
    fn overwrites_and_repeats_stay_in_bounds() {
        let mut out = vec![0u8; 6];
        overwrite(&mut out, 4, &0x0102_0304u32.to_le_bytes());
        assert_eq!(out, [0, 0, 0, 0, 4, 3]);
        let mut rng = StdRng::seed_from_u64(2);
        let mut grown = vec![1, 2, 3];
        repeat_range(&mut rng, &mut grown, 1, 64);
        assert!(grown.len() >= 3 && grown.len() <= 5, "{grown:?}");
        assert_eq!(&grown[..1], [1]);
    }
}
