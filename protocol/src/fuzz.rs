//! Fuzz targets for what crosses the agent channel: each a plain
//! `fn(&[u8])` that must not panic whatever the bytes, and asserts what
//! must hold of any input.
//!
//! The host decodes what a guest's agent sends, and a hostile guest owns
//! its agent; the agent decodes the host's frames with the same code. So
//! one decoder target covers both directions.
//!
//! They run two ways: `cargo test -p hull-protocol` on the checked-in
//! corpus (`protocol/fuzz/corpus/<target>/`) and a bounded number of
//! mutations of it, and under libFuzzer for long runs from the
//! `protocol/fuzz` crate (not part of the workspace; see
//! `protocol/fuzz/README.md`), which enables this module with the
//! `fuzzing` feature.

use crate::copy::DataReader;
use crate::{read_message, Error, Message};

/// The longest error line a frame may make the host print.
const MAX_ERROR_LINE: usize = 1024;

/// Reads `data` as a stream of frames, as either end reads its peer: every
/// frame read consumes bytes (the loop ends), every decoded message
/// encodes to a frame that decodes to the same, and the error that ends
/// the stream is one short line.
pub fn frames(data: &[u8]) {
    let mut stream = data;
    loop {
        let before = stream.len();
        match read_message(&mut stream) {
            Ok(None) => break,
            Ok(Some(message)) => {
                assert!(stream.len() + 5 <= before, "a frame consumed no bytes");
                round_trips(&message);
            }
            Err(err) => {
                assert_short(&err);
                break;
            }
        }
    }
    // The data of `Stdout` frames, read as `hull cp` reads a tar stream.
    let mut data_reader = DataReader::new(data);
    if let Err(err) = data_reader.finish() {
        assert_short(&err);
    }
}

/// A decoded message encodes to a frame that decodes to the same message
/// (unless re-encoding made it larger than a frame may be).
fn round_trips(message: &Message) {
    let frame = match message.to_frame() {
        Ok(frame) => frame,
        Err(Error::TooLarge(_)) => return,
        Err(err) => panic!("a decoded message does not encode: {err}"),
    };
    let again = read_message(&mut frame.as_slice())
        .expect("an encoded message decodes")
        .expect("an encoded message is a frame");
    assert_eq!(&again, message);
}

fn assert_short(err: &dyn std::fmt::Display) {
    let line = err.to_string();
    assert!(
        line.len() < MAX_ERROR_LINE,
        "an error line of {} bytes: {line:.200}",
        line.len()
    );
}

#[cfg(test)]
mod tests {
    use hull_fuzz_corpus::mutation;
    use rand::rngs::StdRng;
    use rand::Rng;

    use super::*;

    /// Mutations of each corpus file run per target: bounded, and the
    /// same on every run (a fixed seed).
    const MUTATIONS: usize = 256;

    /// `input` changed the way fuzzers change inputs: bytes flipped or set
    /// to boundary values, a frame length (a little-endian u32) rewritten,
    /// a range repeated, or the input cut short.
    fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
        mutation::in_rounds(rng, input, |rng, out, at| match rng.gen_range(0..5) {
            0 => mutation::flip_bit(rng, out, at),
            1 => out[at] = mutation::pick(rng, &[0, 1, b'"', b'\\', b'{', 0x7f, 0xff]),
            2 => {
                let lengths = [0u32, 1, 2, 0x4_0000, 0x4_0001, 0x4_0002, u32::MAX];
                mutation::overwrite(out, at, &mutation::pick(rng, &lengths).to_le_bytes());
            }
            3 => mutation::repeat_range(rng, out, at, usize::MAX),
            _ => out.truncate(at),
        })
    }

    /// Runs `target` on its corpus and on mutations of it.
    fn run(name: &str, target: fn(&[u8])) {
        hull_fuzz_corpus::run(env!("CARGO_MANIFEST_DIR"), name, target, MUTATIONS, mutate);
    }

    #[test]
    fn frames_corpus_and_mutations() {
        run("frames", frames);
    }
}
