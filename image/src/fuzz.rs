//! Fuzz targets for what an image hands hull: each a plain `fn(&[u8])`
//! that must not panic whatever the bytes, and asserts what must hold of
//! any input.
//!
//! They run two ways: `cargo test -p hull-image` on the checked-in corpus
//! (`image/fuzz/corpus/<target>/`) and a bounded number of mutations of
//! it, and under libFuzzer for long runs from the `image/fuzz` crate (not
//! part of the workspace; see `image/fuzz/README.md`), which enables this
//! module with the `fuzzing` feature.

use std::fs;
use std::path::Path;

use crate::compression::decompress;
use crate::limits::Limits;
use crate::{Digest, ImageRef, Store};

/// Small enough that no input takes much memory or disk.
fn limits() -> Limits {
    Limits {
        max_header_bytes: 64 << 10,
        max_layer_bytes: 16 << 20,
        max_layer_entries: 10_000,
        max_document_bytes: 1 << 20,
    }
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("a directory the target made")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Unpacks `data` (a tar, plain, gzip or zstd) as a layer: whether it
/// fails or not, nothing appears outside the layer's directory.
pub fn layer_unpack(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (layer, outside) = (dir.path().join("layer"), dir.path().join("outside"));
    fs::create_dir(&layer).expect("the layer directory");
    fs::create_dir(&outside).expect("a directory beside it");
    if let Ok(tar) = decompress(data) {
        let _ = crate::unpack::unpack_layer(tar, &layer, &limits());
    }
    assert_eq!(
        names(dir.path()),
        ["layer", "outside"],
        "written beside the layer"
    );
    assert!(names(&outside).is_empty(), "written outside the layer");
}

/// Loads `data` as an image archive into an empty store: either every
/// name it returns resolves, or the store is still empty.
pub fn archive_load(data: &[u8]) {
    let root = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(root.path())
        .expect("a new store")
        .with_limits(limits());
    match crate::load(&store, data) {
        Ok(loaded) => {
            for name in loaded {
                store.resolve(&name).expect("a loaded image resolves");
            }
        }
        Err(err) => {
            let line = format!("{err:#}");
            assert!(line.len() < 1024, "a long error line: {line:.1024}");
            assert!(store.images().expect("the index").is_empty());
            for dir in ["blobs/sha256", "layers", "tmp"] {
                let left = names(&root.path().join("image").join(dir));
                assert!(left.is_empty(), "{dir} holds {left:?} after a failed load");
            }
        }
    }
}

/// Parses `data` as an image reference: a parsed one prints as a
/// reference that parses to the same, a refused one is a short line.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ImageRef::parse(text) {
        Ok(parsed) => {
            let printed = parsed.to_string();
            let again = ImageRef::parse(&printed).expect("a printed reference parses");
            assert_eq!(again.to_string(), printed);
            assert_eq!(again.name(), parsed.name());
        }
        Err(err) => assert!(err.to_string().len() < 512, "{err:.512}"),
    }
}

/// Parses `data` as a digest: a parsed one is the text itself, 71 bytes;
/// a refused one is a short line.
pub fn digest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Digest::parse(text) {
        Ok(digest) => {
            assert_eq!(digest.as_str(), text);
            assert_eq!((digest.as_str().len(), digest.hex().len()), (71, 64));
        }
        Err(err) => assert!(err.to_string().len() < 512, "{err:.512}"),
    }
}

#[cfg(test)]
mod tests {
    use hull_fuzz_corpus::mutation;
    use rand::rngs::StdRng;
    use rand::Rng;

    use super::*;

    /// Mutations of each corpus file run per target: bounded, and the
    /// same on every run (a fixed seed).
    const MUTATIONS: usize = 48;

    /// `input` changed the way fuzzers change inputs: bytes flipped or
    /// set to boundary values, 512-byte tar blocks repeated or dropped,
    /// cut short, or a number written over a tar header field.
    fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
        mutation::in_rounds(rng, input, |rng, out, at| match rng.gen_range(0..6) {
            0 => mutation::flip_bit(rng, out, at),
            1 => out[at] = mutation::pick(rng, &[0, b'/', b'.', 0x7f, 0xff, b'0']),
            2 if out.len() >= 1024 => {
                let block = rng.gen_range(0..out.len() / 512) * 512;
                let copy = out[block..block + 512].to_vec();
                let to = rng.gen_range(0..out.len() / 512) * 512;
                out.splice(to..to, copy);
            }
            3 if out.len() >= 1024 => {
                let block = rng.gen_range(0..out.len() / 512) * 512;
                out.drain(block..block + 512);
            }
            4 => out.truncate(at),
            _ => {
                // A size, mode or checksum field of some header.
                let field = at / 512 * 512 + mutation::pick(rng, &[100, 124, 148, 329]);
                let value = format!("{:011o}", rng.gen_range(0u64..1 << 33));
                if field < out.len() {
                    mutation::overwrite(out, field, value.as_bytes());
                }
            }
        })
    }

    /// Runs `target` on its corpus and on mutations of it.
    fn run(name: &str, target: fn(&[u8])) {
        hull_fuzz_corpus::run(env!("CARGO_MANIFEST_DIR"), name, target, MUTATIONS, mutate);
    }

    #[test]
    fn layer_unpack_corpus_and_mutations() {
        run("layer_unpack", layer_unpack);
    }

    #[test]
    fn archive_load_corpus_and_mutations() {
        run("archive_load", archive_load);
    }

    #[test]
    fn reference_corpus_and_mutations() {
        run("reference", reference);
    }

    #[test]
    fn digest_corpus_and_mutations() {
        run("digest", digest);
    }
}
