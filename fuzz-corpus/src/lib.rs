//! What the crates' fuzz targets share under `cargo test`: each target's
//! checked-in corpus, and a driver that runs the target on every input of
//! it and on a bounded number of mutations of each, with a fixed seed so
//! that every run (and CI) tries the same inputs. How an input is mutated
//! is each crate's (it knows its format's weak spots), made of the common
//! changes in [`mutation`].
//!
//! Long runs use each crate's cargo-fuzz crate (`<crate>/fuzz`) instead.

pub mod mutation;

use std::fs;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

/// A crate's way of changing an input as a fuzzer would.
pub type Mutator = fn(&mut StdRng, &[u8]) -> Vec<u8>;

/// The seed of every run's mutations.
const SEED: u64 = 17;

/// The corpus of fuzz target `target` of the crate at `manifest_dir`
/// (`<manifest_dir>/fuzz/corpus/<target>/`): each file's name and bytes,
/// sorted by name.
pub fn corpus(manifest_dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(manifest_dir).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus directory {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let name = path.file_name().expect("a name").to_string_lossy().into();
            (name, fs::read(&path).expect("a corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus for {target}");
    files
}

/// Runs `target` on each input of its corpus and on `mutations` mutations
/// of each made by `mutate`; a failing mutation is saved to the temporary
/// directory and named in the panic.
pub fn run(manifest_dir: &str, name: &str, target: fn(&[u8]), mutations: usize, mutate: Mutator) {
    let mut rng = StdRng::seed_from_u64(SEED);
    for (file, input) in corpus(manifest_dir, name) {
        target(&input);
        for _ in 0..mutations {
            let mutated = mutate(&mut rng, &input);
            if std::panic::catch_unwind(|| target(&mutated)).is_err() {
                let saved = std::env::temp_dir().join(format!("hull-fuzz-{name}-crash"));
                fs::write(&saved, &mutated).expect("save the crashing input");
                panic!(
                    "{name}: a mutation of {file} failed; input saved in {}",
                    saved.display()
                );
            }
        }
    }
}
