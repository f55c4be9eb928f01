//! A FUSE filesystem adapter that shows only some entries of the share's
//! root directory and keeps that set of entries fixed.
//!
//! Two kinds of share need it. An image layer store shows a container its
//! own layers and no others (read-only, under [`super::read_only::ReadOnly`]).
//! A single-file bind mount shares the file's parent directory, which may
//! be `/etc`, showing only that file (writable): the guest bind-mounts
//! `share/FILE` onto its target, as Docker binds a file.
//!
//! At the root (and only there), with the guest free to send any request:
//!
//! - names outside the visible set do not exist: lookups fail with
//!   `ENOENT` and listings leave them out, so the guest never gets a hidden
//!   entry's inode. Listings are made from the visible names, not from the
//!   host directory (see [`Subset::list_root`]);
//! - the set of entries cannot change: creating, removing, renaming into or
//!   out of, or linking into the root fails with `EACCES`, as in a
//!   directory the caller may not write, and `access(W_OK)` says so. That
//!   includes renaming a visible entry onto itself, and unnamed files
//!   (`O_TMPFILE` opens of the root directory), which would still take
//!   space next to the hidden entries;
//! - the root directory itself is not the guest's: changing its mode,
//!   owner, times or extended attributes fails with `EPERM`, as for an
//!   inode the caller does not own.
//!
//! Everything else passes through, so the visible entries are as writable
//! as the inner filesystem lets them be: opening, reading, writing,
//! truncating, syncing, xattrs, and any change below a visible directory.
//! The root's `..` is the root itself (the passthrough resolves it so), so
//! no walk leaves the share or reaches a hidden name.
//!
//! [`Subset`] only shapes the root's namespace; it knows nothing of access
//! modes. A read-only subset is `ReadOnly<Subset<_>>`: `ReadOnly` answers
//! every mutation with `EROFS` before it gets here, at the root as below
//! it, as for any read-only share. Operations neither forwarded here nor by
//! [`super::bounded::Bounded`] (locks, ioctl, DAX mappings) fall back to
//! the trait defaults, which refuse them without reaching the inner
//! filesystem.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::io;
use std::time::Duration;

use fuse_backend_rs::abi::fuse_abi::{stat64, statvfs64, CreateIn};
use fuse_backend_rs::api::filesystem::{
    Context, DirEntry, Entry, FileSystem, FsOptions, GetxattrReply, ListxattrReply, OpenOptions,
    SetattrValid, ZeroCopyReader, ZeroCopyWriter, ROOT_ID,
};

/// Serves `F` with the root's entries limited to a fixed set of names.
pub struct Subset<F> {
    inner: F,
    /// The only names at the root. Ordered: a name's position is its
    /// offset in root listings.
    visible: BTreeSet<CString>,
}

impl<F> Subset<F> {
    /// Shows only `visible` at the root of `inner`. Names that do not exist
    /// there are not listed, and found once they do.
    pub fn new(inner: F, visible: BTreeSet<CString>) -> Self {
        Self { inner, visible }
    }

    fn hidden(&self, parent: u64, name: &CStr) -> bool {
        parent == ROOT_ID
            && !matches!(name.to_bytes(), b"." | b"..")
            && !self.visible.contains(name)
    }
}

/// Refuses changes to the root's set of entries.
fn fixed_entries(parent: u64) -> io::Result<()> {
    if parent == ROOT_ID {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok(())
}

/// Refuses changes to the root directory's own attributes.
fn not_owned(inode: u64) -> io::Result<()> {
    if inode == ROOT_ID {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
}

/// Whether `open(2)` flags make an unnamed file in the opened directory.
/// Only the `O_TMPFILE` bit beyond `O_DIRECTORY` counts: a plain
/// `O_DIRECTORY` open makes nothing.
fn makes_unnamed_file(flags: u32) -> bool {
    // FUSE passes open(2) flags as an unsigned copy of the C int.
    flags as i32 & (libc::O_TMPFILE & !libc::O_DIRECTORY) != 0
}

/// Refuses opens of the root that would make an unnamed file in it.
fn no_unnamed_file(inode: u64, flags: u32) -> io::Result<()> {
    if makes_unnamed_file(flags) {
        fixed_entries(inode)?;
    }
    Ok(())
}

/// The `DT_*` directory entry type of a file of `mode`.
fn dirent_type(mode: u32) -> u32 {
    (mode & libc::S_IFMT) >> 12
}

impl<F: FileSystem<Inode = u64>> Subset<F> {
    /// Lists the root from `offset` on, calling `add_entry` with each
    /// visible name that exists, its attributes and a reference to its
    /// inode.
    ///
    /// Built from the visible names rather than the host directory, a
    /// listing neither touches the hidden entries (a filtered listing of
    /// the passthrough would look each of them up) nor ends early: the
    /// guest takes an empty reply for the end of the directory, which a
    /// filtered listing gives whenever a whole batch of host entries is
    /// hidden. Offsets are positions in `visible`, stable for the share's
    /// life, so the directory handle is not needed.
    ///
    /// With `keep_added`, the inode references of the entries `add_entry`
    /// took stay with the guest (READDIRPLUS replies count as lookups);
    /// every other reference is given back at once.
    fn list_root(
        &self,
        ctx: &Context,
        offset: u64,
        keep_added: bool,
        add_entry: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
    ) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut listed_any = false;
        for (index, name) in self.visible.iter().enumerate().skip(start) {
            let entry = match self.inner.lookup(ctx, ROOT_ID, name) {
                Ok(entry) => entry,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return stop_listing(listed_any, e),
            };
            let dirent = DirEntry {
                ino: entry.attr.st_ino,
                // The offset of the entry after this one.
                offset: index as u64 + 1,
                type_: dirent_type(entry.attr.st_mode),
                name: name.to_bytes(),
            };
            let inode = entry.inode;
            let added = add_entry(dirent, entry);
            if !(keep_added && matches!(added, Ok(n) if n > 0)) {
                self.inner.forget(ctx, inode, 1);
            }
            match added {
                // The reply is full.
                Ok(0) => return Ok(()),
                Ok(_) => listed_any = true,
                Err(e) => return stop_listing(listed_any, e),
            }
        }
        Ok(())
    }
}

/// Ends a listing that failed with `error`: once entries are in the reply
/// it must go out, or the guest would never learn of the references they
/// hold, so the error waits for the next request.
fn stop_listing(listed_any: bool, error: io::Error) -> io::Result<()> {
    if listed_any {
        Ok(())
    } else {
        Err(error)
    }
}

impl<F: FileSystem<Inode = u64>> FileSystem for Subset<F> {
    type Inode = F::Inode;
    type Handle = F::Handle;

    fn init(&self, capable: FsOptions) -> io::Result<FsOptions> {
        self.inner.init(capable)
    }

    fn destroy(&self) {
        self.inner.destroy()
    }

    fn lookup(&self, ctx: &Context, parent: Self::Inode, name: &CStr) -> io::Result<Entry> {
        if self.hidden(parent, name) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.inner.lookup(ctx, parent, name)
    }

    fn forget(&self, ctx: &Context, inode: Self::Inode, count: u64) {
        self.inner.forget(ctx, inode, count)
    }

    fn batch_forget(&self, ctx: &Context, requests: Vec<(Self::Inode, u64)>) {
        self.inner.batch_forget(ctx, requests)
    }

    fn getattr(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Option<Self::Handle>,
    ) -> io::Result<(stat64, Duration)> {
        self.inner.getattr(ctx, inode, handle)
    }

    fn setattr(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        attr: stat64,
        handle: Option<Self::Handle>,
        valid: SetattrValid,
    ) -> io::Result<(stat64, Duration)> {
        not_owned(inode)?;
        self.inner.setattr(ctx, inode, attr, handle, valid)
    }

    fn readlink(&self, ctx: &Context, inode: Self::Inode) -> io::Result<Vec<u8>> {
        self.inner.readlink(ctx, inode)
    }

    fn symlink(
        &self,
        ctx: &Context,
        linkname: &CStr,
        parent: Self::Inode,
        name: &CStr,
    ) -> io::Result<Entry> {
        fixed_entries(parent)?;
        self.inner.symlink(ctx, linkname, parent, name)
    }

    fn mknod(
        &self,
        ctx: &Context,
        parent: Self::Inode,
        name: &CStr,
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> io::Result<Entry> {
        fixed_entries(parent)?;
        self.inner.mknod(ctx, parent, name, mode, rdev, umask)
    }

    fn mkdir(
        &self,
        ctx: &Context,
        parent: Self::Inode,
        name: &CStr,
        mode: u32,
        umask: u32,
    ) -> io::Result<Entry> {
        fixed_entries(parent)?;
        self.inner.mkdir(ctx, parent, name, mode, umask)
    }

    fn unlink(&self, ctx: &Context, parent: Self::Inode, name: &CStr) -> io::Result<()> {
        fixed_entries(parent)?;
        self.inner.unlink(ctx, parent, name)
    }

    fn rmdir(&self, ctx: &Context, parent: Self::Inode, name: &CStr) -> io::Result<()> {
        fixed_entries(parent)?;
        self.inner.rmdir(ctx, parent, name)
    }

    fn rename(
        &self,
        ctx: &Context,
        olddir: Self::Inode,
        oldname: &CStr,
        newdir: Self::Inode,
        newname: &CStr,
        flags: u32,
    ) -> io::Result<()> {
        fixed_entries(olddir)?;
        fixed_entries(newdir)?;
        self.inner
            .rename(ctx, olddir, oldname, newdir, newname, flags)
    }

    fn link(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        newparent: Self::Inode,
        newname: &CStr,
    ) -> io::Result<Entry> {
        fixed_entries(newparent)?;
        self.inner.link(ctx, inode, newparent, newname)
    }

    fn open(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        flags: u32,
        fuse_flags: u32,
    ) -> io::Result<(Option<Self::Handle>, OpenOptions, Option<u32>)> {
        no_unnamed_file(inode, flags)?;
        self.inner.open(ctx, inode, flags, fuse_flags)
    }

    fn create(
        &self,
        ctx: &Context,
        parent: Self::Inode,
        name: &CStr,
        args: CreateIn,
    ) -> io::Result<(Entry, Option<Self::Handle>, OpenOptions, Option<u32>)> {
        fixed_entries(parent)?;
        self.inner.create(ctx, parent, name, args)
    }

    fn read(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Self::Handle,
        w: &mut dyn ZeroCopyWriter,
        size: u32,
        offset: u64,
        lock_owner: Option<u64>,
        flags: u32,
    ) -> io::Result<usize> {
        self.inner
            .read(ctx, inode, handle, w, size, offset, lock_owner, flags)
    }

    fn write(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Self::Handle,
        r: &mut dyn ZeroCopyReader,
        size: u32,
        offset: u64,
        lock_owner: Option<u64>,
        delayed_write: bool,
        flags: u32,
        fuse_flags: u32,
    ) -> io::Result<usize> {
        self.inner.write(
            ctx,
            inode,
            handle,
            r,
            size,
            offset,
            lock_owner,
            delayed_write,
            flags,
            fuse_flags,
        )
    }

    fn flush(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Self::Handle,
        lock_owner: u64,
    ) -> io::Result<()> {
        self.inner.flush(ctx, inode, handle, lock_owner)
    }

    fn fsync(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        datasync: bool,
        handle: Self::Handle,
    ) -> io::Result<()> {
        self.inner.fsync(ctx, inode, datasync, handle)
    }

    fn fallocate(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Self::Handle,
        mode: u32,
        offset: u64,
        length: u64,
    ) -> io::Result<()> {
        self.inner
            .fallocate(ctx, inode, handle, mode, offset, length)
    }

    fn release(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        flags: u32,
        handle: Self::Handle,
        flush: bool,
        flock_release: bool,
        lock_owner: Option<u64>,
    ) -> io::Result<()> {
        self.inner
            .release(ctx, inode, flags, handle, flush, flock_release, lock_owner)
    }

    fn statfs(&self, ctx: &Context, inode: Self::Inode) -> io::Result<statvfs64> {
        self.inner.statfs(ctx, inode)
    }

    fn setxattr(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        name: &CStr,
        value: &[u8],
        flags: u32,
    ) -> io::Result<()> {
        not_owned(inode)?;
        self.inner.setxattr(ctx, inode, name, value, flags)
    }

    fn getxattr(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        name: &CStr,
        size: u32,
    ) -> io::Result<GetxattrReply> {
        self.inner.getxattr(ctx, inode, name, size)
    }

    fn listxattr(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        size: u32,
    ) -> io::Result<ListxattrReply> {
        self.inner.listxattr(ctx, inode, size)
    }

    fn removexattr(&self, ctx: &Context, inode: Self::Inode, name: &CStr) -> io::Result<()> {
        not_owned(inode)?;
        self.inner.removexattr(ctx, inode, name)
    }

    fn opendir(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        flags: u32,
    ) -> io::Result<(Option<Self::Handle>, OpenOptions)> {
        no_unnamed_file(inode, flags)?;
        self.inner.opendir(ctx, inode, flags)
    }

    fn readdir(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Self::Handle,
        size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
    ) -> io::Result<()> {
        if inode != ROOT_ID {
            return self
                .inner
                .readdir(ctx, inode, handle, size, offset, add_entry);
        }
        self.list_root(ctx, offset, false, &mut |dirent, _| add_entry(dirent))
    }

    fn readdirplus(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Self::Handle,
        size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
    ) -> io::Result<()> {
        if inode != ROOT_ID {
            return self
                .inner
                .readdirplus(ctx, inode, handle, size, offset, add_entry);
        }
        self.list_root(ctx, offset, true, add_entry)
    }

    fn fsyncdir(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        datasync: bool,
        handle: Self::Handle,
    ) -> io::Result<()> {
        self.inner.fsyncdir(ctx, inode, datasync, handle)
    }

    fn releasedir(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        flags: u32,
        handle: Self::Handle,
    ) -> io::Result<()> {
        self.inner.releasedir(ctx, inode, flags, handle)
    }

    fn access(&self, ctx: &Context, inode: Self::Inode, mask: u32) -> io::Result<()> {
        if mask & libc::W_OK as u32 != 0 {
            fixed_entries(inode)?;
        }
        self.inner.access(ctx, inode, mask)
    }

    fn lseek(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        handle: Self::Handle,
        offset: u64,
        whence: u32,
    ) -> io::Result<u64> {
        self.inner.lseek(ctx, inode, handle, offset, whence)
    }

    fn id_remap(&self, ctx: &mut Context) -> io::Result<()> {
        self.inner.id_remap(ctx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fuse_backend_rs::abi::fuse_abi::SetattrIn;

    use super::*;

    /// A root holding regular files: `present[i]` is inode `FIRST_INODE + i`.
    /// Records the references given back.
    struct Root {
        present: Vec<&'static CStr>,
        forgotten: Mutex<Vec<u64>>,
    }

    const FIRST_INODE: u64 = 10;

    impl Root {
        fn new(present: &[&'static CStr]) -> Self {
            Root {
                present: present.to_vec(),
                forgotten: Mutex::new(Vec::new()),
            }
        }
    }

    impl FileSystem for Root {
        type Inode = u64;
        type Handle = u64;

        fn lookup(&self, _: &Context, _: u64, name: &CStr) -> io::Result<Entry> {
            let index = self
                .present
                .iter()
                .position(|present| *present == name)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            let inode = FIRST_INODE + index as u64;
            let mut attr = stat64::from(SetattrIn {
                mode: libc::S_IFREG | 0o644,
                ..Default::default()
            });
            attr.st_ino = inode + 1000;
            Ok(Entry {
                inode,
                generation: 0,
                attr,
                attr_flags: 0,
                attr_timeout: Duration::ZERO,
                entry_timeout: Duration::ZERO,
            })
        }

        fn forget(&self, _: &Context, inode: u64, count: u64) {
            assert_eq!(count, 1);
            self.forgotten.lock().unwrap().push(inode);
        }
    }

    fn subset(present: &[&'static CStr], visible: &[&CStr]) -> Subset<Root> {
        let visible = visible.iter().map(|name| CString::from(*name)).collect();
        Subset::new(Root::new(present), visible)
    }

    /// The names a READDIRPLUS from `offset` lists, taking at most `room`
    /// entries, with their offsets.
    fn list_plus(fs: &Subset<Root>, offset: u64, room: usize) -> Vec<(String, u64)> {
        let mut listed = Vec::new();
        fs.readdirplus(
            &Context::new(),
            ROOT_ID,
            0,
            4096,
            offset,
            &mut |dirent, entry| {
                if listed.len() == room {
                    return Ok(0);
                }
                assert_eq!(dirent.ino, entry.attr.st_ino);
                assert_eq!(dirent.type_, u32::from(libc::DT_REG));
                let name = String::from_utf8(dirent.name.to_vec()).unwrap();
                listed.push((name, dirent.offset));
                Ok(1)
            },
        )
        .unwrap();
        listed
    }

    fn forgotten(fs: &Subset<Root>) -> Vec<u64> {
        std::mem::take(&mut *fs.inner.forgotten.lock().unwrap())
    }

    #[test]
    fn root_listing_holds_the_visible_names_that_exist_in_order() {
        let fs = subset(&[c"hidden", c"b", c"a"], &[c"b", c"missing", c"a"]);
        // Sorted: a, b, missing; offsets are positions in that order.
        assert_eq!(
            list_plus(&fs, 0, usize::MAX),
            [("a".into(), 1), ("b".into(), 2)]
        );
        assert_eq!(list_plus(&fs, 1, usize::MAX), [("b".into(), 2)]);
        assert!(list_plus(&fs, 2, usize::MAX).is_empty());
        assert!(list_plus(&fs, u64::MAX, usize::MAX).is_empty());
        // The guest holds the references READDIRPLUS gave it.
        assert!(forgotten(&fs).is_empty());
    }

    #[test]
    fn references_not_handed_to_the_guest_are_given_back() {
        let fs = subset(&[c"a", c"b"], &[c"a", c"b"]);
        // A full reply after "a": "b" was looked up for nothing.
        assert_eq!(list_plus(&fs, 0, 1), [("a".into(), 1)]);
        assert_eq!(forgotten(&fs), [FIRST_INODE + 1]);

        // READDIR replies hold no references at all.
        let mut names = Vec::new();
        fs.readdir(&Context::new(), ROOT_ID, 0, 4096, 0, &mut |dirent| {
            names.push(dirent.name.to_vec());
            Ok(1)
        })
        .unwrap();
        assert_eq!(names, [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(forgotten(&fs), [FIRST_INODE, FIRST_INODE + 1]);
    }

    #[test]
    fn a_failed_listing_reports_the_error_only_if_nothing_was_listed() {
        let fs = subset(&[c"a", c"b"], &[c"a", c"b"]);
        let ctx = Context::new();
        let full = || io::Error::from_raw_os_error(libc::EOVERFLOW);
        let err = fs
            .readdirplus(&ctx, ROOT_ID, 0, 4096, 0, &mut |_, _| Err(full()))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EOVERFLOW));
        assert_eq!(forgotten(&fs), [FIRST_INODE]);

        let mut calls = 0;
        fs.readdirplus(&ctx, ROOT_ID, 0, 4096, 0, &mut |_, _| {
            calls += 1;
            if calls == 1 {
                Ok(1)
            } else {
                Err(full())
            }
        })
        .unwrap();
        assert_eq!(forgotten(&fs), [FIRST_INODE + 1]);
    }

    #[test]
    fn only_hidden_names_at_the_root_are_hidden() {
        let fs = subset(&[c"a", c"b"], &[c"a"]);
        let ctx = Context::new();
        let enoent = Some(libc::ENOENT);
        assert_eq!(
            fs.lookup(&ctx, ROOT_ID, c"b").unwrap_err().raw_os_error(),
            enoent
        );
        fs.lookup(&ctx, ROOT_ID, c"a").unwrap();
        // Below the root nothing is filtered.
        fs.lookup(&ctx, FIRST_INODE, c"b").unwrap();
        assert!(!fs.hidden(ROOT_ID, c"."));
        assert!(!fs.hidden(ROOT_ID, c".."));
    }

    #[test]
    fn only_the_tmpfile_bit_makes_an_unnamed_file() {
        let flags = |f: libc::c_int| f as u32;
        assert!(makes_unnamed_file(flags(libc::O_RDWR | libc::O_TMPFILE)));
        assert!(makes_unnamed_file(flags(
            libc::O_TMPFILE & !libc::O_DIRECTORY
        )));
        for f in [
            libc::O_RDONLY,
            libc::O_RDONLY | libc::O_DIRECTORY,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
        ] {
            assert!(!makes_unnamed_file(flags(f)), "{f:#o}");
        }
    }
}
