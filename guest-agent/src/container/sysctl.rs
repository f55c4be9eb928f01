//! Kernel parameters of the container (`docker run --sysctl`), written to
//! /proc/sys by its init once it is in the container's namespaces, as
//! runc writes them: IPC parameters (kernel.shm*, kernel.msg*, kernel.sem,
//! fs.mqueue.*) then apply to the container's IPC namespace, network ones
//! to the machine's network, which is the container's.
//!
//! Docker accepts only parameters of the namespaces a container has; hull
//! accepts them all: the container has its kernel to itself, the machine is
//! the sandbox.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context};

/// Where the kernel's parameters are, in the container's /proc.
const PROC_SYS: &str = "/proc/sys";

/// Sets each `(name, value)` in order.
pub fn apply(sysctls: &[(String, String)]) -> anyhow::Result<()> {
    for (name, value) in sysctls {
        write(Path::new(PROC_SYS), name, value)
            .with_context(|| format!("setting sysctl {name}={value}"))?;
    }
    Ok(())
}

fn write(proc_sys: &Path, name: &str, value: &str) -> anyhow::Result<()> {
    let path = proc_sys.join(relative_path(name)?);
    // Never created: a name the kernel does not know is an error.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// The file of parameter `name` under /proc/sys: `net.ipv4.ip_forward` is
/// `net/ipv4/ip_forward`. A name with slashes is taken as the path itself,
/// so that components with dots can be named (`net/ipv4/conf/eth0.100/...`),
/// as sysctl(8) and runc take it.
fn relative_path(name: &str) -> anyhow::Result<PathBuf> {
    let separator = if name.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = name.split(separator).collect();
    let plain = parts
        .iter()
        .all(|part| !part.is_empty() && *part != "." && *part != ".." && !part.contains('\0'));
    ensure!(plain, "{name:?} is not a kernel parameter name");
    Ok(parts.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_files_under_proc_sys() {
        assert_eq!(
            relative_path("net.ipv4.ip_forward").unwrap(),
            Path::new("net/ipv4/ip_forward")
        );
        assert_eq!(
            relative_path("kernel.shmmax").unwrap(),
            Path::new("kernel/shmmax")
        );
        assert_eq!(
            relative_path("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            Path::new("net/ipv4/conf/eth0.100/forwarding")
        );
        for bad in [
            "",
            ".",
            "net..x",
            "net.",
            "/net/x",
            "net/../../etc",
            "a/./b",
        ] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_written_to_existing_files_only() {
        let proc_sys = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(proc_sys.path().join("net/ipv4")).unwrap();
        std::fs::write(proc_sys.path().join("net/ipv4/ip_forward"), "0").unwrap();
        write(proc_sys.path(), "net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(
            std::fs::read_to_string(proc_sys.path().join("net/ipv4/ip_forward")).unwrap(),
            "1"
        );
        let err = write(proc_sys.path(), "net.ipv4.nope", "1").unwrap_err();
        assert!(format!("{err:#}").contains("No such file"), "{err:#}");
        assert!(!proc_sys.path().join("net/ipv4/nope").exists());
    }
}
