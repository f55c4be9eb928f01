//! The runtime stays a library every front end can use: it depends on no
//! argument parser, and it neither prints nor exits (it reports, and its
//! callers decide what the user sees).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Crates a front end brings, not the runtime.
const FRONT_END_CRATES: [&str; 4] = ["clap", "clap_complete", "gotmpl", "tabwriter"];
/// What a library must not do: print, or end its caller's process.
const FORBIDDEN: [&str; 9] = [
    "println!",
    "print!",
    "eprintln!",
    "eprint!",
    "dbg!",
    "process::exit",
    "io::stdout()",
    "io::stderr()",
    "io::stdin()",
];

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ lives in the workspace")
}

#[test]
fn no_front_end_crate_is_among_the_runtimes_dependencies() {
    let lock = fs::read_to_string(workspace().join("Cargo.lock")).expect("Cargo.lock");
    let lock: toml::Table = lock.parse().expect("Cargo.lock is TOML");
    let mut dependencies: HashMap<&str, Vec<&str>> = HashMap::new();
    for package in lock["package"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("a package name");
        let depends = package
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            // "name" or "name version" when several versions are locked.
            .map(|d| d.as_str().expect("a dependency").split(' ').next().unwrap());
        dependencies.entry(name).or_default().extend(depends);
    }
    let mut reached = BTreeSet::new();
    let mut next = vec!["hull-runtime"];
    while let Some(name) = next.pop() {
        if reached.insert(name) {
            next.extend(dependencies.get(name).into_iter().flatten());
        }
    }
    assert!(reached.len() > 10, "the runtime's graph was not found");
    let front_end: Vec<_> = FRONT_END_CRATES
        .iter()
        .filter(|name| reached.contains(*name))
        .collect();
    assert!(
        front_end.is_empty(),
        "hull-runtime depends on {front_end:?}: those belong to a front end"
    );
}

#[test]
fn the_runtime_neither_prints_nor_exits() {
    let mut offences = Vec::new();
    for file in rust_files(&workspace().join("runtime/src")) {
        let source = fs::read_to_string(&file).expect("a source file");
        for (number, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for forbidden in FORBIDDEN.iter().filter(|f| code.contains(*f)) {
                offences.push(format!("{}:{}: {forbidden}", file.display(), number + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the runtime reports to its caller instead:\n{}",
        offences.join("\n")
    );
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("a source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}
