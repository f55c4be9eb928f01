//! A container's log: its process's stdout and stderr as JSON lines, the
//! format of Docker's json-file driver:
//! `{"log":"text\n","stream":"stdout","time":"2026-11-23T10:00:00.123Z"}`.
//! Output is split at line ends; a line still incomplete when its chunk
//! ends is written as an entry of its own.
//!
//! The log is capped: once `json.log` would grow past its size limit it
//! becomes `json.log.1` (older files shift to `.2`, ...) and a new one
//! starts; the oldest beyond the file limit is deleted.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::session::OutputSink;
use crate::timestamp::now;
use crate::units::parse_size_bytes;

/// One entry of a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// What the process wrote: a line with its newline, or the end of its
    /// output without one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When it was written, RFC 3339.
    pub time: String,
}

impl LogEntry {
    /// Whether the process wrote it to stderr.
    pub fn is_stderr(&self) -> bool {
        self.stream == "stderr"
    }
}

/// How much log a container keeps (`--log-opt max-size=`, `max-file=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    /// Bytes a log file may reach before it is rotated.
    pub max_size: u64,
    /// Files kept, the current one included.
    pub max_files: u32,
}

impl Default for LogLimits {
    /// 30 MiB at most, in three files.
    fn default() -> Self {
        LogLimits {
            max_size: 10 << 20,
            max_files: 3,
        }
    }
}

impl LogLimits {
    /// The default limits with each `KEY=VALUE` of `options` (`--log-opt`)
    /// applied in turn.
    pub fn from_options(options: &[String]) -> crate::Result<LogLimits> {
        options
            .iter()
            .try_fold(LogLimits::default(), |limits, option| {
                limits.with_option(option)
            })
            .map_err(|err| Error::invalid(format!("{err:#}")))
    }

    /// These limits with one `KEY=VALUE` option of `--log-opt` applied.
    fn with_option(mut self, option: &str) -> Result<LogLimits> {
        let Some((key, value)) = option.split_once('=') else {
            bail!("--log-opt {option}: expected KEY=VALUE");
        };
        match key {
            "max-size" => {
                self.max_size = parse_size_bytes(value)
                    .map_err(|err| anyhow::anyhow!("--log-opt max-size={value}: {err}"))?;
                if self.max_size == 0 {
                    bail!("--log-opt max-size must be more than 0");
                }
            }
            "max-file" => {
                self.max_files =
                    value
                        .parse()
                        .ok()
                        .filter(|files| *files > 0)
                        .with_context(|| {
                            format!("--log-opt max-file={value}: expected a number above 0")
                        })?;
            }
            _ => bail!("unknown log option {key:?}: hull knows max-size and max-file"),
        }
        Ok(self)
    }
}

/// The path of rotated file `generation` (1 is the most recent) of `path`.
fn rotated(path: &Path, generation: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{generation}"));
    PathBuf::from(name)
}

/// Appends the process's output to a log file, rotating it at its limits.
pub(crate) struct LogWriter {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    limits: LogLimits,
}

impl LogWriter {
    pub fn append_to(path: &Path, limits: LogLimits) -> Result<LogWriter> {
        let file = open_for_append(path)?;
        let size = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_owned(),
            file,
            size,
            limits,
        })
    }

    fn write(&mut self, stream: &str, data: &[u8]) {
        let time = now();
        let text = String::from_utf8_lossy(data);
        for line in text.split_inclusive('\n') {
            let entry = LogEntry {
                log: line.to_owned(),
                stream: stream.to_owned(),
                time: time.clone(),
            };
            let mut json = serde_json::to_vec(&entry).expect("log entries serialize");
            json.push(b'\n');
            if self.size > 0 && self.size + json.len() as u64 > self.limits.max_size {
                if let Err(err) = self.rotate() {
                    tracing::warn!("cannot rotate {}: {err:#}", self.path.display());
                }
            }
            // A full disk loses log lines, not the container.
            if self.file.write_all(&json).is_ok() {
                self.size += json.len() as u64;
            }
        }
    }

    /// Shifts the files one generation older and starts an empty one.
    fn rotate(&mut self) -> Result<()> {
        let kept = self.limits.max_files - 1;
        if kept == 0 {
            self.file.set_len(0).context("cannot truncate the log")?;
            self.size = 0;
            return Ok(());
        }
        for generation in (1..kept).rev() {
            let from = rotated(&self.path, generation);
            match fs::rename(&from, rotated(&self.path, generation + 1)) {
                Err(err) if err.kind() != ErrorKind::NotFound => {
                    return Err(err).with_context(|| format!("cannot rename {}", from.display()))
                }
                _ => {}
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))
            .with_context(|| format!("cannot rename {}", self.path.display()))?;
        self.file = open_for_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_for_append(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))
}

impl OutputSink for LogWriter {
    fn stdout(&mut self, data: &[u8]) {
        self.write("stdout", data);
    }

    fn stderr(&mut self, data: &[u8]) {
        self.write("stderr", data);
    }
}

/// Reads a log as it is written, across rotations.
pub(crate) struct LogReader {
    path: PathBuf,
    /// The file being read; `None` before the first read.
    current: Option<BufReader<File>>,
    /// The start of a line still being written.
    partial: String,
}

impl LogReader {
    /// Every entry kept so far, the rotated files' first, and a reader for
    /// what comes next.
    pub fn open(path: &Path) -> Result<(LogReader, Vec<LogEntry>)> {
        let mut reader = LogReader {
            path: path.to_owned(),
            current: None,
            partial: String::new(),
        };
        let entries = reader.read_new()?;
        Ok((reader, entries))
    }

    /// The entries written since the last read. When the log was rotated
    /// meanwhile, the rest of the file being read comes first, then the
    /// rotated files newer than it.
    pub fn read_new(&mut self) -> Result<Vec<LogEntry>> {
        let mut entries = Vec::new();
        let mut reading = None;
        if let Some(current) = &mut self.current {
            read_complete_lines(current, &mut self.partial, &mut entries)?;
            let file = current.get_ref().metadata()?;
            let latest = open_if_present(&self.path)?;
            if let Some(latest) = latest {
                if latest.metadata()?.ino() == file.ino() {
                    // Truncated (a single-file log) since the last read:
                    // what it holds now is new.
                    if file.len() < current.stream_position()? {
                        current.rewind()?;
                        self.partial.clear();
                        read_complete_lines(current, &mut self.partial, &mut entries)?;
                    }
                    return Ok(entries);
                }
            }
            // Rotated: whatever reached the file before it was renamed.
            read_complete_lines(current, &mut self.partial, &mut entries)?;
            self.partial.clear();
            reading = Some(file.ino());
        }
        for generation in self.generations_newer_than(reading) {
            if let Some(file) = open_if_present(&rotated(&self.path, generation))? {
                read_complete_lines(&mut BufReader::new(file), &mut String::new(), &mut entries)?;
            }
        }
        self.current = open_if_present(&self.path)?.map(BufReader::new);
        if let Some(current) = &mut self.current {
            read_complete_lines(current, &mut self.partial, &mut entries)?;
        }
        Ok(entries)
    }

    /// The rotated generations newer than the file with inode `reading`,
    /// oldest first; all of them if it is `None` or gone.
    fn generations_newer_than(&self, reading: Option<u64>) -> Vec<u32> {
        let mut newer = Vec::new();
        for generation in 1.. {
            let Ok(meta) = fs::metadata(rotated(&self.path, generation)) else {
                break;
            };
            if Some(meta.ino()) == reading {
                break;
            }
            newer.push(generation);
        }
        newer.reverse();
        newer
    }
}

fn open_if_present(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Reads the lines `reader` has up to its end into `entries`; the start of
/// a line still being written stays in `partial`.
fn read_complete_lines(
    reader: &mut impl BufRead,
    partial: &mut String,
    entries: &mut Vec<LogEntry>,
) -> Result<()> {
    loop {
        if reader.read_line(partial)? == 0 || !partial.ends_with('\n') {
            return Ok(());
        }
        if let Ok(entry) = serde_json::from_str(partial) {
            entries.push(entry);
        }
        partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(entries: &[LogEntry]) -> Vec<(&str, &str)> {
        entries
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect()
    }

    #[test]
    fn output_is_logged_line_by_line_per_stream_and_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let (mut reader, entries) = LogReader::open(&path).unwrap();
        assert_eq!(entries, Vec::new());
        let mut log = LogWriter::append_to(&path, LogLimits::default()).unwrap();
        log.stdout(b"one\ntwo\npart");
        log.stderr(b"oops\n");
        assert_eq!(
            texts(&reader.read_new().unwrap()),
            [
                ("stdout", "one\n"),
                ("stdout", "two\n"),
                ("stdout", "part"),
                ("stderr", "oops\n")
            ]
        );
        log.stdout(b"more\n");
        assert_eq!(texts(&reader.read_new().unwrap()), [("stdout", "more\n")]);
        assert_eq!(reader.read_new().unwrap(), Vec::new());
    }

    #[test]
    fn a_line_being_written_is_read_once_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let (mut reader, _) = LogReader::open(&path).unwrap();
        let line = br#"{"log":"x\n","stream":"stdout","time":"t"}"#;
        let mut file = open_for_append(&path).unwrap();
        file.write_all(&line[..10]).unwrap();
        assert_eq!(reader.read_new().unwrap(), Vec::new());
        file.write_all(&line[10..]).unwrap();
        file.write_all(b"\n").unwrap();
        assert_eq!(texts(&reader.read_new().unwrap()), [("stdout", "x\n")]);
    }

    #[test]
    fn the_log_rotates_at_its_limits_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let limits = LogLimits {
            max_size: 300,
            max_files: 3,
        };
        let (mut follower, _) = LogReader::open(&path).unwrap();
        let mut followed = Vec::new();
        let mut log = LogWriter::append_to(&path, limits).unwrap();
        for n in 0..100 {
            log.stdout(format!("line {n}\n").as_bytes());
            if n % 7 == 0 {
                followed.extend(follower.read_new().unwrap());
            }
        }
        followed.extend(follower.read_new().unwrap());

        let mut files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, ["json.log", "json.log.1", "json.log.2"]);
        for file in &files {
            let size = fs::metadata(dir.path().join(file)).unwrap().len();
            assert!(size <= limits.max_size, "{file} has {size} bytes");
        }
        // What is kept is the newest lines, complete and in order.
        let (_, kept) = LogReader::open(&path).unwrap();
        let kept: Vec<&str> = kept.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(kept.last(), Some(&"line 99\n"));
        let first: usize = kept[0]["line ".len()..].trim().parse().unwrap();
        let expected: Vec<String> = (first..100).map(|n| format!("line {n}\n")).collect();
        assert_eq!(kept, expected);
        // A follower that kept up saw every line, across the rotations.
        let followed: Vec<&str> = followed.iter().map(|e| e.log.as_str()).collect();
        let all: Vec<String> = (0..100).map(|n| format!("line {n}\n")).collect();
        assert_eq!(followed, all);
    }

    #[test]
    fn one_file_is_truncated_instead_of_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let limits = LogLimits {
            max_size: 200,
            max_files: 1,
        };
        let (mut follower, _) = LogReader::open(&path).unwrap();
        let mut followed = Vec::new();
        let mut log = LogWriter::append_to(&path, limits).unwrap();
        for n in 0..20 {
            log.stdout(format!("line {n}\n").as_bytes());
            followed.extend(follower.read_new().unwrap());
        }
        assert!(fs::metadata(&path).unwrap().len() <= 200);
        assert_eq!(followed.len(), 20);
        assert!(!rotated(&path, 1).exists());
        let (_, kept) = LogReader::open(&path).unwrap();
        assert_eq!(kept.last().unwrap().log, "line 19\n");
    }

    #[test]
    fn log_options_parse_like_docker_and_refuse_the_unknown() {
        let limits = LogLimits::default()
            .with_option("max-size=1k")
            .unwrap()
            .with_option("max-file=2")
            .unwrap();
        assert_eq!(
            limits,
            LogLimits {
                max_size: 1024,
                max_files: 2
            }
        );
        for bad in [
            "max-size=0",
            "max-file=0",
            "max-file=x",
            "mode=non-blocking",
            "max-size",
        ] {
            assert!(LogLimits::default().with_option(bad).is_err(), "{bad}");
        }
    }
}
