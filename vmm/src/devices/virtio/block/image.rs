//! The host side of a disk: a raw image file, locked for this VM, read and
//! written at sector offsets straight from and into guest memory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{fallocate, FallocateFlags};
use vm_memory::bitmap::BitmapSlice;
use vm_memory::VolatileSlice;

use super::error::BlockError;

/// The unit of the virtio-blk protocol: capacities, request offsets and
/// lengths are counted in 512-byte sectors.
pub const SECTOR_SIZE: u64 = 512;

/// Length of the GET_ID answer (VIRTIO_BLK_ID_BYTES).
pub(super) const SERIAL_LEN: usize = 20;

/// An open, locked disk image.
#[derive(Debug)]
pub(crate) struct DiskImage {
    file: File,
    sectors: u64,
    read_only: bool,
    serial: [u8; SERIAL_LEN],
}

impl DiskImage {
    /// Opens the image at `path` and locks it: exclusively when writable,
    /// shared when `read_only`, so no two VMs ever write the same image and
    /// nobody writes one that a VM reads. The lock lives as long as the
    /// file (std opens it close-on-exec, so children do not inherit it).
    pub(crate) fn open(path: &Path, read_only: bool) -> Result<Self, BlockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|source| BlockError::Open {
                path: path.to_owned(),
                source,
            })?;
        let locked = if read_only {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(BlockError::Locked {
                    path: path.to_owned(),
                })
            }
            Err(TryLockError::Error(source)) => {
                return Err(BlockError::Lock {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        // Seeking to the end also sizes block devices, whose metadata
        // length is 0.
        let len = file
            .seek(SeekFrom::End(0))
            .map_err(|source| BlockError::Size {
                path: path.to_owned(),
                source,
            })?;
        let sectors = len / SECTOR_SIZE;
        if sectors == 0 {
            return Err(BlockError::Empty {
                path: path.to_owned(),
            });
        }
        if !len.is_multiple_of(SECTOR_SIZE) {
            log::warn!(
                "virtio-blk: {} is not a whole number of sectors; its last {} bytes are not visible",
                path.display(),
                len % SECTOR_SIZE
            );
        }
        let serial = serial_for(&path.canonicalize().unwrap_or_else(|_| path.to_owned()));
        Ok(Self {
            file,
            sectors,
            read_only,
            serial,
        })
    }

    /// Capacity in sectors.
    pub(super) fn sectors(&self) -> u64 {
        self.sectors
    }

    pub(super) fn read_only(&self) -> bool {
        self.read_only
    }

    /// The disk's serial number, as GET_ID reports it.
    pub(super) fn serial(&self) -> &[u8; SERIAL_LEN] {
        &self.serial
    }

    /// The byte offset of `sector`, if `len` bytes starting there lie
    /// within the disk.
    pub(super) fn byte_offset(&self, sector: u64, len: u64) -> Option<u64> {
        let end_sector = sector.checked_add(len.div_ceil(SECTOR_SIZE))?;
        (end_sector <= self.sectors).then(|| sector * SECTOR_SIZE)
    }

    /// Fills `buf` (guest memory) from the image at byte `offset`.
    pub(super) fn read_into<B: BitmapSlice>(
        &self,
        mut offset: u64,
        buf: &VolatileSlice<B>,
    ) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.offset(done).map_err(io::Error::other)?;
            let guard = rest.ptr_guard_mut();
            // SAFETY: `guard` points at `rest.len()` bytes of mapped guest
            // memory that stay mapped while `rest` borrows the guest
            // memory; the kernel writes at most that many bytes there.
            let read = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    guard.as_ptr().cast(),
                    rest.len(),
                    file_offset(offset)?,
                )
            };
            match read {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n if n < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                n => {
                    let n = n.unsigned_abs();
                    rest.bitmap().mark_dirty(0, n);
                    done += n;
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Writes `buf` (guest memory) to the image at byte `offset`.
    pub(super) fn write_from<B: BitmapSlice>(
        &self,
        mut offset: u64,
        buf: &VolatileSlice<B>,
    ) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.offset(done).map_err(io::Error::other)?;
            let guard = rest.ptr_guard();
            // SAFETY: `guard` points at `rest.len()` bytes of mapped guest
            // memory that stay mapped while `rest` borrows the guest
            // memory; the kernel only reads them.
            let written = unsafe {
                libc::pwrite(
                    self.file.as_raw_fd(),
                    guard.as_ptr().cast(),
                    rest.len(),
                    file_offset(offset)?,
                )
            };
            match written {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n if n < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                n => {
                    let n = n.unsigned_abs();
                    done += n;
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Makes every completed write durable.
    pub(super) fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Deallocates `len` bytes at `offset`; they read back as zeros and the
    /// file's size is unchanged.
    pub(super) fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        fallocate(
            self.file.as_raw_fd(),
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            file_offset(offset)?,
            file_offset(len)?,
        )
        .map_err(io::Error::from)
    }
}

fn file_offset(value: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(value).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// "hull" and 16 hex digits of the FNV-1a hash of `path`: stable across
/// runs and hull versions, and distinct for distinct images.
fn serial_for(path: &Path) -> [u8; SERIAL_LEN] {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = path
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(FNV_OFFSET, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
        });
    let mut serial = [0u8; SERIAL_LEN];
    serial.copy_from_slice(format!("hull{hash:016x}").as_bytes());
    serial
}
