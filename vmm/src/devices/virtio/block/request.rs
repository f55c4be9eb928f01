//! One virtio-blk request: a descriptor chain of a 16-byte header, data
//! buffers, and a status byte in the last device-writable descriptor.
//! The header must be a descriptor of its own, and the last descriptor
//! holds only the status (its last byte), as every Linux driver frames
//! requests; other framings are not supported.
//!
//! Every chain is answered: the status byte is set whenever the chain has
//! somewhere to put it, and the returned used length counts the bytes
//! written into device-writable buffers. Nothing a driver puts in a chain
//! can make the device panic or touch memory outside the guest's.

use std::io;

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD,
    VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
    VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::DescriptorChain;
use vm_memory::{Address, Bytes, GuestMemory as _, VolatileSlice};

use super::image::{DiskImage, SECTOR_SIZE};
use crate::devices::virtio::GuestMemory;

/// Most data buffers in one request (the `seg_max` the driver is told).
pub(super) const SEG_MAX: u32 = 128;
/// Largest single data buffer (the `size_max` the driver is told).
pub(super) const SIZE_MAX: u32 = 1 << 20;
/// Most ranges in one DISCARD or WRITE_ZEROES request.
pub(super) const MAX_RANGES: u32 = 32;
/// Largest range of a DISCARD or WRITE_ZEROES request, in sectors (2 GiB).
pub(super) const MAX_RANGE_SECTORS: u32 = 1 << 22;

/// Header, data buffers, status: longer chains are refused unread.
const MAX_DESCRIPTORS: usize = SEG_MAX as usize + 2;
/// `struct virtio_blk_outhdr`: type, reserved, sector.
const HEADER_LEN: u32 = 16;
/// `struct virtio_blk_discard_write_zeroes`: sector, num_sectors, flags.
const RANGE_LEN: usize = 16;

/// Why a request failed, as reported in its status byte.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// VIRTIO_BLK_S_IOERR: a malformed request, or the host I/O failed.
    IoErr,
    /// VIRTIO_BLK_S_UNSUPP: a request type or flag the device lacks.
    Unsupp,
}

type RequestResult = Result<u32, Failure>;

/// Serves the request in `chain` against `image` and returns the number of
/// bytes written into the chain's device-writable buffers.
pub(crate) fn serve(
    image: &DiskImage,
    mem: &GuestMemory,
    chain: DescriptorChain<&GuestMemory>,
) -> u32 {
    let head = chain.head_index();
    let descs: Vec<Descriptor> = chain.take(MAX_DESCRIPTORS + 1).collect();
    if descs.len() > MAX_DESCRIPTORS {
        log::warn!("virtio-blk: chain {head} has more than {MAX_DESCRIPTORS} descriptors; dropped");
        return 0;
    }
    let Some((status, request)) = descs.split_last() else {
        log::warn!("virtio-blk: chain {head} is empty");
        return 0;
    };
    let status_addr = match status.len() {
        len if status.is_write_only() && len > 0 => status.addr().checked_add(u64::from(len) - 1),
        _ => None,
    };
    let Some(status_addr) = status_addr else {
        log::warn!("virtio-blk: chain {head} has no writable status byte; dropped");
        return 0;
    };
    let (code, written) = match execute(image, mem, request) {
        Ok(written) => (VIRTIO_BLK_S_OK, written),
        Err(Failure::IoErr) => (VIRTIO_BLK_S_IOERR, 0),
        Err(Failure::Unsupp) => (VIRTIO_BLK_S_UNSUPP, 0),
    };
    match mem.write_obj(code as u8, status_addr) {
        Ok(()) => written + 1,
        Err(e) => {
            log::warn!("virtio-blk: chain {head}: cannot write the status byte: {e}");
            written
        }
    }
}

/// Carries out the request made of `descs` (the chain minus its status
/// descriptor) and returns how many bytes it wrote into guest buffers.
fn execute(image: &DiskImage, mem: &GuestMemory, descs: &[Descriptor]) -> RequestResult {
    let Some((header, data)) = descs.split_first() else {
        return malformed("no request header");
    };
    if header.is_write_only() || header.len() != HEADER_LEN {
        return malformed("the header is not one 16-byte readable buffer");
    }
    let header: [u8; HEADER_LEN as usize] = mem
        .read_obj(header.addr())
        .or_else(|_| malformed("the header is outside guest memory"))?;
    let (request_type, sector) = split_header(&header);
    match request_type {
        VIRTIO_BLK_T_IN => read(image, mem, sector, data),
        VIRTIO_BLK_T_OUT => write(image, mem, sector, data),
        VIRTIO_BLK_T_FLUSH => image.flush().map(|()| 0).or_else(host_error("flush")),
        VIRTIO_BLK_T_GET_ID => get_id(image, mem, data),
        VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => punch(image, mem, data),
        other => {
            log::debug!("virtio-blk: unsupported request type {other}");
            Err(Failure::Unsupp)
        }
    }
}

/// The request type and sector of a `virtio_blk_outhdr`.
fn split_header(header: &[u8; HEADER_LEN as usize]) -> (u32, u64) {
    (
        u32::from_le_bytes(field(header, 0)),
        u64::from_le_bytes(field(header, 8)),
    )
}

/// The `N` bytes of `bytes` at `at`; zeros where `bytes` is too short.
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|field| field.try_into().ok())
        .unwrap_or([0; N])
}

/// IN: sectors from `sector` on into the writable `data` buffers.
fn read(image: &DiskImage, mem: &GuestMemory, sector: u64, data: &[Descriptor]) -> RequestResult {
    let (buffers, len) = data_buffers(mem, data, true)?;
    let mut offset = disk_offset(image, sector, len)?;
    for buffer in &buffers {
        image
            .read_into(offset, buffer)
            .or_else(host_error("read"))?;
        offset += buffer.len() as u64;
    }
    // `len` is at most SEG_MAX * SIZE_MAX.
    u32::try_from(len).or_else(|_| malformed("request too long"))
}

/// OUT: the readable `data` buffers to sectors from `sector` on.
fn write(image: &DiskImage, mem: &GuestMemory, sector: u64, data: &[Descriptor]) -> RequestResult {
    if image.read_only() {
        return malformed("write to a read-only disk");
    }
    let (buffers, len) = data_buffers(mem, data, false)?;
    let mut offset = disk_offset(image, sector, len)?;
    for buffer in &buffers {
        image
            .write_from(offset, buffer)
            .or_else(host_error("write"))?;
        offset += buffer.len() as u64;
    }
    Ok(0)
}

/// GET_ID: the serial number into the writable `data` buffers, truncated
/// to their length, NUL-padded when they are longer.
fn get_id(image: &DiskImage, mem: &GuestMemory, data: &[Descriptor]) -> RequestResult {
    let (buffers, _) = data_buffers(mem, data, true)?;
    let mut serial: &[u8] = image.serial();
    let mut written = 0;
    for buffer in &buffers {
        let n = buffer.len().min(serial.len());
        let (now, later) = serial.split_at(n);
        buffer
            .write_slice(now, 0)
            .or_else(|_| malformed("GET_ID buffer outside guest memory"))?;
        serial = later;
        written += n;
    }
    u32::try_from(written).or_else(|_| malformed("GET_ID buffer too long"))
}

/// DISCARD and WRITE_ZEROES: both punch holes, which read back as zeros and
/// keep a sparse image sparse.
fn punch(image: &DiskImage, mem: &GuestMemory, data: &[Descriptor]) -> RequestResult {
    if image.read_only() {
        return malformed("discard on a read-only disk");
    }
    let (buffers, len) = data_buffers(mem, data, false)?;
    if len == 0
        || !len.is_multiple_of(RANGE_LEN as u64)
        || len > u64::from(MAX_RANGES) * RANGE_LEN as u64
    {
        return malformed("discard ranges are not 1 to MAX_RANGES 16-byte entries");
    }
    let mut raw = vec![0u8; len as usize];
    let mut filled = 0;
    for buffer in &buffers {
        filled += buffer.copy_to(&mut raw[filled..]);
    }
    // Every range is checked before any is punched.
    let ranges = raw
        .chunks_exact(RANGE_LEN)
        .map(|entry| punch_range(image, entry))
        .collect::<Result<Vec<_>, _>>()?;
    for (offset, len) in ranges {
        image
            .punch_hole(offset, len)
            .or_else(host_error("punch hole"))?;
    }
    Ok(0)
}

/// The byte range one `virtio_blk_discard_write_zeroes` entry names.
fn punch_range(image: &DiskImage, entry: &[u8]) -> Result<(u64, u64), Failure> {
    let sector = u64::from_le_bytes(field(entry, 0));
    let sectors = u32::from_le_bytes(field(entry, 8));
    let flags = u32::from_le_bytes(field(entry, 12));
    if flags & !VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0 {
        log::debug!("virtio-blk: unknown discard flags {flags:#x}");
        return Err(Failure::Unsupp);
    }
    if sectors > MAX_RANGE_SECTORS {
        return malformed("discard range longer than max_discard_sectors");
    }
    let len = u64::from(sectors) * SECTOR_SIZE;
    Ok((disk_offset(image, sector, len)?, len))
}

/// The guest memory behind `data`, checked before any I/O: every buffer in
/// the direction the request needs (`writable` for the device to write),
/// at most `size_max` long, wholly in guest memory. Also returns the total
/// length.
fn data_buffers<'m>(
    mem: &'m GuestMemory,
    data: &[Descriptor],
    writable: bool,
) -> Result<(Vec<VolatileSlice<'m, ()>>, u64), Failure> {
    let mut buffers = Vec::with_capacity(data.len());
    let mut len = 0u64;
    for desc in data {
        if desc.is_write_only() != writable {
            return malformed("a data buffer has the wrong direction");
        }
        if desc.len() > SIZE_MAX {
            return malformed("a data buffer is longer than size_max");
        }
        len += u64::from(desc.len());
        for slice in mem.get_slices(desc.addr(), desc.len() as usize) {
            buffers.push(slice.or_else(|_| malformed("a data buffer is outside guest memory"))?);
        }
    }
    Ok((buffers, len))
}

/// The byte offset of `sector`, if `len` bytes there are whole sectors
/// within the disk.
fn disk_offset(image: &DiskImage, sector: u64, len: u64) -> Result<u64, Failure> {
    if !len.is_multiple_of(SECTOR_SIZE) {
        return malformed("length is not a whole number of sectors");
    }
    image.byte_offset(sector, len).ok_or_else(|| {
        log::debug!(
            "virtio-blk: request at sector {sector} for {len} bytes is past the end of the disk"
        );
        Failure::IoErr
    })
}

fn malformed<T>(what: &str) -> Result<T, Failure> {
    log::debug!("virtio-blk: malformed request: {what}");
    Err(Failure::IoErr)
}

fn host_error<T>(op: &'static str) -> impl FnOnce(io::Error) -> Result<T, Failure> {
    move |e| {
        log::warn!("virtio-blk: {op} failed on the host: {e}");
        Err(Failure::IoErr)
    }
}
