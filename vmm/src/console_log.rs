//! The file behind [`Console::File`](crate::Console::File), bounded so that
//! a guest printing forever cannot fill the host disk.
//!
//! The log rotates: once it holds its limit of bytes, they move to
//! `<path>.1` (replacing the ones before) and `<path>` starts empty.
//! `<path>` therefore always ends with the newest output, where a guest
//! kernel panic shows up, and the two files never hold more than twice the
//! limit between them. Both are made readable by their owner and group
//! only (0640, as Docker's container logs), whatever the umask.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bytes the console log holds before it rotates.
pub const CONSOLE_LOG_LIMIT: u64 = 1 << 20;
/// Permissions of a log file it creates.
const LOG_MODE: u32 = 0o640;
/// Bytes a rotation copies at once.
const ROTATE_CHUNK: usize = 64 * 1024;

/// An append-only log file that rotates at a size limit.
pub struct RotatingLog {
    /// `<path>`, appended to.
    file: File,
    /// `<path>.1`, opened with `file` so that rotating opens nothing.
    previous: File,
    /// Bytes in `file`.
    len: u64,
    limit: u64,
}

impl RotatingLog {
    /// Opens `path` for appending, and `<path>.1` for what rotates out of
    /// it; what `path` already holds counts towards `limit`.
    pub fn open(path: &Path, limit: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(LOG_MODE)
            .open(path)?;
        let mut rotated_path = OsString::from(path);
        rotated_path.push(".1");
        let previous = OpenOptions::new()
            .create(true)
            .write(true)
            .mode(LOG_MODE)
            .open(PathBuf::from(rotated_path))?;
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            previous,
            len,
            limit,
        })
    }

    /// Moves the log's bytes into `<path>.1` and empties it. By copying
    /// and truncating, not by renaming and creating a file: the serial
    /// console rotates on a vCPU thread, whose seccomp filter allows
    /// neither (a guest that took a vCPU must not get a way to create or
    /// rename host files).
    fn rotate(&mut self) -> io::Result<()> {
        self.previous.set_len(0)?;
        let mut chunk = vec![0; ROTATE_CHUNK];
        let mut offset = 0;
        loop {
            let read = self.file.read_at(&mut chunk, offset)?;
            if read == 0 {
                break;
            }
            self.previous.write_all_at(&chunk[..read], offset)?;
            offset += read as u64;
        }
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }
}

impl Write for RotatingLog {
    /// Writes as much of `buf` as fits before the limit, rotating first if
    /// the log is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.len >= self.limit {
            self.rotate()?;
        }
        let room = usize::try_from(self.limit - self.len).unwrap_or(usize::MAX);
        let written = self.file.write(&buf[..buf.len().min(room)])?;
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn log_rotates_at_its_limit_keeping_the_newest_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        fs::write(&path, b"0123").unwrap();
        let mut log = RotatingLog::open(&path, 10).unwrap();

        log.write_all(b"456789abcdefghij").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abcdefghij");
        assert_eq!(
            fs::read(dir.path().join("console.log.1")).unwrap(),
            b"0123456789"
        );

        // Byte by byte, as the UART writes: the older half is dropped.
        for byte in b"klmnopqrstuvw" {
            log.write_all(&[*byte]).unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), b"uvw");
        assert_eq!(
            fs::read(dir.path().join("console.log.1")).unwrap(),
            b"klmnopqrst"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
