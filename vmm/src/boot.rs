//! Puts everything the kernel needs for a direct 64-bit boot into guest
//! memory: the ELF kernel, the initramfs, the command line, the zero page,
//! the boot page tables and GDT, and the MP table.

use std::fs::File;
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::{load_cmdline, Elf, KernelLoader};
use vm_memory::{Bytes, GuestAddress, GuestMemoryError};

use crate::arch::x86_64::boot_params::{zero_page, InitramfsPlacement};
use crate::arch::x86_64::layout::{
    RamRange, CMDLINE_START, HIMEM_START, PAGE_SIZE, ZERO_PAGE_START,
};
use crate::arch::x86_64::mptable::{self, MptableError};
use crate::arch::x86_64::{gdt, paging};
use crate::devices::virtio::GuestMemory;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot open kernel {path}: {source}")]
    OpenKernel {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load kernel {path}: {source}")]
    LoadKernel {
        path: PathBuf,
        #[source]
        source: linux_loader::loader::Error,
    },
    #[error("cannot read initramfs {path}: {source}")]
    ReadInitramfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "initramfs {path} ({size} bytes) does not fit in the guest RAM between the kernel and the MMIO gap"
    )]
    InitramfsTooLarge { path: PathBuf, size: u64 },
    #[error("cannot load initramfs {path} into guest memory: {source}")]
    LoadInitramfs {
        path: PathBuf,
        #[source]
        source: GuestMemoryError,
    },
    #[error("cannot write the kernel command line: {0}")]
    Cmdline(#[source] linux_loader::loader::Error),
    #[error("cannot write {what} to guest memory: {source}")]
    Write {
        what: &'static str,
        #[source]
        source: GuestMemoryError,
    },
    #[error(transparent)]
    Mptable(#[from] MptableError),
}

/// What the vCPUs need to start the kernel.
#[derive(Clone, Copy, Debug)]
pub struct BootEntry {
    /// 64-bit entry point (the ELF entry).
    pub entry: GuestAddress,
    /// CR3 of the identity-mapped boot page tables.
    pub cr3: u64,
}

/// Loads kernel, initramfs and boot structures into `mem`.
pub fn load(
    mem: &GuestMemory,
    ram: &[RamRange],
    kernel: &Path,
    initramfs: Option<&Path>,
    cmdline: &Cmdline,
    vcpus: u8,
) -> Result<BootEntry, BootError> {
    let mut kernel_file = File::open(kernel).map_err(|source| BootError::OpenKernel {
        path: kernel.to_owned(),
        source,
    })?;
    let loaded = Elf::load(mem, None, &mut kernel_file, Some(GuestAddress(HIMEM_START))).map_err(
        |source| BootError::LoadKernel {
            path: kernel.to_owned(),
            source,
        },
    )?;

    let initramfs = initramfs
        .map(|path| load_initramfs(mem, ram, path, loaded.kernel_end))
        .transpose()?;

    load_cmdline(mem, GuestAddress(CMDLINE_START), cmdline).map_err(BootError::Cmdline)?;
    let cmdline_size = cmdline
        .as_cstring()
        .map(|c| c.as_bytes_with_nul().len())
        .map_err(|_| BootError::Cmdline(linux_loader::loader::Error::InvalidCommandLine))?;

    let write = |what| move |source| BootError::Write { what, source };
    mem.write_obj(
        zero_page(ram, cmdline_size, initramfs),
        GuestAddress(ZERO_PAGE_START),
    )
    .map_err(write("the zero page"))?;
    let cr3 = paging::write_identity_map(mem).map_err(write("the boot page tables"))?;
    gdt::write_boot_gdt(mem).map_err(write("the boot GDT"))?;
    mptable::write(mem, vcpus)?;

    Ok(BootEntry {
        entry: loaded.kernel_load,
        cr3,
    })
}

/// Copies the initramfs to the top of the RAM below the MMIO gap, page
/// aligned and above the end of the kernel image. The ELF kernel runs where
/// it was loaded: there is no decompressor or relocation to keep clear of.
fn load_initramfs(
    mem: &GuestMemory,
    ram: &[RamRange],
    path: &Path,
    kernel_end: u64,
) -> Result<InitramfsPlacement, BootError> {
    let read_error = |source| BootError::ReadInitramfs {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    let low_end = ram.first().map_or(0, RamRange::end);
    let address = initramfs_address(low_end, size, kernel_end).ok_or_else(|| {
        BootError::InitramfsTooLarge {
            path: path.to_owned(),
            size,
        }
    })?;
    mem.read_exact_volatile_from(GuestAddress(address), &mut file, size as usize)
        .map_err(|source| BootError::LoadInitramfs {
            path: path.to_owned(),
            source,
        })?;
    Ok(InitramfsPlacement {
        address: GuestAddress(address),
        size: size as u32,
    })
}

/// The page-aligned address that puts `size` bytes just below `low_end`,
/// if that is above the kernel.
fn initramfs_address(low_end: u64, size: u64, kernel_end: u64) -> Option<u64> {
    if size > u64::from(u32::MAX) {
        return None;
    }
    let address = low_end.checked_sub(size)? & !(PAGE_SIZE - 1);
    (address >= kernel_end).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_goes_page_aligned_to_the_top_of_low_ram() {
        assert_eq!(
            initramfs_address(0x1000_0000, 0x1800, 0x200_0000),
            Some(0x0fff_e000)
        );
        assert_eq!(
            initramfs_address(0x1000_0000, 0x1000, 0x200_0000),
            Some(0x0fff_f000)
        );
    }

    #[test]
    fn initramfs_must_not_overlap_the_kernel() {
        assert_eq!(
            initramfs_address(0x1000_0000, 0x0f00_0000, 0x200_0000),
            None
        );
        assert_eq!(initramfs_address(0x1000, 0x2000, 0), None);
    }

    #[test]
    fn missing_kernel_is_reported_with_its_path() {
        let mem = crate::memory::create(&[RamRange {
            start: 0,
            len: 64 << 20,
        }])
        .unwrap();
        let cmdline = Cmdline::try_from("console=ttyS0", 256).unwrap();
        let err = load(
            &mem,
            &[],
            Path::new("/nonexistent/vmlinux"),
            None,
            &cmdline,
            1,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot open kernel /nonexistent/vmlinux: "),
            "{err}"
        );
    }
}
