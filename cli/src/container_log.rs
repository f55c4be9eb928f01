//! A container's log: its process's stdout and stderr as JSON lines, the
//! format of Docker's json-file driver:
//! `{"log":"text\n","stream":"stdout","time":"2026-11-23T10:00:00.123Z"}`.
//! Output is split at line ends; a line still incomplete when its chunk
//! ends is written as an entry of its own.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::container::now;
use crate::session::OutputSink;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends the process's output to a log file.
pub struct LogWriter {
    file: File,
}

impl LogWriter {
    pub fn append_to(path: &Path) -> Result<LogWriter> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the log {}", path.display()))?;
        Ok(LogWriter { file })
    }

    fn write(&mut self, stream: &str, data: &[u8]) {
        let time = now();
        let text = String::from_utf8_lossy(data);
        for line in text.split_inclusive('\n') {
            let entry = Entry {
                log: line.to_owned(),
                stream: stream.to_owned(),
                time: time.clone(),
            };
            let mut json = serde_json::to_vec(&entry).expect("log entries serialize");
            json.push(b'\n');
            // A full disk loses log lines, not the container.
            let _ = self.file.write_all(&json);
        }
    }
}

impl OutputSink for LogWriter {
    fn stdout(&mut self, data: &[u8]) {
        self.write("stdout", data);
    }

    fn stderr(&mut self, data: &[u8]) {
        self.write("stderr", data);
    }
}

/// Reads the entries of the log at `path` from byte `offset`; returns them
/// and the offset after the last complete line. A missing log is empty.
pub fn read_from(path: &Path, offset: u64) -> Result<(Vec<Entry>, u64)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut reader = BufReader::new(file);
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(offset))?;
    let mut entries = Vec::new();
    let mut position = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 || !line.ends_with('\n') {
            break; // End, or a line still being written.
        }
        position += read as u64;
        if let Ok(entry) = serde_json::from_str(&line) {
            entries.push(entry);
        }
    }
    Ok((entries, position))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn output_is_logged_line_by_line_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut log = LogWriter::append_to(&path).unwrap();
        log.stdout(b"one\ntwo\npart");
        log.stderr(b"oops\n");
        let (entries, end) = read_from(&path, 0).unwrap();
        let lines: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                ("stdout", "one\n"),
                ("stdout", "two\n"),
                ("stdout", "part"),
                ("stderr", "oops\n")
            ]
        );
        assert_eq!(end, fs::metadata(&path).unwrap().len());
        log.stdout(b"more\n");
        let (entries, _) = read_from(&path, end).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].log, "more\n");
        fs::remove_file(&path).unwrap();
        assert_eq!(read_from(&path, 0).unwrap().0, Vec::new());
    }
}
