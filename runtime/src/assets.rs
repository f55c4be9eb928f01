//! Locating the files hull boots a guest from: the guest kernel and agent.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// File name of the guest agent binary, installed next to `hull`.
const AGENT_NAME: &str = "hull-agent";
/// Where `kernel-config/build.sh` publishes the kernel it built last.
const KERNEL_CACHE: &str = ".cache/hull/kernel/current/vmlinux";

/// The static guest agent: `$HULL_AGENT`, else next to the `hull` executable,
/// else where `scripts/build` leaves its static build. A dynamically linked
/// `hull-agent` (what a plain `cargo build` of the workspace makes) is passed
/// over: the guest has no C library for it.
pub fn agent_binary() -> Result<PathBuf> {
    if let Some(path) = env::var_os("HULL_AGENT") {
        let path = existing_file(PathBuf::from(path), "HULL_AGENT")?;
        return match is_static_executable(&path)? {
            true => Ok(path),
            false => bail!(
                "HULL_AGENT names {}, which is not a static executable",
                path.display()
            ),
        };
    }
    let exe = env::current_exe().context("cannot locate the hull executable")?;
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let mut candidates = vec![exe_dir.join(AGENT_NAME)];
    if let (Some(profile), Some(target_dir)) = (exe_dir.file_name(), exe_dir.parent()) {
        candidates.push(
            target_dir
                .join("x86_64-unknown-linux-gnu")
                .join(profile)
                .join(AGENT_NAME),
        );
    }
    for candidate in candidates.iter().filter(|path| path.is_file()) {
        if is_static_executable(candidate)? {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "no statically linked guest agent at {}; build it with `scripts/build` or set HULL_AGENT",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )
}

/// Whether the file is a 64-bit little-endian ELF executable that needs no
/// program interpreter (no `PT_INTERP` segment), i.e. runs on a bare kernel.
fn is_static_executable(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(elf_needs_no_interpreter(&bytes).unwrap_or(false))
}

/// `None` when `elf` is not a well-formed ELF64 little-endian file.
fn elf_needs_no_interpreter(elf: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let program_headers = usize::try_from(u64_at(0x20)?).ok()?;
    let entry_size = usize::from(u16_at(0x36)?);
    let entries = usize::from(u16_at(0x38)?);
    for index in 0..entries {
        let header = program_headers.checked_add(index.checked_mul(entry_size)?)?;
        if u32_at(header)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

/// The guest kernel: `--kernel`, else `$HULL_KERNEL`, else the one
/// `kernel-config/build.sh` built last.
pub fn guest_kernel(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = flag {
        return existing_file(path.to_owned(), "--kernel");
    }
    if let Some(path) = env::var_os("HULL_KERNEL") {
        return existing_file(PathBuf::from(path), "HULL_KERNEL");
    }
    let home = env::var_os("HOME").context("HOME is not set; pass --kernel PATH")?;
    let path = Path::new(&home).join(KERNEL_CACHE);
    if !path.is_file() {
        bail!(
            "no guest kernel at {}: build it with kernel-config/build.sh or pass --kernel PATH",
            path.display()
        );
    }
    Ok(path)
}

fn existing_file(path: PathBuf, source: &str) -> Result<PathBuf> {
    if !path.is_file() {
        bail!("{source} names {}, which is not a file", path.display());
    }
    Ok(path)
}

/// The initramfs that boots the guest: the agent as `/init`, nothing else.
/// Built once per agent binary and cached under `cache_dir`.
pub fn agent_initramfs(agent: &Path, cache_dir: &Path) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};

    let agent_bytes = std::fs::read(agent)
        .with_context(|| format!("cannot read the guest agent {}", agent.display()))?;
    let digest = hex::encode(Sha256::digest(&agent_bytes));
    let path = cache_dir.join(format!("initramfs-{}.cpio", &digest[..16]));
    if path.is_file() {
        return Ok(path);
    }
    let mut archive = crate::initramfs::Archive::new();
    archive
        .dir("dev", 0o755)
        .char_device("dev/console", 0o600, 5, 1)
        .file("init", 0o755, &agent_bytes);
    crate::fsutil::write_atomically(&path, &archive.finish())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header followed by `types.len()` program headers of those types.
    fn elf_with_segments(types: &[u32]) -> Vec<u8> {
        const HEADER: usize = 64;
        const PHDR: usize = 56;
        let mut elf = vec![0u8; HEADER + PHDR * types.len()];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&(HEADER as u64).to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&(PHDR as u16).to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (index, kind) in types.iter().enumerate() {
            let at = HEADER + index * PHDR;
            elf[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        }
        elf
    }

    #[test]
    fn an_interpreter_segment_means_dynamic() {
        assert_eq!(
            elf_needs_no_interpreter(&elf_with_segments(&[6, 3, 1])),
            Some(false)
        );
        assert_eq!(
            elf_needs_no_interpreter(&elf_with_segments(&[1, 1, 2])),
            Some(true)
        );
    }

    #[test]
    fn this_test_binary_is_dynamic() {
        let exe = env::current_exe().unwrap();
        assert!(!is_static_executable(&exe).unwrap());
    }

    #[test]
    fn truncated_or_foreign_files_are_not_static_executables() {
        let elf = elf_with_segments(&[1, 1]);
        // Cut inside the second program header's type field.
        assert_eq!(elf_needs_no_interpreter(&elf[..64 + 56 + 2]), None);
        assert_eq!(elf_needs_no_interpreter(b"#!/bin/sh\n"), None);
        let mut elf32 = elf.clone();
        elf32[4] = 1;
        assert_eq!(elf_needs_no_interpreter(&elf32), None);
    }
}
