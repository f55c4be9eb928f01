//! Writer for uncompressed initramfs archives (cpio "newc" format).
//!
//! The kernel unpacks entries in order and does not create missing parent
//! directories, so [`Archive`] adds each parent directory once, before the
//! first entry that needs it.

use std::collections::BTreeSet;

const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An initramfs being assembled in memory.
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
    directories: BTreeSet<String>,
}

struct Header {
    mode: u32,
    nlink: u32,
    size: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            bytes: Vec::new(),
            next_inode: 1,
            directories: BTreeSet::new(),
        }
    }

    /// Adds a directory (and its parents).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let path = normalize(path);
        self.ensure_parents(&path);
        if self.directories.insert(path.clone()) {
            self.entry(&path, Header::new(S_IFDIR | mode, 2, 0), &[]);
        }
        self
    }

    /// Adds a regular file with `contents`.
    pub fn file(&mut self, path: &str, mode: u32, contents: &[u8]) -> &mut Self {
        let path = normalize(path);
        self.ensure_parents(&path);
        let size = u32::try_from(contents.len()).expect("initramfs members are below 4 GiB");
        self.entry(&path, Header::new(S_IFREG | mode, 1, size), contents);
        self
    }

    /// Adds a symbolic link pointing at `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = normalize(path);
        self.ensure_parents(&path);
        let size = u32::try_from(target.len()).expect("link targets are short");
        self.entry(
            &path,
            Header::new(S_IFLNK | 0o777, 1, size),
            target.as_bytes(),
        );
        self
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> &mut Self {
        let path = normalize(path);
        self.ensure_parents(&path);
        let header = Header {
            rdev_major: major,
            rdev_minor: minor,
            ..Header::new(S_IFCHR | mode, 1, 0)
        };
        self.entry(&path, header, &[]);
        self
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, Header::new(0, 1, 0), &[]);
        self.bytes
    }

    fn ensure_parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            let parent = &path[..end];
            if !self.directories.contains(parent) {
                self.directories.insert(parent.to_owned());
                self.entry(parent, Header::new(S_IFDIR | 0o755, 2, 0), &[]);
            }
            end += 1;
        }
    }

    fn entry(&mut self, name: &str, header: Header, data: &[u8]) {
        let inode = if name == TRAILER { 0 } else { self.next_inode };
        self.next_inode += 1;
        let name_size = name.len() + 1;
        let fields = [
            inode,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            0, // mtime: fixed, so archives are reproducible
            header.size,
            0, // dev major
            0, // dev minor
            header.rdev_major,
            header.rdev_minor,
            u32::try_from(name_size).expect("names are short"),
            0, // check
        ];
        self.bytes.extend_from_slice(MAGIC);
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

impl Header {
    fn new(mode: u32, nlink: u32, size: u32) -> Self {
        Self {
            mode,
            nlink,
            size,
            rdev_major: 0,
            rdev_minor: 0,
        }
    }
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    assert!(
        !trimmed.is_empty()
            && !trimmed
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".."),
        "initramfs paths are plain relative paths, got {path:?}"
    );
    trimmed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed newc entry: (name, mode, rdev major, rdev minor, data).
    type Entry = (String, u32, u32, u32, Vec<u8>);

    fn parse(mut bytes: &[u8]) -> Vec<Entry> {
        let field = |header: &[u8], index: usize| {
            let start = 6 + index * 8;
            u32::from_str_radix(std::str::from_utf8(&header[start..start + 8]).unwrap(), 16)
                .unwrap()
        };
        let padded = |n: usize| n.div_ceil(4) * 4;
        let mut entries = Vec::new();
        loop {
            assert_eq!(&bytes[..6], MAGIC);
            let header = &bytes[..110];
            let (mode, size, major, minor, name_size) = (
                field(header, 1),
                field(header, 6) as usize,
                field(header, 9),
                field(header, 10),
                field(header, 11) as usize,
            );
            let name = std::str::from_utf8(&bytes[110..110 + name_size - 1])
                .unwrap()
                .to_owned();
            assert_eq!(bytes[110 + name_size - 1], 0, "names are NUL-terminated");
            let data_start = padded(110 + name_size);
            let data = bytes[data_start..data_start + size].to_vec();
            bytes = &bytes[data_start + padded(size)..];
            if name == TRAILER {
                assert!(bytes.is_empty(), "nothing follows the trailer");
                return entries;
            }
            entries.push((name, mode, major, minor, data));
        }
    }

    #[test]
    fn writes_parents_before_children_and_pads_every_member() {
        let mut archive = Archive::new();
        archive
            .file("/sbin/init", 0o755, b"#!/bin/sh\n")
            .symlink("bin/sh", "/sbin/busybox")
            .char_device("dev/console", 0o600, 5, 1)
            .dir("sbin", 0o700)
            .file("a", 0o644, b"12345");
        let bytes = archive.finish();
        assert_eq!(bytes.len() % 4, 0);

        let entries = parse(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "sbin",
                "sbin/init",
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "a"
            ]
        );
        assert_eq!(entries[1].1, S_IFREG | 0o755);
        assert_eq!(entries[1].4, b"#!/bin/sh\n");
        assert_eq!(entries[3].1, S_IFLNK | 0o777);
        assert_eq!(entries[3].4, b"/sbin/busybox");
        assert_eq!(
            (entries[5].1, entries[5].2, entries[5].3),
            (S_IFCHR | 0o600, 5, 1)
        );
        assert_eq!(entries[6].4, b"12345");
    }

    #[test]
    fn identical_inputs_give_identical_archives() {
        let build = || {
            let mut archive = Archive::new();
            archive.file("init", 0o755, &[1, 2, 3]);
            archive.finish()
        };
        assert_eq!(build(), build());
    }

    #[test]
    #[should_panic(expected = "plain relative paths")]
    fn refuses_paths_that_climb_out() {
        Archive::new().file("../etc/passwd", 0o644, b"");
    }
}
