//! A FUSE filesystem adapter that bounds what the guest can make the host
//! allocate or hold open, whatever the share's access mode.
//!
//! Every request of both read-write and read-only shares goes through
//! [`Bounded`], the outermost layer of every share's FUSE server:
//!
//! - sizes the guest asks for are clamped before the inner filesystem
//!   allocates buffers of that size: xattr values and name lists to
//!   [`XATTR_SIZE_MAX`], directory listings to the server's
//!   [`MAX_BUFFER_SIZE`];
//! - open file and directory handles (each a host file descriptor) are
//!   capped at [`MAX_OPEN_HANDLES`]; opening more fails with `EMFILE`;
//! - READ and WRITE go to the inner filesystem with the flags their handle
//!   was opened with, never the guest's (see [`super::handle_flags`]: other
//!   flags could make the passthrough close the handle's descriptor);
//! - at FUSE_INIT it tells the guest the largest requests it takes:
//!   [`LARGE_REQUESTS`], up to [`MAX_BUFFER_SIZE`] of file data each.
//!
//! It forwards what the passthrough filesystem implements. The rest (locks,
//! ioctl, bmap, poll, DAX mappings) falls back to the trait defaults, which
//! refuse it without reaching the inner filesystem, as the passthrough would.

use std::ffi::CStr;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fuse_backend_rs::abi::fuse_abi::{stat64, statvfs64, CreateIn};
use fuse_backend_rs::api::filesystem::{
    Context, DirEntry, Entry, FileSystem, FsOptions, GetxattrReply, ListxattrReply, OpenOptions,
    SetattrValid, ZeroCopyReader, ZeroCopyWriter,
};
use fuse_backend_rs::api::server::MAX_BUFFER_SIZE;

use super::handle_flags::HandleFlags;

/// Largest xattr value and xattr name list Linux deals in (the kernel's
/// XATTR_SIZE_MAX and XATTR_LIST_MAX); a guest kernel never asks for more.
const XATTR_SIZE_MAX: u32 = 64 * 1024;

/// Most file and directory handles a guest may hold open on one share.
const MAX_OPEN_HANDLES: usize = 64 * 1024;

/// FUSE_INIT options letting the guest move up to [`MAX_BUFFER_SIZE`]
/// (1 MiB) of file data in one request, where the server answers with
/// `max_write` and `max_pages` of that size. Without them a guest kernel
/// writes one page (4 KiB) per WRITE and reads at most 32 pages per READ,
/// and every request is a round trip through the queue (a VM exit, the
/// worker's wakeup, an interrupt). The server checks every request against
/// the same bound, and the passthrough moves file data straight between
/// guest memory and the host file, so larger requests allocate nothing
/// more on the host.
const LARGE_REQUESTS: FsOptions = FsOptions::BIG_WRITES.union(FsOptions::MAX_PAGES);

/// Passes requests to `F` within the bounds described in the module docs.
pub struct Bounded<F> {
    inner: F,
    handles: OpenHandles,
    flags: HandleFlags,
}

impl<F> Bounded<F> {
    pub fn new(inner: F) -> Self {
        Self {
            inner,
            handles: OpenHandles::new(MAX_OPEN_HANDLES),
            flags: HandleFlags::default(),
        }
    }
}

/// A count of open handles against a limit.
struct OpenHandles {
    open: AtomicUsize,
    max: usize,
}

impl OpenHandles {
    fn new(max: usize) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot for a handle about to be opened; `EMFILE` if none is
    /// left.
    fn reserve(&self) -> io::Result<()> {
        self.open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                (open < self.max).then_some(open + 1)
            })
            .map(drop)
            .map_err(|open| {
                log::warn!("virtio-fs: guest holds {open} open handles, refusing another");
                io::Error::from_raw_os_error(libc::EMFILE)
            })
    }

    /// Gives back the slot of a handle that was closed (or never opened).
    fn free(&self) {
        // Never below zero, even if the inner filesystem reports closing a
        // handle it did not count.
        let _ = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                open.checked_sub(1)
            });
    }

    /// Runs `open` in a reserved slot, which it keeps only if `opened` says
    /// the call's result holds a new handle.
    fn counted<T>(
        &self,
        open: impl FnOnce() -> io::Result<T>,
        opened: impl FnOnce(&T) -> bool,
    ) -> io::Result<T> {
        self.reserve()?;
        let result = open();
        if !result.as_ref().is_ok_and(opened) {
            self.free();
        }
        result
    }

    /// Frees a slot if `close` closed a handle.
    fn closing(&self, close: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let result = close();
        if result.is_ok() {
            self.free();
        }
        result
    }
}

impl<F: FileSystem> Bounded<F> {
    /// Records the flags of `handle`, just opened, if one was; returns it.
    fn record(&self, handle: Option<F::Handle>, flags: u32) -> Option<F::Handle> {
        handle.map(|handle| {
            let handle: u64 = handle.into();
            self.flags.opened(handle, flags);
            handle.into()
        })
    }
}

impl<F: FileSystem> FileSystem for Bounded<F> {
    type Inode = F::Inode;
    type Handle = F::Handle;

    /// What the inner filesystem wants, and [`LARGE_REQUESTS`]; the server
    /// enables those the guest offers.
    fn init(&self, capable: FsOptions) -> io::Result<FsOptions> {
        Ok(self.inner.init(capable)? | LARGE_REQUESTS)
    }

    /// The inner filesystem forgets every inode and handle.
    fn destroy(&self) {
        self.inner.destroy();
        self.handles.open.store(0, Ordering::SeqCst);
        self.flags.clear();
    }

    fn lookup(&self, ctx: &Context, parent: Self::Inode, name: &CStr) -> io::Result<Entry> {
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
        self.inner.symlink(ctx, linkname, parent, name)
    }

    fn mknod(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        name: &CStr,
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> io::Result<Entry> {
        self.inner.mknod(ctx, inode, name, mode, rdev, umask)
    }

    fn mkdir(
        &self,
        ctx: &Context,
        parent: Self::Inode,
        name: &CStr,
        mode: u32,
        umask: u32,
    ) -> io::Result<Entry> {
        self.inner.mkdir(ctx, parent, name, mode, umask)
    }

    fn unlink(&self, ctx: &Context, parent: Self::Inode, name: &CStr) -> io::Result<()> {
        self.inner.unlink(ctx, parent, name)
    }

    fn rmdir(&self, ctx: &Context, parent: Self::Inode, name: &CStr) -> io::Result<()> {
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
        self.inner.link(ctx, inode, newparent, newname)
    }

    fn open(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        flags: u32,
        fuse_flags: u32,
    ) -> io::Result<(Option<Self::Handle>, OpenOptions, Option<u32>)> {
        let (handle, options, passthrough) = self.handles.counted(
            || self.inner.open(ctx, inode, flags, fuse_flags),
            |(handle, _, _)| handle.is_some(),
        )?;
        Ok((self.record(handle, flags), options, passthrough))
    }

    fn create(
        &self,
        ctx: &Context,
        parent: Self::Inode,
        name: &CStr,
        args: CreateIn,
    ) -> io::Result<(Entry, Option<Self::Handle>, OpenOptions, Option<u32>)> {
        let (entry, handle, options, passthrough) = self.handles.counted(
            || self.inner.create(ctx, parent, name, args),
            |(_, handle, _, _)| handle.is_some(),
        )?;
        Ok((entry, self.record(handle, args.flags), options, passthrough))
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
        let handle: u64 = handle.into();
        let flags = self.flags.for_request(handle, flags);
        self.inner.read(
            ctx,
            inode,
            handle.into(),
            w,
            size,
            offset,
            lock_owner,
            flags,
        )
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
        let handle: u64 = handle.into();
        let flags = self.flags.for_request(handle, flags);
        self.inner.write(
            ctx,
            inode,
            handle.into(),
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
        let handle: u64 = handle.into();
        self.handles.closing(|| {
            self.inner.release(
                ctx,
                inode,
                flags,
                handle.into(),
                flush,
                flock_release,
                lock_owner,
            )
        })?;
        self.flags.closed(handle);
        Ok(())
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
        self.inner.setxattr(ctx, inode, name, value, flags)
    }

    fn getxattr(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        name: &CStr,
        size: u32,
    ) -> io::Result<GetxattrReply> {
        self.inner
            .getxattr(ctx, inode, name, size.min(XATTR_SIZE_MAX))
    }

    fn listxattr(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        size: u32,
    ) -> io::Result<ListxattrReply> {
        self.inner.listxattr(ctx, inode, size.min(XATTR_SIZE_MAX))
    }

    fn removexattr(&self, ctx: &Context, inode: Self::Inode, name: &CStr) -> io::Result<()> {
        self.inner.removexattr(ctx, inode, name)
    }

    fn opendir(
        &self,
        ctx: &Context,
        inode: Self::Inode,
        flags: u32,
    ) -> io::Result<(Option<Self::Handle>, OpenOptions)> {
        let (handle, options) = self.handles.counted(
            || self.inner.opendir(ctx, inode, flags),
            |(handle, _)| handle.is_some(),
        )?;
        Ok((self.record(handle, flags), options))
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
        let size = size.min(MAX_BUFFER_SIZE);
        self.inner
            .readdir(ctx, inode, handle, size, offset, add_entry)
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
        let size = size.min(MAX_BUFFER_SIZE);
        self.inner
            .readdirplus(ctx, inode, handle, size, offset, add_entry)
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
        let handle: u64 = handle.into();
        self.handles
            .closing(|| self.inner.releasedir(ctx, inode, flags, handle.into()))?;
        self.flags.closed(handle);
        Ok(())
    }

    fn access(&self, ctx: &Context, inode: Self::Inode, mask: u32) -> io::Result<()> {
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

    use super::*;

    /// A handle the recorder refuses to close, as for one never opened.
    const UNKNOWN_HANDLE: u64 = 99;

    /// Records the sizes it is asked for; opens and closes succeed.
    #[derive(Default)]
    struct Recorder {
        sizes: Mutex<Vec<u32>>,
    }

    impl Recorder {
        fn record(&self, size: u32) {
            self.sizes.lock().unwrap().push(size);
        }
    }

    impl FileSystem for Recorder {
        type Inode = u64;
        type Handle = u64;

        fn open(
            &self,
            _: &Context,
            _: u64,
            _: u32,
            _: u32,
        ) -> io::Result<(Option<u64>, OpenOptions, Option<u32>)> {
            Ok((Some(1), OpenOptions::empty(), None))
        }

        fn opendir(&self, _: &Context, _: u64, _: u32) -> io::Result<(Option<u64>, OpenOptions)> {
            Ok((Some(2), OpenOptions::empty()))
        }

        fn release(
            &self,
            _: &Context,
            _: u64,
            _: u32,
            handle: u64,
            _: bool,
            _: bool,
            _: Option<u64>,
        ) -> io::Result<()> {
            if handle == UNKNOWN_HANDLE {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            Ok(())
        }

        fn releasedir(&self, _: &Context, _: u64, _: u32, _: u64) -> io::Result<()> {
            Ok(())
        }

        fn getxattr(&self, _: &Context, _: u64, _: &CStr, size: u32) -> io::Result<GetxattrReply> {
            self.record(size);
            Ok(GetxattrReply::Count(0))
        }

        fn listxattr(&self, _: &Context, _: u64, size: u32) -> io::Result<ListxattrReply> {
            self.record(size);
            Ok(ListxattrReply::Count(0))
        }

        fn readdir(
            &self,
            _: &Context,
            _: u64,
            _: u64,
            size: u32,
            _: u64,
            _: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
        ) -> io::Result<()> {
            self.record(size);
            Ok(())
        }

        fn readdirplus(
            &self,
            _: &Context,
            _: u64,
            _: u64,
            size: u32,
            _: u64,
            _: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
        ) -> io::Result<()> {
            self.record(size);
            Ok(())
        }
    }

    fn with_handle_limit(max: usize) -> Bounded<Recorder> {
        Bounded {
            inner: Recorder::default(),
            handles: OpenHandles::new(max),
            flags: HandleFlags::default(),
        }
    }

    #[test]
    fn guest_sizes_are_clamped() {
        let fs = Bounded::new(Recorder::default());
        let ctx = Context::new();
        let name = c"user.x";
        for size in [0, 100, u32::MAX] {
            fs.getxattr(&ctx, 1, name, size).unwrap();
            fs.listxattr(&ctx, 1, size).unwrap();
            fs.readdir(&ctx, 1, 2, size, 0, &mut |_| Ok(0)).unwrap();
            fs.readdirplus(&ctx, 1, 2, size, 0, &mut |_, _| Ok(0))
                .unwrap();
        }
        let m = MAX_BUFFER_SIZE;
        let x = XATTR_SIZE_MAX;
        assert_eq!(
            *fs.inner.sizes.lock().unwrap(),
            [0, 0, 0, 0, 100, 100, 100, 100, x, x, m, m]
        );
    }

    #[test]
    fn open_handles_are_capped_with_emfile() {
        let fs = with_handle_limit(2);
        let ctx = Context::new();
        fs.open(&ctx, 1, 0, 0).unwrap();
        fs.opendir(&ctx, 1, 0).unwrap();
        let emfile = Some(libc::EMFILE);
        assert_eq!(fs.open(&ctx, 1, 0, 0).unwrap_err().raw_os_error(), emfile);
        assert_eq!(fs.opendir(&ctx, 1, 0).unwrap_err().raw_os_error(), emfile);

        // Closing a handle the inner filesystem does not know frees nothing.
        assert!(fs
            .release(&ctx, 1, 0, UNKNOWN_HANDLE, false, false, None)
            .is_err());
        assert!(fs.open(&ctx, 1, 0, 0).is_err());

        fs.release(&ctx, 1, 0, 1, false, false, None).unwrap();
        fs.open(&ctx, 1, 0, 0).unwrap();
        fs.releasedir(&ctx, 1, 0, 2).unwrap();
        fs.opendir(&ctx, 1, 0).unwrap();
        assert!(fs.opendir(&ctx, 1, 0).is_err());

        // FUSE_DESTROY closes everything.
        fs.destroy();
        fs.open(&ctx, 1, 0, 0).unwrap();
    }
}
