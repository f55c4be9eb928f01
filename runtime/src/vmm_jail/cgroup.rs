//! A VMM's own cgroup, `<cgroup2>/hull/<short id>` (Docker's cgroupfs
//! layout), where cgroup v2 is mounted: its CPU (the vCPUs and one more for
//! the devices), memory (the guest's RAM and what the devices may buffer)
//! and pids (its threads) are bounded, whatever the guest makes it do.
//!
//! The runtime makes the cgroup, has the VMM's helper join it before it
//! runs (so the jailed VMM it forks is in it too) and removes the cgroup
//! once the VMM is gone,
//! or when the container is removed if its monitor was killed.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

/// Where cgroup v2 is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The parent of every VMM's cgroup, under the root.
const PARENT: &str = "hull";

/// Memory beyond the guest's RAM: the vsock connections' buffers (at most
/// 256 MiB), the FUSE servers' and the VMM's own.
const MEMORY_OVERHEAD_MIB: u64 = 512;

/// Threads: the main one, the vCPUs, a worker per device, with room left.
const PIDS_MAX: u32 = 128;

/// The controllers a VMM's cgroup uses.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// What a VMM may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VmmLimits {
    pub vcpus: u8,
    pub memory_mib: u64,
}

impl VmmLimits {
    /// The cgroup files and values that hold the VMM to these limits.
    fn files(self) -> [(&'static str, String); 3] {
        let period = 100_000;
        let quota = (u64::from(self.vcpus) + 1) * period;
        [
            ("cpu.max", format!("{quota} {period}")),
            (
                "memory.max",
                ((self.memory_mib + MEMORY_OVERHEAD_MIB) << 20).to_string(),
            ),
            ("pids.max", PIDS_MAX.to_string()),
        ]
    }
}

/// A VMM's cgroup; dropping it removes the directory (once the VMM that
/// was in it is gone).
pub(crate) struct VmmCgroup {
    path: PathBuf,
}

impl VmmCgroup {
    /// Makes the cgroup `name` with `limits`; `None` where cgroup v2 or
    /// one of its controllers is not available.
    pub fn create(name: &str, limits: VmmLimits) -> Result<Option<VmmCgroup>> {
        Self::create_under(Path::new(CGROUP_ROOT), name, limits)
    }

    fn create_under(root: &Path, name: &str, limits: VmmLimits) -> Result<Option<VmmCgroup>> {
        let Ok(available) = fs::read_to_string(root.join("cgroup.controllers")) else {
            return Ok(None);
        };
        let available: Vec<&str> = available.split_whitespace().collect();
        if !CONTROLLERS.iter().all(|c| available.contains(c)) {
            return Ok(None);
        }
        let parent = root.join(PARENT);
        enable_controllers(root)?;
        match fs::create_dir(&parent) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(e).with_context(|| format!("cannot create {}", parent.display()))
            }
            _ => {}
        }
        enable_controllers(&parent)?;
        let path = parent.join(name);
        match fs::create_dir(&path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(e).with_context(|| format!("cannot create {}", path.display()))
            }
            _ => {}
        }
        let cgroup = VmmCgroup { path };
        for (file, value) in limits.files() {
            let file = cgroup.path.join(file);
            fs::write(&file, &value)
                .with_context(|| format!("cannot write {value} to {}", file.display()))?;
        }
        Ok(Some(cgroup))
    }

    /// Makes the process `command` starts join the cgroup before it
    /// runs: it and whatever it forks are in it from their first
    /// instruction.
    pub fn join_on_exec(&self, command: &mut Command) -> Result<()> {
        let procs = self.path.join("cgroup.procs");
        let procs = CString::new(procs.into_os_string().into_vec())
            .context("the cgroup's path holds a NUL byte")?;
        // SAFETY: the closure runs in the forked child before exec and
        // only makes async-signal-safe system calls (open, write, close)
        // on a path made before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // "0" is the writing process.
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let error = io::Error::last_os_error();
                libc::close(fd);
                match written {
                    1 => Ok(()),
                    _ => Err(error),
                }
            });
        }
        Ok(())
    }
}

impl Drop for VmmCgroup {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir(&self.path) {
            tracing::warn!(
                "cannot remove the VMM's cgroup {}: {e}",
                self.path.display()
            );
        }
    }
}

/// Removes VMM `name`'s cgroup if it was left behind (its monitor was
/// killed before it could remove it, as `rm -f` does), giving a dying VMM
/// up to a second to leave it.
pub(crate) fn remove_left_behind(name: &str) {
    let path = Path::new(CGROUP_ROOT).join(PARENT).join(name);
    for _ in 0..50 {
        match fs::remove_dir(&path) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => return,
        }
    }
    tracing::warn!(
        "cannot remove the VMM's cgroup {}: it is still in use",
        path.display()
    );
}

/// Lets the children of cgroup `dir` use [`CONTROLLERS`].
fn enable_controllers(dir: &Path) -> Result<()> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control).unwrap_or_default();
    let missing: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::write(&control, missing.join(" ")).with_context(|| {
        format!(
            "cannot enable {} in {}",
            missing.join(" "),
            control.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_leave_a_core_for_the_devices_and_room_for_their_buffers() {
        let files = VmmLimits {
            vcpus: 2,
            memory_mib: 512,
        }
        .files();
        assert_eq!(
            files.map(|(file, value)| format!("{file}={value}")),
            [
                "cpu.max=300000 100000".to_owned(),
                format!("memory.max={}", 1024u64 << 20),
                "pids.max=128".to_owned(),
            ]
        );
    }

    #[test]
    fn no_cgroup_without_cgroup2_or_its_controllers() {
        let dir = tempfile::tempdir().unwrap();
        let limits = VmmLimits {
            vcpus: 1,
            memory_mib: 64,
        };
        assert!(VmmCgroup::create_under(dir.path(), "x", limits)
            .unwrap()
            .is_none());
        fs::write(dir.path().join("cgroup.controllers"), "cpu pids\n").unwrap();
        assert!(VmmCgroup::create_under(dir.path(), "x", limits)
            .unwrap()
            .is_none());
        assert!(!dir.path().join(PARENT).exists());
    }

    #[test]
    fn a_cgroup_is_made_with_its_limits_and_removed_when_dropped() {
        // A stand-in for cgroupfs: plain files take the writes.
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let limits = VmmLimits {
            vcpus: 1,
            memory_mib: 64,
        };
        let cgroup = VmmCgroup::create_under(dir.path(), "abc", limits)
            .unwrap()
            .unwrap();
        let read = |path: &str| fs::read_to_string(dir.path().join(path)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+cpu +memory +pids");
        assert_eq!(read("hull/cgroup.subtree_control"), "+cpu +memory +pids");
        assert_eq!(read("hull/abc/cpu.max"), "200000 100000");
        assert_eq!(read("hull/abc/pids.max"), "128");
        fs::write(dir.path().join("hull/abc/cgroup.procs"), "").unwrap();
        let mut command = Command::new("true");
        cgroup.join_on_exec(&mut command).unwrap();
        assert!(command.status().unwrap().success());
        assert_eq!(read("hull/abc/cgroup.procs"), "0");
        // cgroupfs removes a cgroup's files with it; a plain directory
        // must be emptied first.
        for file in ["cpu.max", "memory.max", "pids.max", "cgroup.procs"] {
            fs::remove_file(dir.path().join("hull/abc").join(file)).unwrap();
        }
        drop(cgroup);
        assert!(!dir.path().join("hull/abc").exists());
    }
}
