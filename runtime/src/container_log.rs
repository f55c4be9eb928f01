//! A container's log: its process's stdout and stderr as JSON lines, the
//! format of Docker's json-file driver:
//! `{"log":"text\n","stream":"stdout","time":"2026-11-23T10:00:00.123Z"}`.
//! An entry is a line of one stream, newline included, however the output
//! was cut on its way from the guest. As in Docker, a line longer than
//! 16 KiB is split into entries without a newline, and so is the end of
//! the output when it ends no line: a stream's entries, one after the
//! other, are what the process wrote.
//!
//! The log is capped: once `json.log` would grow past its size limit it
//! becomes `json.log.1` (older files shift to `.2`, ...) and a new one
//! starts; the oldest beyond the file limit is deleted.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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

/// Where a container's output is logged (`--log-driver`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// Docker's json-file format in the container's directory, read by
    /// `logs`.
    #[default]
    JsonFile,
    /// Nowhere: `logs` has nothing to read (attached clients still see the
    /// output).
    None,
}

impl LogDriver {
    /// A `--log-driver` name: `json-file`, `local` (Docker's other
    /// driver with local files, which hull keeps as json-file) or `none`.
    pub fn parse(name: &str) -> crate::Result<LogDriver> {
        match name {
            "json-file" | "local" => Ok(LogDriver::JsonFile),
            "none" => Ok(LogDriver::None),
            other => Err(Error::invalid(format!(
                "log driver {other:?} is not supported: hull keeps a container's log as \
                 json-file (or none); ship it elsewhere from `hull logs -f`"
            ))),
        }
    }

    /// Its name, as `inspect` shows it.
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
        }
    }

    /// The limits its `options` (`--log-opt`) give: the none driver takes
    /// none.
    pub fn limits(self, options: &[String]) -> crate::Result<LogLimits> {
        match (self, options.first()) {
            (LogDriver::None, Some(option)) => Err(Error::invalid(format!(
                "--log-opt {option}: the none log driver takes no options"
            ))),
            _ => LogLimits::from_options(options),
        }
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
            // Accepted as Docker's json-file takes it; rotated files stay
            // uncompressed.
            "compress" => {
                value.parse::<bool>().with_context(|| {
                    format!("--log-opt compress={value}: expected true or false")
                })?;
            }
            _ => bail!("unknown log option {key:?}: hull knows max-size, max-file and compress"),
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

/// The most text an entry holds, its newline aside: a longer line is logged
/// in pieces of at most this many bytes, Docker's 16 KiB.
const MAX_ENTRY_TEXT: usize = 16 * 1024;

/// Appends the process's output to a log file, rotating it at its limits.
///
/// Output arrives in chunks cut wherever the guest's reads ended, so each
/// stream keeps the line it is in the middle of until a newline completes
/// it: an entry is a whole line, newline included, however it arrived.
/// A line longer than [`MAX_ENTRY_TEXT`] is logged in pieces, cut between
/// characters; like Docker's, a piece is an entry without a newline, so the
/// pieces read back one after the other are the line. Entries are stamped
/// with the arrival of the chunk holding their last byte, which keeps the
/// times in the file in order.
///
/// The output is bytes; an entry is text. The bytes of a line are decoded
/// once it is whole, so a character split across chunks is kept, and a
/// byte that is not UTF-8 becomes U+FFFD without harming the characters
/// around it (Docker does the same, with one U+FFFD per bad byte where
/// this has one per bad sequence).
///
/// Dropped, it logs the lines left unfinished as they are, without a
/// newline: the monitor drops it when the process's output has ended.
pub(crate) struct LogWriter {
    file: LogFile,
    stdout: PendingLine,
    stderr: PendingLine,
}

impl LogWriter {
    pub fn append_to(path: &Path, limits: LogLimits) -> Result<LogWriter> {
        Ok(LogWriter {
            file: LogFile::append_to(path, limits)?,
            stdout: PendingLine::new("stdout"),
            stderr: PendingLine::new("stderr"),
        })
    }
}

impl OutputSink for LogWriter {
    fn stdout(&mut self, data: &[u8]) {
        log_output(&mut self.file, &mut self.stdout, data);
    }

    fn stderr(&mut self, data: &[u8]) {
        log_output(&mut self.file, &mut self.stderr, data);
    }
}

impl Drop for LogWriter {
    /// The end of the output: what the process wrote after its last
    /// newline is an entry too, as Docker logs the end of a stream.
    fn drop(&mut self) {
        for line in [&self.stdout, &self.stderr] {
            if !line.bytes.is_empty() {
                self.file.add(line.stream, &line.bytes, &line.time);
            }
        }
        self.file.write_batch();
    }
}

/// Logs `data`, the next output on `line`'s stream: the entries it
/// completes, in one write.
fn log_output(file: &mut LogFile, line: &mut PendingLine, data: &[u8]) {
    let time = now();
    let stream = line.stream;
    line.push(data, &time, |text| file.add(stream, text, &time));
    file.write_batch();
}

/// The line a stream is in the middle of.
struct PendingLine {
    /// `stdout` or `stderr`.
    stream: &'static str,
    /// What the process wrote of the line so far; never more than
    /// [`MAX_ENTRY_TEXT`] bytes between pushes.
    bytes: Vec<u8>,
    /// When the last of them arrived.
    time: String,
}

impl PendingLine {
    fn new(stream: &'static str) -> PendingLine {
        PendingLine {
            stream,
            bytes: Vec::new(),
            time: String::new(),
        }
    }

    /// Adds `data`, which arrived at `time`, handing `entry` the text of
    /// each entry it completes: every line it ends, newline included, and
    /// the pieces of a line longer than [`MAX_ENTRY_TEXT`].
    fn push(&mut self, data: &[u8], time: &str, mut entry: impl FnMut(&[u8])) {
        for segment in data.split_inclusive(|&byte| byte == b'\n') {
            self.bytes.extend_from_slice(segment);
            let ended = segment.ends_with(b"\n");
            // Cut from an offset, moving what is left once: a long line
            // arriving at once is not shifted per piece.
            let mut start = 0;
            while self.bytes.len() - start - usize::from(ended) > MAX_ENTRY_TEXT {
                let end = start + piece_len(&self.bytes[start..]);
                entry(&self.bytes[start..end]);
                start = end;
            }
            if ended {
                entry(&self.bytes[start..]);
                self.bytes.clear();
            } else {
                self.bytes.drain(..start);
            }
        }
        if !self.bytes.is_empty() {
            self.time.clear();
            self.time.push_str(time);
        }
    }
}

/// How much of `line`, longer than [`MAX_ENTRY_TEXT`], its next piece
/// takes: as much as fits without cutting a character in two.
fn piece_len(line: &[u8]) -> usize {
    // A character is a lead byte and at most three continuation bytes
    // (0b10xx_xxxx): a cut before any other byte falls between characters.
    // Four continuation bytes in a row are no character; cut anywhere.
    let is_continuation = |byte: u8| byte & 0xc0 == 0x80;
    (MAX_ENTRY_TEXT - 3..=MAX_ENTRY_TEXT)
        .rev()
        .find(|&cut| !is_continuation(line[cut]))
        .unwrap_or(MAX_ENTRY_TEXT)
}

/// An entry as written: [`LogEntry`] borrowing its fields.
#[derive(Serialize)]
struct EntryText<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// The log file being written: entries are gathered into a batch and
/// written together, one write for a chunk of output rather than one per
/// line; rotated at its limits.
struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    size: u64,
    limits: LogLimits,
    /// Entries not written yet, each a JSON line.
    batch: Vec<u8>,
}

impl LogFile {
    fn append_to(path: &Path, limits: LogLimits) -> Result<LogFile> {
        let file = open_for_append(path)?;
        let size = file
            .metadata()
            .with_context(|| format!("cannot read the size of {}", path.display()))?
            .len();
        Ok(LogFile {
            path: path.to_owned(),
            file,
            size,
            limits,
            batch: Vec::new(),
        })
    }

    /// Adds an entry of `text` to the batch. One that would take the file
    /// past its size limit goes to a new file: what comes before it is
    /// written out and the file rotated first. A lone entry larger than
    /// the limit still goes in whole.
    fn add(&mut self, stream: &str, text: &[u8], time: &str) {
        let before = self.batch.len();
        let entry = EntryText {
            log: &String::from_utf8_lossy(text),
            stream,
            time,
        };
        serde_json::to_writer(&mut self.batch, &entry).expect("log entries serialize");
        self.batch.push(b'\n');
        let preceding = self.size + before as u64;
        if preceding > 0 && self.size + self.batch.len() as u64 > self.limits.max_size {
            self.write(before);
            if let Err(err) = self.rotate() {
                tracing::warn!("cannot rotate {}: {err:#}", self.path.display());
            }
        }
    }

    /// Writes out the batch.
    fn write_batch(&mut self) {
        self.write(self.batch.len());
    }

    /// Writes out the first `len` bytes of the batch.
    fn write(&mut self, len: usize) {
        // A full disk loses log lines, not the container.
        if self.file.write_all(&self.batch[..len]).is_ok() {
            self.size += len as u64;
        }
        self.batch.drain(..len);
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
        .mode(0o640)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))
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
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

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
                ("stderr", "oops\n")
            ]
        );
        log.stdout(b"more\n");
        assert_eq!(
            texts(&reader.read_new().unwrap()),
            [("stdout", "partmore\n")]
        );
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

    /// The entries logged when `feed` writes to a fresh log and the
    /// writer is dropped, as at the end of the output.
    fn logged(feed: impl FnOnce(&mut LogWriter)) -> Vec<LogEntry> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut log = LogWriter::append_to(&path, LogLimits::default()).unwrap();
        feed(&mut log);
        drop(log);
        LogReader::open(&path).unwrap().1
    }

    /// `entries`' text, one after the other.
    fn joined(entries: &[LogEntry]) -> String {
        entries.iter().map(|e| e.log.as_str()).collect()
    }

    /// `data` cut into chunks of 1 to `max` bytes, at random but the same
    /// each run.
    fn random_chunks(data: &[u8], max: usize) -> Vec<&[u8]> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut chunks = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rng.gen_range(1..=max).min(rest.len()));
            chunks.push(chunk);
            rest = after;
        }
        chunks
    }

    #[test]
    fn lines_cut_anywhere_are_logged_one_entry_each() {
        let lines: Vec<String> = (1..=50_000).map(|n| format!("{n}\n")).collect();
        let output = lines.concat();
        let entries = logged(|log| {
            for chunk in random_chunks(output.as_bytes(), 4096) {
                log.stdout(chunk);
            }
        });
        let logged: Vec<&str> = entries.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logged, lines);
    }

    #[test]
    fn characters_cut_at_any_byte_are_logged_whole() {
        let output = format!("{}ü✓日本語", "ü✓日本語🚀\n".repeat(3));
        let expected: Vec<String> = output.split_inclusive('\n').map(str::to_owned).collect();
        let bytes = output.as_bytes();
        for cut in 0..=bytes.len() {
            let entries = logged(|log| {
                log.stdout(&bytes[..cut]);
                log.stdout(&bytes[cut..]);
            });
            let logged: Vec<&str> = entries.iter().map(|e| e.log.as_str()).collect();
            assert_eq!(logged, expected, "cut at byte {cut}");
        }
        let byte_by_byte = logged(|log| bytes.chunks(1).for_each(|byte| log.stdout(byte)));
        assert_eq!(joined(&byte_by_byte), output);
    }

    #[test]
    fn bytes_that_are_not_utf8_spare_the_characters_around_them() {
        let output = b"caf\xc3\xa9 \xff\xfe \xe6\x97 \xf0\x9f\x9a\x80\n";
        for cut in 0..=output.len() {
            let entries = logged(|log| {
                log.stdout(&output[..cut]);
                log.stdout(&output[cut..]);
            });
            assert_eq!(
                texts(&entries),
                [("stdout", "café \u{fffd}\u{fffd} \u{fffd} 🚀\n")],
                "cut at byte {cut}"
            );
        }
    }

    #[test]
    fn a_long_line_is_logged_in_pieces_that_join_into_it() {
        let line = format!("{}\n", "ü✓日本語🚀".repeat(40 * 1024 / 18));
        for chunk_size in [1000, line.len()] {
            let entries = logged(|log| {
                line.as_bytes()
                    .chunks(chunk_size)
                    .for_each(|chunk| log.stdout(chunk));
            });
            assert_eq!(entries.len(), 3, "in chunks of {chunk_size}");
            for piece in &entries {
                assert!(piece.log.trim_end_matches('\n').len() <= MAX_ENTRY_TEXT);
                assert!(!piece.log.contains('\u{fffd}'));
            }
            assert!(!entries[0].log.ends_with('\n') && !entries[1].log.ends_with('\n'));
            assert_eq!(joined(&entries), line);
        }
        // The limit is on the text, so a line of 16 KiB stays whole (Docker's
        // 16 KiB buffer holds the newline too, which it would log apart).
        let longest = format!("{}\n", "x".repeat(MAX_ENTRY_TEXT));
        let entries = logged(|log| log.stdout(longest.as_bytes()));
        assert_eq!(texts(&entries), [("stdout", longest.as_str())]);
    }

    #[test]
    fn each_stream_keeps_its_own_unfinished_line() {
        let entries = logged(|log| {
            log.stdout(b"out-a ");
            log.stderr(b"err-a ");
            log.stdout(b"out-b\nout-c");
            log.stderr(b"err-b\n");
            log.stdout(b"\n");
        });
        assert_eq!(
            texts(&entries),
            [
                ("stdout", "out-a out-b\n"),
                ("stderr", "err-a err-b\n"),
                ("stdout", "out-c\n")
            ]
        );
    }

    #[test]
    fn the_unfinished_last_lines_are_logged_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let (mut reader, _) = LogReader::open(&path).unwrap();
        let mut log = LogWriter::append_to(&path, LogLimits::default()).unwrap();
        log.stdout(b"done\nno newline");
        log.stderr(b"bye");
        assert_eq!(texts(&reader.read_new().unwrap()), [("stdout", "done\n")]);
        drop(log);
        let rest = reader.read_new().unwrap();
        assert_eq!(texts(&rest), [("stdout", "no newline"), ("stderr", "bye")]);
        assert!(rest.iter().all(|e| !e.time.is_empty()));
    }

    #[test]
    fn chunks_of_many_lines_rotate_between_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let limits = LogLimits {
            max_size: 300,
            max_files: 3,
        };
        let lines: Vec<String> = (0..100).map(|n| format!("line {n}\n")).collect();
        let mut log = LogWriter::append_to(&path, limits).unwrap();
        for chunk in lines.chunks(7) {
            log.stdout(chunk.concat().as_bytes());
        }
        drop(log);
        for generation in 0..3 {
            let file = match generation {
                0 => path.clone(),
                _ => rotated(&path, generation),
            };
            let size = fs::metadata(&file).unwrap().len();
            assert!(
                size <= limits.max_size,
                "{} has {size} bytes",
                file.display()
            );
        }
        let (_, kept) = LogReader::open(&path).unwrap();
        let kept: Vec<&str> = kept.iter().map(|e| e.log.as_str()).collect();
        // The newest lines, complete and in order.
        assert!(kept.len() > 2);
        assert_eq!(kept, lines[lines.len() - kept.len()..]);
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
            "compress=yes",
        ] {
            assert!(LogLimits::default().with_option(bad).is_err(), "{bad}");
        }
        assert!(LogLimits::default().with_option("compress=true").is_ok());
    }

    #[test]
    fn log_drivers_are_json_file_or_none_and_none_takes_no_options() {
        assert_eq!(LogDriver::parse("local").unwrap(), LogDriver::JsonFile);
        assert_eq!(LogDriver::parse("none").unwrap().name(), "none");
        let err = LogDriver::parse("syslog").unwrap_err().to_string();
        assert!(err.contains("\"syslog\" is not supported"), "{err}");
        let size = ["max-size=1k".to_owned()];
        assert_eq!(LogDriver::JsonFile.limits(&size).unwrap().max_size, 1024);
        assert!(LogDriver::None.limits(&size).is_err());
        assert!(LogDriver::None.limits(&[]).is_ok());
    }
}
