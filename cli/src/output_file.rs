//! A file a command writes as its output (`save -o`, `export -o`): written
//! beside its path and renamed into place, so a failure leaves no half
//! archive, and an error names the path the user gave. A named pipe is
//! written into; a device is refused, as Docker refuses it, rather than
//! replaced by a file (`save -o /dev/null` as root must not remove the
//! host's /dev/null).

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tempfile::TempPath;

/// Refuses, before anything is read, an output an archive cannot go to:
/// stdout (`output` `None`) that is a terminal, or a path that is neither
/// a regular file, a directory nor a named pipe.
pub fn check(output: Option<&Path>) -> Result<()> {
    match output {
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
        }
        None => Ok(()),
        Some(path) => check_path(path),
    }
}

fn check_path(path: &Path) -> Result<()> {
    let Ok(metadata) = fs::metadata(path) else {
        return Ok(());
    };
    let kind = metadata.file_type();
    if kind.is_file() || kind.is_dir() || kind.is_fifo() {
        return Ok(());
    }
    bail!(
        "invalid output path {}: it is a device or socket, not a regular file; give a file's path",
        path.display()
    )
}

/// Writes `path` with `write`, all of it or nothing; into it, if it is a
/// named pipe (through a symbolic link, its target's).
pub fn write_whole(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    check_path(path)?;
    let cannot_write = || format!("cannot write {}", path.display());
    if is_pipe(path) {
        let pipe = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(cannot_write)?;
        let mut out = BufWriter::new(pipe);
        write(&mut out)?;
        return out.flush().with_context(cannot_write);
    }
    // A link is written through, as `>` does, not replaced.
    let resolved = through_links(path).with_context(cannot_write)?;
    let path = resolved.as_path();
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

/// Whether `path` is (or links to) a named pipe.
pub fn is_pipe(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|metadata| metadata.file_type().is_fifo())
}

/// Where writing `path` lands: through its symbolic links (40 at most, as
/// Linux follows them) to a file that may not exist yet.
fn through_links(path: &Path) -> Result<PathBuf> {
    let mut path = path.to_owned();
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                // A relative target is from the link's directory.
                path = match path.parent() {
                    Some(directory) => directory.join(target),
                    None => target,
                };
            }
            _ => return Ok(path),
        }
    }
    bail!("too many levels of symbolic links")
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
    fn devices_are_refused_and_pipes_and_links_written_through() {
        let err = write_whole(Path::new("/dev/null"), |_| Ok(())).unwrap_err();
        assert!(format!("{err:#}").starts_with("invalid output path /dev/null:"));
        assert!(check(Some(Path::new("/dev/null"))).is_err());

        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("pipe");
        nix::unistd::mkfifo(&pipe, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let reader = {
            let pipe = pipe.clone();
            std::thread::spawn(move || std::fs::read(pipe).unwrap())
        };
        write_whole(&pipe, |out| Ok(out.write_all(b"through")?)).unwrap();
        assert_eq!(reader.join().unwrap(), b"through");
        assert!(std::fs::symlink_metadata(&pipe)
            .unwrap()
            .file_type()
            .is_fifo());

        let target = dir.path().join("target.tar");
        let link = dir.path().join("link.tar");
        std::fs::write(&target, b"old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_whole(&link, |out| Ok(out.write_all(b"new")?)).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");

        // A dangling link makes its target; a loop is refused.
        let dangling = dir.path().join("dangling.tar");
        std::os::unix::fs::symlink("made.tar", &dangling).unwrap();
        write_whole(&dangling, |out| Ok(out.write_all(b"made")?)).unwrap();
        assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
        assert_eq!(std::fs::read(dir.path().join("made.tar")).unwrap(), b"made");
        let looped = dir.path().join("loop.tar");
        std::os::unix::fs::symlink("loop.tar", &looped).unwrap();
        let err = write_whole(&looped, |_| Ok(())).unwrap_err();
        assert!(format!("{err:#}").contains("too many levels"), "{err:#}");
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
