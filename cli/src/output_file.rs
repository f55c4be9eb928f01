//! A file a command writes as its output (`save -o`, `export -o`): written
//! beside its path and renamed into place, so a failure leaves no half
//! archive, and an error names the path the user gave.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use tempfile::TempPath;

/// Writes `path` with `write`, all of it or nothing.
pub fn write_whole(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let cannot_write = || format!("cannot write {}", path.display());
    let name = path.file_name().with_context(cannot_write)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    // Removed if anything below fails.
    let temporary =
        TempPath::try_from_path(dir.join(&temporary_name)).with_context(cannot_write)?;
    // Made here rather than by `tempfile`, whose error would name the
    // temporary file rather than the one asked for.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .with_context(cannot_write)?;
    let mut out = BufWriter::new(file);
    write(&mut out)?;
    out.flush().with_context(cannot_write)?;
    drop(out);
    temporary
        .persist(path)
        .map_err(|err| err.error)
        .with_context(cannot_write)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_in_a_missing_directory_is_named_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/out.tar");
        let err = write_whole(&path, |_| Ok(())).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cannot write {}: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.tar");
        let err = write_whole(&path, |out| {
            out.write_all(b"half")?;
            anyhow::bail!("no such image: nope")
        })
        .unwrap_err();
        assert_eq!(format!("{err:#}"), "no such image: nope");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_whole(&path, |out| Ok(out.write_all(b"whole")?)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }
}
