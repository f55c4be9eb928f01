//! The test host's boot image: Debian's kernel plus an initramfs of busybox,
//! the kernel modules the test host needs and its `/init`.
//!
//! Both are cached under `~/.cache/hull/testhost/<hash>/` (`initrd`, and
//! `vmlinux` when the kernel can boot uncompressed), keyed by everything
//! that goes into them.

use std::collections::HashMap;
use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use hull_runtime::fsutil;
use hull_runtime::initramfs::Archive;

/// PID 1 of the test host.
const INIT_SCRIPT: &str = include_str!("init.sh");

/// Modules `/init` loads; their dependencies are added from `modules.dep`.
/// virtio_pci and virtio_console carry the 9p share and the relay channel,
/// 9p and overlay build the root, kvm_amd provides /dev/kvm (nested SVM);
/// tun, bridge and the nftables NAT modules carry containers' networks
/// (crc32c_generic first: libcrc32c, which they need, only asks for it by
/// a soft dependency; veth: the networking tests' stand-in for the world
/// outside; virtio_net: the hull machine's way out through QEMU's user
/// network).
const MODULES: [&str; 15] = [
    "virtio_pci",
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "overlay",
    "kvm_amd",
    "tun",
    "bridge",
    "crc32c_generic",
    "nft_chain_nat",
    "nft_masq",
    "nft_ct",
    "nft_meta_bridge",
    "veth",
    "virtio_net",
];

/// Busybox applets `/init` calls, each linked into the initramfs: once
/// `/init` has moved `/proc` away, busybox's shell can no longer run an
/// applet through `/proc/self/exe`, only through its link.
const APPLETS: [&str; 11] = [
    "sh", "mount", "insmod", "mkdir", "ln", "cat", "chroot", "poweroff", "ip", "readlink", "sleep",
];

const BUSYBOX: &str = "/bin/busybox";

/// A bootable test host.
pub struct Image {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

impl Image {
    /// Finds the kernel and returns the cached image for it, building what
    /// the cache lacks first.
    pub fn prepare() -> Result<Image> {
        let kernel = Kernel::find()?;
        let busybox = Path::new(BUSYBOX);
        check_static(busybox)?;
        let modules = kernel.resolve_modules(&MODULES)?;

        let key = cache_key(&kernel, busybox, &modules)?;
        let home = env::var_os("HOME").context("HOME is not set")?;
        let dir = Path::new(&home)
            .join(".cache/hull/testhost")
            .join(&key[..16]);
        let initrd = dir.join("initrd");
        if !initrd.is_file() {
            let archive = build_initrd(&kernel, busybox, &modules)?;
            fsutil::write_atomically(&initrd, &archive)?;
        }
        Ok(Image {
            kernel: kernel.bootable(&dir)?,
            initrd,
        })
    }
}

/// A Debian kernel image and its module tree.
struct Kernel {
    release: String,
    image: PathBuf,
    modules_dir: PathBuf,
}

impl Kernel {
    /// The newest `/boot/vmlinuz-<release>` whose modules are installed.
    fn find() -> Result<Kernel> {
        let missing = || {
            anyhow::anyhow!(
                "no kernel with modules for the KVM test host in /boot: \
                 apt-get install linux-image-amd64"
            )
        };
        let entries = fs::read_dir("/boot").map_err(|_| missing())?;
        let newest = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter_map(|name| Some(name.strip_prefix("vmlinuz-")?.to_owned()))
            .filter(|release| {
                Path::new("/lib/modules")
                    .join(release)
                    .join("modules.dep")
                    .is_file()
            })
            .max_by(|a, b| version_key(a).cmp(&version_key(b)))
            .ok_or_else(missing)?;
        Ok(Kernel {
            image: Path::new("/boot").join(format!("vmlinuz-{newest}")),
            modules_dir: Path::new("/lib/modules").join(&newest),
            release: newest,
        })
    }

    /// The file QEMU should boot, cached in `dir`. Under TCG, firmware and
    /// the bzImage's XZ decompressor take ~4.5 s, so a PVH-capable kernel
    /// boots from its extracted vmlinux instead; others boot as they are.
    fn bootable(&self, dir: &Path) -> Result<PathBuf> {
        let vmlinux = dir.join("vmlinux");
        if vmlinux.is_file() {
            return Ok(vmlinux);
        }
        let config = Path::new("/boot").join(format!("config-{}", self.release));
        let pvh =
            fs::read_to_string(&config).is_ok_and(|text| text.lines().any(|l| l == "CONFIG_PVH=y"));
        if !pvh {
            return Ok(self.image.clone());
        }
        let bz_image = fs::read(&self.image)
            .with_context(|| format!("cannot read {}", self.image.display()))?;
        match find(&bz_image, XZ_MAGIC) {
            Some(start) => {
                let elf = xz_decompress(&bz_image[start..], &self.image)?;
                fsutil::write_atomically(&vmlinux, &elf)?;
                Ok(vmlinux)
            }
            None => Ok(self.image.clone()),
        }
    }

    /// Paths (relative to the module tree) of `roots` and everything they
    /// depend on, each after its dependencies.
    fn resolve_modules(&self, roots: &[&str]) -> Result<Vec<String>> {
        let dep_file = self.modules_dir.join("modules.dep");
        let text = fs::read_to_string(&dep_file)
            .with_context(|| format!("cannot read {}", dep_file.display()))?;
        let deps = parse_modules_dep(&text);
        let by_name: HashMap<String, &str> =
            deps.keys().map(|path| (module_name(path), *path)).collect();

        let mut ordered = Vec::new();
        for root in roots {
            let path = by_name.get(&module_name(root)).with_context(|| {
                format!(
                    "kernel {} has no module {root} in {}",
                    self.release,
                    dep_file.display()
                )
            })?;
            add_with_dependencies(path, &deps, &mut ordered);
        }
        Ok(ordered.into_iter().map(str::to_owned).collect())
    }
}

/// Module path -> the paths it depends on, from `modules.dep`.
fn parse_modules_dep(text: &str) -> HashMap<&str, Vec<&str>> {
    text.lines()
        .filter_map(|line| {
            let (module, deps) = line.split_once(':')?;
            Some((module.trim(), deps.split_whitespace().collect()))
        })
        .collect()
}

fn add_with_dependencies<'a>(
    path: &'a str,
    deps: &HashMap<&'a str, Vec<&'a str>>,
    ordered: &mut Vec<&'a str>,
) {
    if ordered.contains(&path) {
        return;
    }
    for dep in deps.get(path).into_iter().flatten() {
        add_with_dependencies(dep, deps, ordered);
    }
    ordered.push(path);
}

/// `kernel/arch/x86/kvm/kvm-amd.ko.xz` -> `kvm_amd`: the name the kernel
/// uses, where `-` and `_` are the same.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split_once(".ko").map_or(file, |(stem, _)| stem);
    stem.replace('-', "_")
}

/// Orders kernel releases by their numbers: `6.1.0-10` before `6.1.0-9` is wrong.
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect()
}

/// Refuses a dynamically linked busybox: the initramfs has no libc.
fn check_static(busybox: &Path) -> Result<()> {
    let missing = "busybox-static is needed for the KVM test host: apt-get install busybox-static";
    let elf = fs::read(busybox)
        .with_context(|| format!("{} is missing; {missing}", busybox.display()))?;
    match has_interpreter(&elf) {
        Some(false) => Ok(()),
        Some(true) => bail!("{} is dynamically linked; {missing}", busybox.display()),
        None => bail!(
            "{} is not an x86-64 ELF executable; {missing}",
            busybox.display()
        ),
    }
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP segment (is
/// dynamically linked); None if it is not such a file.
fn has_interpreter(elf: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for index in 0..phnum {
        if u32_at(phoff.checked_add(index.checked_mul(phentsize)?)?)? == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

/// Hash of everything the initramfs is made of. Files are identified by
/// size and modification time, which package upgrades change.
fn cache_key(kernel: &Kernel, busybox: &Path, modules: &[String]) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(kernel.release.as_bytes());
    hasher.update(file_identity(&kernel.image)?.as_bytes());
    hasher.update(INIT_SCRIPT.as_bytes());
    for applet in APPLETS {
        hasher.update(applet.as_bytes());
    }
    hasher.update(file_identity(busybox)?.as_bytes());
    for module in modules {
        hasher.update(module.as_bytes());
        hasher.update(file_identity(&kernel.modules_dir.join(module))?.as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn file_identity(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    Ok(format!("{}:{}:{mtime};", path.display(), meta.len()))
}

fn build_initrd(kernel: &Kernel, busybox: &Path, modules: &[String]) -> Result<Vec<u8>> {
    let mut archive = Archive::new();
    for dir in ["proc", "sys", "dev", "etc"] {
        archive.dir(dir, 0o755);
    }
    archive.char_device("dev/console", 0o600, 5, 1);

    let busybox_elf =
        fs::read(busybox).with_context(|| format!("cannot read {}", busybox.display()))?;
    archive.file("bin/busybox", 0o755, &busybox_elf);
    for applet in APPLETS {
        archive.symlink(&format!("bin/{applet}"), "busybox");
    }
    archive.file("init", 0o755, INIT_SCRIPT.as_bytes());

    let mut load_order = String::new();
    for module in modules {
        let source = kernel.modules_dir.join(module);
        let contents = read_module(&source)?;
        let name = module.rsplit('/').next().unwrap_or(module);
        let name = name.strip_suffix(".xz").unwrap_or(name);
        let target = format!("lib/modules/{name}");
        archive.file(&target, 0o644, &contents);
        load_order.push_str(&format!("/{target}\n"));
    }
    archive.file("etc/modules", 0o644, load_order.as_bytes());
    Ok(archive.finish())
}

/// A module's object code; `.ko.xz` files are decompressed, since busybox's
/// insmod takes plain objects.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let contents = fs::read(path).with_context(|| format!("cannot read {name}"))?;
    if name.ends_with(".ko") {
        Ok(contents)
    } else if name.ends_with(".ko.xz") {
        xz_decompress(&contents, path)
    } else {
        bail!("{name}: only .ko and .ko.xz kernel modules are supported")
    }
}

const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Decompresses the first XZ stream in `data` (which came from `origin`);
/// anything after that stream is ignored.
fn xz_decompress(data: &[u8], origin: &Path) -> Result<Vec<u8>> {
    let mut xz = Command::new("xz")
        .args(["--decompress", "--stdout", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run xz: apt-get install xz-utils")?;
    let mut stdin = xz.stdin.take().context("xz has no stdin")?;
    // Feed xz from a thread so that neither side blocks on a full pipe.
    let output = thread::scope(|scope| {
        scope.spawn(move || {
            // xz stops reading after the stream; a broken pipe is expected.
            let _ = stdin.write_all(data);
        });
        xz.wait_with_output()
    })
    .context("cannot run xz")?;
    if !output.status.success() {
        bail!(
            "xz cannot decompress {}: {}",
            origin.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/arch/x86/kvm/kvm-amd.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz
kernel/arch/x86/kvm/kvm.ko.xz:
";

    fn resolve(roots: &[&str]) -> Vec<&'static str> {
        let deps = parse_modules_dep(DEP);
        let mut ordered = Vec::new();
        for root in roots {
            let path = deps
                .keys()
                .find(|path| module_name(path) == module_name(root))
                .unwrap();
            add_with_dependencies(path, &deps, &mut ordered);
        }
        ordered
    }

    #[test]
    fn dependencies_load_first_and_once() {
        assert_eq!(
            resolve(&["9p", "fscache", "kvm_amd"]),
            [
                "kernel/net/9p/9pnet.ko",
                "kernel/fs/netfs/netfs.ko",
                "kernel/fs/fscache/fscache.ko",
                "kernel/fs/9p/9p.ko",
                "kernel/arch/x86/kvm/kvm.ko.xz",
                "kernel/arch/x86/kvm/kvm-amd.ko.xz",
            ]
        );
    }

    #[test]
    fn module_names_ignore_directories_suffixes_and_dashes() {
        assert_eq!(module_name("kernel/arch/x86/kvm/kvm-amd.ko.xz"), "kvm_amd");
        assert_eq!(module_name("kvm-amd"), "kvm_amd");
        assert_eq!(module_name("kernel/net/9p/9pnet_virtio.ko"), "9pnet_virtio");
    }

    #[test]
    fn newer_kernel_releases_sort_last() {
        let mut releases = ["6.1.0-9-amd64", "6.1.0-10-amd64", "5.10.0-28-amd64"];
        releases.sort_by_key(|r| version_key(r));
        assert_eq!(
            releases,
            ["5.10.0-28-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64"]
        );
    }

    #[test]
    fn static_and_dynamic_executables_are_told_apart() {
        let mut elf = vec![0u8; 0x40 + 2 * 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        assert_eq!(has_interpreter(&elf), Some(false));
        elf[0x40 + 56..0x40 + 60].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        assert_eq!(has_interpreter(&elf), Some(true));
        assert_eq!(has_interpreter(b"#!/bin/sh\n"), None);
        elf.truncate(0x50);
        assert_eq!(has_interpreter(&elf), None);
    }
}
