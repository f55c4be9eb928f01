//! A container's changes as an image layer (`Diff`, for `hull build`,
//! `hull commit` and `hull diff`): the overlay's upper directory archived as
//! an OCI layer tar; and its whole root (`Export`, for `hull export`), the
//! overlay's merged directory archived the same way.
//!
//! overlayfs records a deletion as a character device 0/0 and a directory
//! that hides the lower ones as a directory with the `overlay.opaque` xattr;
//! the OCI layer format says both with names instead: `.wh.NAME` for the
//! first, a `.wh..wh..opq` entry in the directory for the second. Entries
//! are archived in name order, hard links once with links to the first
//! name, xattrs (file capabilities, ...) as PAX records, overlayfs's own
//! xattrs left out.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tar::{EntryType, Header};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr namespaces overlayfs keeps its own records in.
const OVERLAY_XATTR_PREFIXES: [&str; 2] = ["user.overlay.", "trusted.overlay."];
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Archives the upper directory `upper` into `out` as an OCI layer, leaving
/// out the absolute container paths in `exclude` (and what is below them),
/// and those of `stubs` that hold nothing else.
pub fn send(upper: &Path, exclude: &[String], stubs: &[String], out: impl Write) -> Result<()> {
    let mut exclude: BTreeSet<PathBuf> = exclude.iter().map(|path| relative(path)).collect();
    let mut stubs: Vec<PathBuf> = stubs.iter().map(|path| relative(path)).collect();
    // The deepest first: a stub whose only entry is a stub goes with it.
    stubs.sort_by_key(|stub| std::cmp::Reverse(stub.components().count()));
    for stub in stubs {
        if holds_only(&upper.join(&stub), &stub, &exclude)? {
            exclude.insert(stub);
        }
    }
    archive(upper, exclude, true, out)
}

/// An absolute container path as a path in the upper directory.
fn relative(path: &str) -> PathBuf {
    Path::new(path.trim_start_matches('/')).to_owned()
}

/// Whether `dir` (archived as `name`) is a directory, not an opaque one,
/// whose entries are all in `exclude`.
fn holds_only(dir: &Path, name: &Path, exclude: &BTreeSet<PathBuf>) -> Result<bool> {
    match fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.is_dir() => {}
        _ => return Ok(false),
    }
    if is_opaque(dir)? {
        return Ok(false);
    }
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if !exclude.contains(&name.join(entry.file_name())) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Archives the directory `root`'s contents into `out` as they are: no
/// entry is taken for an overlayfs record (a merged overlay shows none).
pub fn send_tree(root: &Path, out: impl Write) -> Result<()> {
    archive(root, BTreeSet::new(), false, out)
}

fn archive(
    dir: &Path,
    exclude: BTreeSet<PathBuf>,
    overlay_records: bool,
    out: impl Write,
) -> Result<()> {
    let mut archiver = Archiver {
        builder: tar::Builder::new(out),
        exclude,
        overlay_records,
        links: HashMap::new(),
    };
    archiver.directory(dir, Path::new(""))?;
    archiver
        .builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .context("writing the layer")
}

struct Archiver<W: Write> {
    builder: tar::Builder<W>,
    exclude: BTreeSet<PathBuf>,
    /// Whether the tree is an overlay's upper directory, whose whiteouts
    /// and opaque directories become OCI records.
    overlay_records: bool,
    /// The first archived name of each file with several links, by inode.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Archiver<W> {
    /// Archives the entries of directory `dir`, archived as `name`.
    fn directory(&mut self, dir: &Path, name: &Path) -> Result<()> {
        let mut entries: Vec<OsString> = fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<io::Result<_>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        entries.sort();
        for entry in entries {
            let (path, archived) = (dir.join(&entry), name.join(&entry));
            if !self.exclude.contains(&archived) {
                self.entry(&path, &archived)
                    .with_context(|| format!("archiving /{}", archived.display()))?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, name: &Path) -> Result<()> {
        let metadata = fs::symlink_metadata(path)?;
        let kind = metadata.file_type();
        if self.overlay_records && kind.is_char_device() && metadata.rdev() == 0 {
            return self.whiteout(name);
        }
        let mut header = header_of(&metadata);
        self.xattrs(path)?;
        if kind.is_dir() {
            header.set_entry_type(EntryType::Directory);
            self.append(&mut header, name, io::empty())?;
            if self.overlay_records && is_opaque(path)? {
                self.marker(&name.join(OPAQUE_MARKER))?;
            }
            return self.directory(path, name);
        }
        if kind.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(path)?;
            self.builder.append_link(&mut header, name, target)?;
            return Ok(());
        }
        if kind.is_file() {
            let inode = (metadata.dev(), metadata.ino());
            if metadata.nlink() > 1 {
                if let Some(first) = self.links.get(&inode) {
                    header.set_entry_type(EntryType::Link);
                    header.set_size(0);
                    let first = first.clone();
                    self.builder.append_link(&mut header, name, first)?;
                    return Ok(());
                }
                self.links.insert(inode, name.to_owned());
            }
            header.set_entry_type(EntryType::Regular);
            let file = File::open(path)?;
            return self.append(&mut header, name, file);
        }
        let kind = match () {
            () if kind.is_char_device() => EntryType::Char,
            () if kind.is_block_device() => EntryType::Block,
            () if kind.is_fifo() => EntryType::Fifo,
            // A socket is no file an image can hold.
            () => return Ok(()),
        };
        header.set_entry_type(kind);
        let rdev = metadata.rdev();
        header.set_device_major(libc::major(rdev))?;
        header.set_device_minor(libc::minor(rdev))?;
        self.append(&mut header, name, io::empty())
    }

    /// `name` deleted: an empty `.wh.NAME` beside it.
    fn whiteout(&mut self, name: &Path) -> Result<()> {
        let file = name.file_name().context("a whiteout without a name")?;
        let mut marker = OsString::from(WHITEOUT_PREFIX);
        marker.push(file);
        self.marker(&name.with_file_name(marker))
    }

    fn marker(&mut self, name: &Path) -> Result<()> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o600);
        header.set_size(0);
        header.set_mtime(0);
        self.append(&mut header, name, io::empty())
    }

    fn append(&mut self, header: &mut Header, name: &Path, data: impl io::Read) -> Result<()> {
        self.builder.append_data(header, name, data)?;
        Ok(())
    }

    /// The xattrs of `path` but overlayfs's, as PAX records for the entry
    /// archived next.
    fn xattrs(&mut self, path: &Path) -> Result<()> {
        let records: Vec<(String, Vec<u8>)> = list_xattrs(path)?
            .into_iter()
            .filter(|name| !OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p)))
            .filter_map(|name| {
                let value = get_xattr(path, &name).ok()??;
                Some((format!("{PAX_XATTR_PREFIX}{name}"), value))
            })
            .collect();
        if !records.is_empty() {
            let records = records.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
            self.builder.append_pax_extensions(records)?;
        }
        Ok(())
    }
}

/// A tar header with `metadata`'s mode, owner and time.
fn header_of(metadata: &Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(metadata.mode() & 0o7777);
    header.set_uid(u64::from(metadata.uid()));
    header.set_gid(u64::from(metadata.gid()));
    header.set_mtime(u64::try_from(metadata.mtime()).unwrap_or(0));
    header.set_size(if metadata.is_file() {
        metadata.len()
    } else {
        0
    });
    header
}

/// Whether overlayfs marked directory `path` opaque.
fn is_opaque(path: &Path) -> Result<bool> {
    for prefix in OVERLAY_XATTR_PREFIXES {
        if get_xattr(path, &format!("{prefix}opaque"))?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).context("a path with a NUL byte")
}

/// The names of `path`'s xattrs (not following a symbolic link).
fn list_xattrs(path: &Path) -> Result<Vec<String>> {
    let c_path = c_path(path)?;
    let mut buffer = vec![0u8; 4096];
    loop {
        // SAFETY: the path is NUL-terminated and the buffer holds
        // `buffer.len()` writable bytes.
        let len =
            unsafe { libc::llistxattr(c_path.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if len >= 0 {
            buffer.truncate(len as usize);
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => buffer.resize(buffer.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err).with_context(|| format!("listing xattrs of {}", path.display())),
        }
    }
    Ok(buffer
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| OsStr::from_bytes(name).to_string_lossy().into_owned())
        .collect())
}

/// The value of `path`'s xattr `name`, if it has it.
fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let (c_path, c_name) = (c_path(path)?, CString::new(name)?);
    let mut buffer = vec![0u8; 256];
    loop {
        // SAFETY: both strings are NUL-terminated and the buffer holds
        // `buffer.len()` writable bytes.
        let len = unsafe {
            libc::lgetxattr(
                c_path.as_ptr(),
                c_name.as_ptr(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        if len >= 0 {
            buffer.truncate(len as usize);
            return Ok(Some(buffer));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) if buffer.len() < 1 << 16 => buffer.resize(buffer.len() * 16, 0),
            Some(libc::ENODATA | libc::ENOTSUP) => return Ok(None),
            _ => {
                return Err(err)
                    .with_context(|| format!("reading xattr {name} of {}", path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use nix::sys::stat::{mknod, Mode, SFlag};

    use super::*;

    fn set_xattr(path: &Path, name: &str, value: &[u8]) {
        let (c_path, c_name) = (c_path(path).unwrap(), CString::new(name).unwrap());
        // SAFETY: NUL-terminated strings and a buffer of `value.len()` bytes.
        let done = unsafe {
            libc::lsetxattr(
                c_path.as_ptr(),
                c_name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(done, 0, "{}", io::Error::last_os_error());
    }

    /// Each entry's path, kind and, for files, contents.
    fn entries(tar: &[u8]) -> Vec<(String, EntryType, String)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().display().to_string();
                let kind = entry.header().entry_type();
                let mut contents = String::new();
                match kind {
                    EntryType::Link | EntryType::Symlink => {
                        contents = entry.link_name().unwrap().unwrap().display().to_string()
                    }
                    _ => {
                        entry.read_to_string(&mut contents).unwrap();
                    }
                }
                (path, kind, contents)
            })
            .collect()
    }

    #[test]
    fn overlay_records_become_oci_whiteouts_and_exclusions_are_left_out() {
        let temp = tempfile::tempdir().unwrap();
        let upper = temp.path();
        fs::create_dir_all(upper.join("app/cache")).unwrap();
        fs::write(upper.join("app/main.py"), "print(1)").unwrap();
        fs::hard_link(upper.join("app/main.py"), upper.join("app/same.py")).unwrap();
        symlink("main.py", upper.join("app/link")).unwrap();
        mknod(&upper.join("app/gone"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        fs::create_dir(upper.join("opaque")).unwrap();
        set_xattr(&upper.join("opaque"), "user.overlay.opaque", b"y");
        set_xattr(&upper.join("app/main.py"), "user.note", b"kept");
        fs::create_dir(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "10.0.0.1 x").unwrap();
        fs::write(upper.join("etc/passwd"), "root").unwrap();

        let mut tar = Vec::new();
        let exclude = ["/etc/hosts".to_owned(), "/app/cache".to_owned()];
        send(upper, &exclude, &[], &mut tar).unwrap();
        let found = entries(&tar);
        let names: Vec<(&str, EntryType)> =
            found.iter().map(|(p, k, _)| (p.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("app", EntryType::Directory),
                ("app/.wh.gone", EntryType::Regular),
                ("app/link", EntryType::Symlink),
                ("app/main.py", EntryType::Regular),
                ("app/same.py", EntryType::Link),
                ("etc", EntryType::Directory),
                ("etc/passwd", EntryType::Regular),
                ("opaque", EntryType::Directory),
                ("opaque/.wh..wh..opq", EntryType::Regular),
            ]
        );
        assert_eq!(found[3].2, "print(1)");
        assert_eq!(found[4].2, "app/main.py");
        assert_eq!(found[2].2, "main.py");

        // The xattr travels as a PAX record of its file.
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut main = archive
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|entry| entry.path().unwrap() == Path::new("app/main.py"))
            .unwrap();
        let records: Vec<(String, Vec<u8>)> = main
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|record| {
                let record = record.unwrap();
                (
                    record.key().unwrap().to_owned(),
                    record.value_bytes().to_vec(),
                )
            })
            .collect();
        assert_eq!(
            records,
            [("SCHILY.xattr.user.note".to_owned(), b"kept".to_vec())]
        );
    }

    #[test]
    fn mount_stubs_go_when_they_hold_nothing_else() {
        let temp = tempfile::tempdir().unwrap();
        let upper = temp.path();
        // /root/.cache/pip and /srv/a/b were mount points; the command
        // wrote /srv/a/kept, and /opt/x is a stub it never made.
        fs::create_dir_all(upper.join("root/.cache/pip/wheels")).unwrap();
        fs::create_dir_all(upper.join("srv/a/b")).unwrap();
        fs::write(upper.join("srv/a/kept"), "k").unwrap();

        let mut tar = Vec::new();
        let exclude = ["/root/.cache/pip".to_owned(), "/srv/a/b".to_owned()];
        let stubs = ["/root", "/root/.cache", "/srv", "/srv/a", "/opt", "/opt/x"].map(String::from);
        send(upper, &exclude, &stubs, &mut tar).unwrap();
        let names: Vec<String> = entries(&tar).into_iter().map(|(p, _, _)| p).collect();
        assert_eq!(names, ["srv", "srv/a", "srv/a/kept"]);
    }

    #[test]
    fn a_plain_tree_keeps_devices_and_takes_no_markers() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        fs::create_dir(root.join("dev")).unwrap();
        mknod(&root.join("dev/null0"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        fs::create_dir(root.join("srv")).unwrap();
        set_xattr(&root.join("srv"), "user.overlay.opaque", b"y");
        fs::write(root.join("srv/index.html"), "hi").unwrap();

        let mut tar = Vec::new();
        send_tree(root, &mut tar).unwrap();
        let names: Vec<(String, EntryType)> = entries(&tar)
            .into_iter()
            .map(|(path, kind, _)| (path, kind))
            .collect();
        assert_eq!(
            names,
            [
                ("dev".to_owned(), EntryType::Directory),
                ("dev/null0".to_owned(), EntryType::Char),
                ("srv".to_owned(), EntryType::Directory),
                ("srv/index.html".to_owned(), EntryType::Regular),
            ]
        );
    }
}
