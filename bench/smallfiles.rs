//! Small-file benchmark of the volume benchmark (bench/volume.sh): creates
//! FILES files of SIZE bytes in a new directory DIR/smallfiles (open with
//! O_CREAT|O_EXCL, write, close), then stats each, then deletes each and the
//! directory, timing the three phases. Prints one JSON line.
//!
//!     smallfiles DIR [FILES [SIZE]]      (defaults: 10000 files of 1024 bytes)
//!
//! Built statically by bench/volume.sh with plain rustc (std only), so the same
//! binary runs in the test host and in any guest.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("smallfiles: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().ok_or("usage: smallfiles DIR [FILES [SIZE]]")?;
    let files = number(args.get(1), 10_000)?;
    let size = number(args.get(2), 1024)?;

    let work = Path::new(dir).join("smallfiles");
    fs::create_dir(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let paths: Vec<PathBuf> = (0..files).map(|i| work.join(format!("f{i:06}"))).collect();
    let data = vec![b'x'; size];

    let create = timed(&paths, |path| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(&data)
    })?;
    let stat = timed(&paths, |path| {
        let len = fs::metadata(path)?.len();
        if len == size as u64 {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("size {len}, wrote {size}")))
        }
    })?;
    let delete = timed(&paths, |path| fs::remove_file(path))?;
    fs::remove_dir(&work).map_err(|e| format!("removing {}: {e}", work.display()))?;

    println!(
        "{{\"files\": {files}, \"size\": {size}, \"create_s\": {create:.6}, \
         \"stat_s\": {stat:.6}, \"delete_s\": {delete:.6}}}"
    );
    Ok(())
}

/// `arg` as a count, or `default` when absent.
fn number(arg: Option<&String>, default: usize) -> Result<usize, String> {
    arg.map_or(Ok(default), |text| {
        text.parse().map_err(|e| format!("{text:?}: {e}"))
    })
}

/// Runs `op` on every path in turn; returns the seconds it took in all.
fn timed(
    paths: &[PathBuf],
    mut op: impl FnMut(&Path) -> std::io::Result<()>,
) -> Result<f64, String> {
    let start = Instant::now();
    for path in paths {
        op(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(start.elapsed().as_secs_f64())
}
