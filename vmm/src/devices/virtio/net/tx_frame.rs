//! [`TxFrame`]: a frame the driver queued for transmission, gathered from
//! its TX chain without copying, as the tap writes it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use virtio_queue::DescriptorChain;
use vm_memory::{GuestMemory as _, VolatileSlice};

use super::{MAX_BUFFER_LEN, VNET_HDR_LEN};
use crate::devices::virtio::GuestMemory;

/// Most descriptors in one TX chain. Linux uses at most MAX_SKB_FRAGS + 2;
/// with every buffer split at most once between memory regions, the
/// vectored write stays well below UIO_MAXIOV (1024) buffers.
const MAX_DESCRIPTORS: usize = 256;

/// A frame the driver queued for transmission: the device-readable buffers
/// of one TX chain, in guest memory, checked to hold a vnet header and at
/// most [`MAX_BUFFER_LEN`] bytes.
pub struct TxFrame<'m> {
    slices: Vec<VolatileSlice<'m>>,
    len: usize,
}

impl<'m> TxFrame<'m> {
    /// The frame in `chain`, or why the chain is not a frame.
    pub(crate) fn gather(
        mem: &'m GuestMemory,
        chain: DescriptorChain<&'m GuestMemory>,
    ) -> Result<Self, &'static str> {
        let mut slices = Vec::new();
        let mut len = 0usize;
        for (index, desc) in chain.enumerate() {
            if index == MAX_DESCRIPTORS {
                return Err("more than 256 descriptors");
            }
            if desc.is_write_only() {
                return Err("a device-writable descriptor");
            }
            len += desc.len() as usize;
            if len > MAX_BUFFER_LEN {
                return Err("longer than 65562 bytes");
            }
            for slice in mem.get_slices(desc.addr(), desc.len() as usize) {
                slices.push(slice.map_err(|_| "a buffer outside guest memory")?);
            }
        }
        if len < VNET_HDR_LEN {
            return Err("shorter than the vnet header");
        }
        Ok(TxFrame { slices, len })
    }

    /// The frame's length, vnet header included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes the whole frame to `fd` with one `writev`, and returns the
    /// bytes written.
    pub fn write_to(&self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let guards: Vec<_> = self.slices.iter().map(VolatileSlice::ptr_guard).collect();
        let iovecs: Vec<libc::iovec> = guards
            .iter()
            .map(|guard| libc::iovec {
                iov_base: guard.as_ptr().cast_mut().cast(),
                iov_len: guard.len(),
            })
            .collect();
        // At most MAX_DESCRIPTORS times the number of memory regions.
        let count = libc::c_int::try_from(iovecs.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: every iovec describes guest memory that its guard keeps
        // mapped, and that the slices borrow from the guest memory, for the
        // whole call; writev only reads it.
        let written = unsafe { libc::writev(fd.as_raw_fd(), iovecs.as_ptr(), count) };
        usize::try_from(written).map_err(|_| io::Error::last_os_error())
    }
}
