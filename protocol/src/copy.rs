//! `hull cp`: one path copied between the host and a container as a tar
//! stream in `Stdout` (out of the container) or `Stdin` (into it) frames.
//!
//! The sender archives the path under its own name, or a directory's
//! contents for `DIR/.`; the receiver places it as `docker cp` does (see
//! [`receive`]).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{read_message, Message, MAX_BODY};

/// Whether `path` names a directory's contents (`DIR/.`) rather than the
/// directory itself.
pub fn names_contents(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// Archives `path` into `out`: under its own name, or its contents if it
/// ends in `/.`. Symbolic links are archived as links; with `follow_link`
/// (`cp -L`), a link that `path` itself names is archived as what it
/// points to, under the link's name.
pub fn send(path: &Path, follow_link: bool, out: impl Write) -> io::Result<()> {
    let source = match follow_link {
        true => fs::canonicalize(path).map_err(|err| with_path(err, "cannot follow", path))?,
        false => path.to_owned(),
    };
    let metadata =
        fs::symlink_metadata(&source).map_err(|err| with_path(err, "cannot read", path))?;
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let contents = names_contents(&path.to_string_lossy());
    match path.file_name() {
        _ if contents => builder.append_dir_all(".", &source)?,
        Some(name) if metadata.is_dir() => builder.append_dir_all(name, &source)?,
        Some(name) => builder.append_path_with_name(&source, name)?,
        // `/` itself: its contents.
        None => builder.append_dir_all(".", &source)?,
    }
    builder.into_inner()?.flush()
}

/// What a receiver keeps of the sender's metadata beyond modes and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// The sender's uids and gids; else files are the receiver's.
    pub owners: bool,
    /// Set-user-ID, set-group-ID and sticky bits. A root host receiving a
    /// container's files must not keep them unasked: the container chose
    /// them.
    pub special_bits: bool,
}

/// Unpacks what [`send`] archived as `dest`:
/// - contents (`contents`) go into the directory `dest`, created if missing;
/// - into an existing directory `dest`, under their own name;
/// - else as `dest` itself, whose parent directory must exist.
///
/// Files keep their modes and times, and what `keep` says of the rest.
pub fn receive(input: impl Read, dest: &Path, contents: bool, keep: Keep) -> io::Result<()> {
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(keep.special_bits);
    archive.set_preserve_ownerships(keep.owners);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    if contents {
        fs::create_dir_all(dest).map_err(|err| with_path(err, "cannot create", dest))?;
        return archive.unpack(dest);
    }
    if dest.is_dir() {
        return archive.unpack(dest);
    }
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such directory: {}", parent.display()),
        ));
    }
    // Unpacked beside `dest`, then renamed into place: a failed copy leaves
    // `dest` as it was.
    let staging = staging_dir(parent)?;
    let placed = archive
        .unpack(&staging)
        .and_then(|()| single_entry(&staging))
        .and_then(|entry| {
            fs::rename(&entry, dest).map_err(|err| with_path(err, "cannot replace", dest))
        });
    let _ = fs::remove_dir_all(&staging);
    placed
}

fn staging_dir(parent: &Path) -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |time| time.subsec_nanos());
    let staging = parent.join(format!(".hull-cp-{}-{nanos}", std::process::id()));
    fs::create_dir(&staging).map_err(|err| with_path(err, "cannot write to", parent))?;
    Ok(staging)
}

fn single_entry(dir: &Path) -> io::Result<PathBuf> {
    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    match (entries.pop(), entries.is_empty()) {
        (Some(entry), true) => Ok(entry.path()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the copied archive does not hold exactly one path",
        )),
    }
}

fn with_path(err: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}

/// Writes data as frames made by `frame` (`Message::Stdin` or
/// `Message::Stdout`), each at most [`MAX_BODY`] bytes, through `send`.
pub struct DataWriter<F> {
    send: F,
    frame: fn(Vec<u8>) -> Message,
}

impl<F: FnMut(&Message) -> io::Result<()>> DataWriter<F> {
    pub fn new(frame: fn(Vec<u8>) -> Message, send: F) -> Self {
        DataWriter { send, frame }
    }
}

impl<F: FnMut(&Message) -> io::Result<()>> Write for DataWriter<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let len = data.len().min(MAX_BODY);
        (self.send)(&(self.frame)(data[..len].to_vec()))?;
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the data of `Stdin` or `Stdout` frames until another message,
/// which ends the data and is kept for [`DataReader::end`].
pub struct DataReader<R> {
    frames: R,
    data: Vec<u8>,
    read: usize,
    end: Option<Message>,
}

impl<R: Read> DataReader<R> {
    pub fn new(frames: R) -> Self {
        DataReader {
            frames,
            data: Vec::new(),
            read: 0,
            end: None,
        }
    }

    /// The message that ended the data, once read.
    pub fn end(&self) -> Option<&Message> {
        self.end.as_ref()
    }

    /// Reads up to the message that ends the data, if not yet read.
    pub fn finish(&mut self) -> io::Result<Option<&Message>> {
        io::copy(self, &mut io::sink())?;
        Ok(self.end.as_ref())
    }
}

impl<R: Read> Read for DataReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.read == self.data.len() {
            if self.end.is_some() {
                return Ok(0);
            }
            match read_message(&mut self.frames).map_err(io::Error::other)? {
                Some(Message::Stdin(data) | Message::Stdout(data)) => {
                    (self.data, self.read) = (data, 0);
                }
                Some(other) => self.end = Some(other),
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
        let len = buf.len().min(self.data.len() - self.read);
        buf[..len].copy_from_slice(&self.data[self.read..self.read + len]);
        self.read += len;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::write_message;

    /// `src` sent and received as `dest` (through frames).
    fn copy(src: &Path, dest: &Path) -> io::Result<()> {
        copy_following(src, dest, false)
    }

    /// [`copy`], following a link `src` names if `follow_link`.
    fn copy_following(src: &Path, dest: &Path, follow_link: bool) -> io::Result<()> {
        let mut frames = Vec::new();
        send(
            src,
            follow_link,
            DataWriter::new(Message::Stdout, |message| {
                write_message(&mut frames, message).map_err(io::Error::other)
            }),
        )?;
        write_message(&mut frames, &Message::StdinClose).unwrap();
        let mut reader = DataReader::new(frames.as_slice());
        let keep = Keep {
            owners: false,
            special_bits: false,
        };
        receive(
            &mut reader,
            dest,
            names_contents(&src.to_string_lossy()),
            keep,
        )?;
        assert_eq!(reader.finish()?, Some(&Message::StdinClose));
        Ok(())
    }

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/a"), "a").unwrap();
        fs::write(root.join("run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("sub/a", root.join("link")).unwrap();
    }

    #[test]
    fn a_file_lands_in_a_directory_or_as_the_new_name() {
        let temp = tempfile::tempdir().unwrap();
        let (src, into) = (temp.path().join("src"), temp.path().join("into"));
        tree(&src);
        fs::create_dir(&into).unwrap();
        copy(&src.join("run"), &into).unwrap();
        assert_eq!(fs::read_to_string(into.join("run")).unwrap(), "#!/bin/sh\n");
        let mode = fs::metadata(into.join("run")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        copy(&src.join("sub/a"), &into.join("renamed")).unwrap();
        assert_eq!(fs::read_to_string(into.join("renamed")).unwrap(), "a");
        // Over an existing file.
        copy(&src.join("run"), &into.join("renamed")).unwrap();
        assert_eq!(
            fs::read_to_string(into.join("renamed")).unwrap(),
            "#!/bin/sh\n"
        );
        let names: Vec<_> = fs::read_dir(&into)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no staging left behind: {names:?}");
    }

    #[test]
    fn directories_copy_whole_renamed_or_as_contents_with_links_kept() {
        let temp = tempfile::tempdir().unwrap();
        let src = temp.path().join("src");
        tree(&src);
        let into = temp.path().join("into");
        fs::create_dir(&into).unwrap();
        copy(&src, &into).unwrap();
        assert_eq!(fs::read_to_string(into.join("src/sub/a")).unwrap(), "a");
        assert_eq!(
            fs::read_link(into.join("src/link")).unwrap(),
            Path::new("sub/a")
        );
        let fresh = temp.path().join("fresh");
        copy(&src, &fresh).unwrap();
        assert_eq!(fs::read_to_string(fresh.join("sub/a")).unwrap(), "a");
        let contents = temp.path().join("contents");
        copy(&src.join("."), &contents).unwrap();
        assert_eq!(fs::read_to_string(contents.join("sub/a")).unwrap(), "a");
    }

    #[test]
    fn a_followed_link_is_copied_as_its_target_under_its_own_name() {
        let temp = tempfile::tempdir().unwrap();
        let src = temp.path().join("src");
        tree(&src);
        std::os::unix::fs::symlink("sub", src.join("dir-link")).unwrap();
        let into = temp.path().join("into");
        fs::create_dir(&into).unwrap();
        copy_following(&src.join("link"), &into, true).unwrap();
        let copied = fs::symlink_metadata(into.join("link")).unwrap();
        assert!(copied.is_file(), "{copied:?}");
        assert_eq!(fs::read_to_string(into.join("link")).unwrap(), "a");
        copy_following(&src.join("dir-link"), &into, true).unwrap();
        assert_eq!(fs::read_to_string(into.join("dir-link/a")).unwrap(), "a");
        // Without following, the link itself.
        copy(&src.join("dir-link"), &into.join("kept")).unwrap();
        assert_eq!(fs::read_link(into.join("kept")).unwrap(), Path::new("sub"));
        std::os::unix::fs::symlink("nowhere", src.join("dangling")).unwrap();
        let err = copy_following(&src.join("dangling"), &into, true).unwrap_err();
        assert!(err.to_string().contains("dangling"), "{err}");
    }

    #[test]
    fn missing_paths_are_named_in_the_error() {
        let temp = tempfile::tempdir().unwrap();
        let err = copy(&temp.path().join("nope"), temp.path()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        fs::write(temp.path().join("f"), "").unwrap();
        let err = copy(&temp.path().join("f"), &temp.path().join("no/such/f")).unwrap_err();
        assert!(err.to_string().contains("no such directory"), "{err}");
    }
}
