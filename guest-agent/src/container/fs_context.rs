//! Mounting through the kernel's file system context API (`fsopen`,
//! `fsconfig`, `fsmount`, `move_mount`, Linux 5.2+): options are given one
//! at a time, so no list of them is bounded by the single page `mount(2)`
//! copies. An overlay of many layers needs that: each `lowerdir+` (6.8+)
//! adds one.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{bail, Context};

/// A file system being configured, not mounted yet.
pub struct FsContext {
    fd: OwnedFd,
    fstype: String,
}

impl FsContext {
    /// A new context for a file system of type `fstype`.
    pub fn open(fstype: &str) -> anyhow::Result<FsContext> {
        let name = CString::new(fstype).context("file system type")?;
        // SAFETY: `name` is NUL-terminated and outlives the call; fsopen
        // returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) };
        let fd = owned(fd).with_context(|| format!("opening a {fstype} file system context"))?;
        Ok(FsContext {
            fd,
            fstype: fstype.to_owned(),
        })
    }

    /// Sets the flag option `key` (`userxattr`).
    pub fn set_flag(&self, key: &str) -> anyhow::Result<()> {
        self.configure(libc::FSCONFIG_SET_FLAG, Some(key), None)
    }

    /// Sets the option `key` to `value` (`lowerdir+`, `upperdir`).
    pub fn set_string(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.configure(libc::FSCONFIG_SET_STRING, Some(key), Some(value))
    }

    /// Creates the file system and mounts it on `target`.
    pub fn mount_at(self, target: &Path) -> anyhow::Result<()> {
        self.configure(libc::FSCONFIG_CMD_CREATE, None, None)?;
        // SAFETY: a descriptor this context owns; fsmount returns a new
        // descriptor or -1.
        let mount = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.fd.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC,
                0,
            )
        };
        let mount = owned(mount).with_context(|| format!("mounting the {}", self.fstype))?;
        let target_name =
            CString::new(target.as_os_str().as_encoded_bytes()).context("mount point path")?;
        let empty = c"";
        // SAFETY: a descriptor of a detached mount this function owns, and
        // NUL-terminated paths that outlive the call.
        let moved = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mount.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                target_name.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if moved < 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("moving the {} to {}", self.fstype, target.display()));
        }
        Ok(())
    }

    /// One `fsconfig` call; a refusal says what the file system logged.
    fn configure(
        &self,
        command: libc::c_uint,
        key: Option<&str>,
        value: Option<&str>,
    ) -> anyhow::Result<()> {
        let key_name = key.map(CString::new).transpose().context("option name")?;
        let value_text = value
            .map(CString::new)
            .transpose()
            .context("option value")?;
        let pointer =
            |text: &Option<CString>| text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: a descriptor this context owns, and NUL-terminated
        // strings (or null where the command takes none) that outlive the
        // call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                command,
                pointer(&key_name),
                pointer(&value_text),
                0,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            let what = match (key, value) {
                (Some(key), Some(value)) => format!("{key}={value}"),
                (Some(key), None) => key.to_owned(),
                _ => "creating it".to_owned(),
            };
            bail!("{} option {what}: {err}{}", self.fstype, self.logged());
        }
        Ok(())
    }

    /// What the file system logged on this context (its reason for a
    /// refusal), as `": message; message"`, or nothing.
    fn logged(&self) -> String {
        let mut messages = Vec::new();
        let mut buffer = [0u8; 512];
        // Each read takes one message; at most a few are worth showing.
        for _ in 0..4 {
            // SAFETY: reads into a buffer of `buffer.len()` bytes this
            // function owns.
            let len = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            let Ok(len @ 1..) = usize::try_from(len) else {
                break;
            };
            // "e overlay: ..." (error), "w ..." (warning), "i ..." (info).
            let message = String::from_utf8_lossy(&buffer[..len]);
            messages.push(message.get(2..).unwrap_or_default().trim().to_owned());
        }
        match messages.is_empty() {
            true => String::new(),
            false => format!(": {}", messages.join("; ")),
        }
    }
}

/// The descriptor a syscall returned, or its error.
fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor, just returned by the kernel, that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
