//! hull's state root: where containers, networks, images, runtime files
//! and caches live.
//!
//! The root defaults to /var/lib/hull; front ends let the user move it
//! (hull's CLI: `--root` or `HULL_ROOT`; tests use a temporary directory).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::RngCore;

/// Where hull keeps its state unless told otherwise.
pub const DEFAULT_ROOT: &str = "/var/lib/hull";

/// How many leading digits of its ID name a container or network in short.
pub const SHORT_ID_LEN: usize = 12;

/// The state root's mode: owner everything, group search only.
const PRIVATE_MODE: u32 = 0o710;

/// Unix socket paths are limited to 107 bytes plus NUL; the longest socket a
/// VM's runtime directory holds is `vm/vsock.sock_NNNNN`.
const MAX_RUN_DIR_LEN: usize = 107 - "/vm/vsock.sock_65535".len();

/// The subdirectory of a runtime directory that is the VMM's: its vsock
/// sockets and the guest's console log, all of the runtime directory its
/// jail holds. The rest (the VM's config, the VMM's pid, the attach
/// socket, the VMM's log) the VMM cannot reach.
const VM_DIR: &str = "vm";

/// A state root directory.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// The state root at `path` (created as it is first written to).
    pub fn new(path: PathBuf) -> StateRoot {
        StateRoot { path }
    }

    /// Creates the root if it is missing and makes it private to its owner
    /// and group (0710, as Docker's data root): scratch disks, logs and lock
    /// files below stay out of other local users' reach. A root owned by
    /// someone else is left alone: the first write then says why.
    pub fn make_private(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_MODE)
            .create(&self.path)
            .with_context(|| format!("cannot create the state root {}", self.path.display()))?;
        let metadata = fs::metadata(&self.path)
            .with_context(|| format!("cannot read the state root {}", self.path.display()))?;
        if metadata.uid() == nix::unistd::geteuid().as_raw()
            && metadata.mode() & 0o777 != PRIVATE_MODE
        {
            fs::set_permissions(&self.path, fs::Permissions::from_mode(PRIVATE_MODE))
                .with_context(|| format!("cannot make {} private", self.path.display()))?;
        }
        Ok(())
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where derived files (a guest's initramfs) are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.path.join("cache")
    }

    /// Where container `id`'s runtime directory is while its VM runs.
    pub fn run_dir_path(&self, id: &str) -> PathBuf {
        self.path.join("run").join(&id[..SHORT_ID_LEN])
    }

    /// The host end of the vsock device of container `id`'s VM.
    pub(crate) fn vsock_path(&self, id: &str) -> PathBuf {
        vm_files(&self.run_dir_path(id)).join(VSOCK_SOCKET)
    }

    /// Creates the runtime directory (sockets, logs) of container `id`,
    /// private to its owner: the VMM's sockets inside are not access-checked
    /// themselves.
    pub fn create_run_dir(&self, id: &str) -> Result<RunDir> {
        let path = self.run_dir_path(id);
        if path.as_os_str().len() > MAX_RUN_DIR_LEN {
            bail!(
                "state root {} is too long for the VM's unix sockets; use a shorter --root",
                self.path.display()
            );
        }
        let parent = path.parent().expect("run dirs have a parent");
        fs::create_dir_all(parent).with_context(|| {
            format!(
                "cannot create {}: is the state root writable?",
                parent.display()
            )
        })?;
        for dir in [path.clone(), vm_files(&path)] {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(RunDir { path })
    }
}

/// The vsock device's socket in the VM's directory.
const VSOCK_SOCKET: &str = "vsock.sock";
/// The guest's console log in the VM's directory.
const CONSOLE_LOG: &str = "console.log";

/// The VMM's own subdirectory of runtime directory `run_dir`.
pub(crate) fn vm_files(run_dir: &Path) -> PathBuf {
    run_dir.join(VM_DIR)
}

/// A container's runtime directory; removed with everything in it on drop.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The VMM's subdirectory: see [`vm_files`].
    pub fn vm_files(&self) -> PathBuf {
        vm_files(&self.path)
    }

    /// The host end of the VM's vsock device.
    pub fn vsock_path(&self) -> PathBuf {
        self.vm_files().join(VSOCK_SOCKET)
    }

    /// The guest's console log, when it goes to one.
    pub fn console_log(&self) -> PathBuf {
        self.vm_files().join(CONSOLE_LOG)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A new container or network ID: 64 lowercase hex digits, like Docker's.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn roots_are_created_private_and_made_private() {
        let temp = tempfile::tempdir().unwrap();
        let fresh = StateRoot::new(temp.path().join("a/fresh"));
        fresh.make_private().unwrap();
        assert_eq!(mode(fresh.path()), 0o710);

        let open = temp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        StateRoot::new(open.clone()).make_private().unwrap();
        assert_eq!(mode(&open), 0o710);
    }

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn run_dirs_use_the_short_id_and_refuse_long_roots() {
        let temp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(temp.path().to_owned());
        let id = new_id();
        let dir = root.create_run_dir(&id).unwrap();
        let path = dir.path().to_owned();
        assert!(path.is_dir());
        assert!(path.ends_with(&id[..12]));
        assert_eq!(mode(&path), 0o700);
        drop(dir);
        assert!(!path.exists(), "dropping the run dir removes it");

        let long = StateRoot::new(temp.path().join("x".repeat(100)));
        let err = root_error(&long, &id);
        assert!(err.contains("too long"), "{err}");
    }

    fn root_error(root: &StateRoot, id: &str) -> String {
        format!("{:#}", root.create_run_dir(id).unwrap_err())
    }
}
