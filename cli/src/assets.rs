//! Locating the files hull boots a guest from: the guest kernel and agent.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// File name of the guest agent binary, installed next to `hull`.
const AGENT_NAME: &str = "hull-agent";
/// Where `kernel-config/build.sh` publishes the kernel it built last.
const KERNEL_CACHE: &str = ".cache/hull/kernel/current/vmlinux";

/// The static guest agent: `$HULL_AGENT`, else next to the `hull` executable,
/// else where a static cargo build of the workspace leaves it.
pub fn agent_binary() -> Result<PathBuf> {
    if let Some(path) = env::var_os("HULL_AGENT") {
        return existing_file(PathBuf::from(path), "HULL_AGENT");
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
    match candidates.iter().find(|path| path.is_file()) {
        Some(found) => Ok(found.clone()),
        None => bail!(
            "guest agent not found at {}; build it with `scripts/build` or set HULL_AGENT",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    }
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

    let agent_bytes =
        std::fs::read(agent).with_context(|| format!("cannot read the guest agent {}", agent.display()))?;
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
