//! The event log: what happened to containers, images, networks and
//! volumes, as `docker events` reports it.
//!
//! hull has no daemon to stream events from: every process that changes
//! something (a command, a container's monitor, its health checker) appends
//! one line of JSON to `<root>/events.log`, and a reader follows the file.
//! A line is written with one `write` on a file opened for appending, so
//! writers do not interleave. Past [`MAX_LOG_BYTES`] the log becomes
//! `events.log.1` (replacing the one before) and a new one starts: events
//! are kept for a while, not for ever, as Docker's daemon keeps its last
//! 256 in memory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::container::ContainerConfig;
use crate::error::Result;
use crate::Runtime;

/// The log's file name under the hull root.
const LOG_FILE: &str = "events.log";
/// The one before it.
const ROTATED_FILE: &str = "events.log.1";
/// How large the log grows before it is rotated.
const MAX_LOG_BYTES: u64 = 1 << 20;
/// How often a follower looks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// What an event happened to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A container (`create`, `start`, `die`, `destroy`, ...).
    Container,
    /// An image (`pull`, `tag`, `delete`, ...).
    Image,
    /// A network (`create`, `connect`, ...).
    Network,
    /// A volume (`create`, `destroy`).
    Volume,
}

impl EventType {
    /// Its name, as `--filter type=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
            EventType::Network => "network",
            EventType::Volume => "volume",
        }
    }
}

/// What an event happened to, by ID, with what else identifies it (`name`,
/// `image`, the container's labels, `exitCode`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The container's or network's ID, the volume's name, the image's ID
    /// or reference.
    #[serde(rename = "ID")]
    pub id: String,
    /// Docker's attributes of the event.
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, as Docker's API gives it (without its deprecated `status`,
/// `id` and `from`, which a front end derives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What it happened to.
    #[serde(rename = "Type")]
    pub kind: EventType,
    /// What happened: `start`, `die`, `health_status: healthy`, ...
    #[serde(rename = "Action")]
    pub action: String,
    /// To which one.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// When, in nanoseconds since the Unix epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// An event that happens now.
    pub fn now(
        kind: EventType,
        action: impl Into<String>,
        id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        let time_nano = now_nanos();
        Event {
            kind,
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            time_nano,
        }
    }
}

/// Which events to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventsOptions {
    /// The earliest, in nanoseconds since the epoch (none: from now on).
    pub since: Option<i64>,
    /// The latest (none: follow the log for ever).
    pub until: Option<i64>,
}

impl Runtime {
    /// Appends `event` to the log. Best effort: an event that cannot be
    /// written is a warning, never a failure of what it reports.
    pub fn record_event(&self, event: &Event) {
        record(self.root.path(), event);
    }

    /// Hands `each` the logged events from `options.since` on, oldest
    /// first (without `since`: those up to `options.until` if given, else
    /// only events logged from now on), following the log as it grows until
    /// `options.until` passes, or for ever without one; stops early when
    /// `each` returns false. A line that is not an event is passed over.
    pub fn events(
        &self,
        options: &EventsOptions,
        each: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<()> {
        // Only new events: from the log's end, whatever the clocks of the
        // processes that write it say.
        let from_end = options.since.is_none() && options.until.is_none();
        let since = options.since.unwrap_or(i64::MIN);
        let mut log = Follower::new(self.root.path(), from_end)?;
        loop {
            while let Some(event) = log.next_event()? {
                if options.until.is_some_and(|until| event.time_nano > until) {
                    return Ok(());
                }
                if event.time_nano >= since && !each(&event) {
                    return Ok(());
                }
            }
            if options.until.is_some_and(|until| now_nanos() > until) {
                return Ok(());
            }
            thread::sleep(FOLLOW_INTERVAL);
            log.notice_rotation()?;
        }
    }
}

/// Appends `event` to the log under `root` (see [`Runtime::record_event`]).
pub(crate) fn record(root: &Path, event: &Event) {
    if let Err(err) = append(root, event) {
        tracing::warn!("cannot log the event {}: {err:#}", event.action);
    }
}

/// Logs `action` of `container`, with Docker's attributes: its labels,
/// image and name, and `extra` (`exitCode`, `signal`, ...).
pub(crate) fn container_event(
    root: &Path,
    container: &ContainerConfig,
    action: &str,
    extra: &[(&str, String)],
) {
    let mut attributes = container.labels.clone();
    attributes.insert("image".into(), container.image.clone());
    attributes.insert("name".into(), container.name.clone());
    attributes.extend(
        extra
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone())),
    );
    record(
        root,
        &Event::now(EventType::Container, action, &container.id, attributes),
    );
}

/// Logs `action` of the network or volume `id`, with `attributes`.
pub(crate) fn object_event(
    root: &Path,
    kind: EventType,
    action: &str,
    id: &str,
    attributes: &[(&str, &str)],
) {
    let attributes = attributes
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    record(root, &Event::now(kind, action, id, attributes));
}

fn append(root: &Path, event: &Event) -> anyhow::Result<()> {
    let path = root.join(LOG_FILE);
    let mut line = serde_json::to_vec(event).context("cannot write the event")?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // One write: appends of whole lines do not interleave.
    file.write_all(&line)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    // Rotated by this writer only if no other did since it opened the file:
    // the live log is never renamed over the one just rotated.
    let still_live = fs::metadata(&path).is_ok_and(|live| live.ino() == metadata.ino());
    if metadata.len() > MAX_LOG_BYTES && still_live {
        let _ = fs::rename(&path, root.join(ROTATED_FILE));
    }
    Ok(())
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64)
}

/// The longest line read as an event; a longer one is passed over.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads the log from its oldest event on (or from its end) and keeps up
/// with it: new lines as they are written, and a rotation (the file read so
/// far renamed, a new one in its place).
struct Follower {
    path: PathBuf,
    current: Option<Open>,
    /// The live log once `current` is the rotated one, or the new one once
    /// the one being read was rotated: read when `current` is done.
    next: Option<Open>,
    /// A line read before its writer finished it.
    partial: Vec<u8>,
}

/// One log file being read.
struct Open {
    reader: BufReader<File>,
    inode: u64,
}

impl Follower {
    /// Both files opened at once, so that a rotation meanwhile skips
    /// nothing; with `from_end`, the live one only, from its end.
    fn new(root: &Path, from_end: bool) -> anyhow::Result<Follower> {
        let path = root.join(LOG_FILE);
        let mut live = open(&path)?;
        let (current, next) = match from_end {
            true => {
                if let Some(live) = &mut live {
                    live.reader
                        .seek(SeekFrom::End(0))
                        .context("cannot read the event log")?;
                }
                (live, None)
            }
            false => match open(&root.join(ROTATED_FILE))? {
                Some(rotated) => (Some(rotated), live),
                None => (live, None),
            },
        };
        Ok(Follower {
            path,
            current,
            next,
            partial: Vec::new(),
        })
    }

    /// The next whole event line there is now, parsed.
    fn next_event(&mut self) -> anyhow::Result<Option<Event>> {
        loop {
            let Some(open) = &mut self.current else {
                return Ok(None);
            };
            let read = (&mut open.reader)
                .take((MAX_LINE_BYTES + 1) as u64)
                .read_until(b'\n', &mut self.partial)
                .context("cannot read the event log")?;
            if read == 0 {
                // The end of a rotated file: on to the next one.
                match self.next.take() {
                    Some(next) => {
                        self.current = Some(next);
                        self.partial.clear();
                        continue;
                    }
                    None => return Ok(None),
                }
            }
            if self.partial.len() > MAX_LINE_BYTES {
                // Not an event: skipped to its end.
                let ended = self.partial.ends_with(b"\n");
                self.partial.clear();
                if !ended {
                    self.skip_to_line_end()?;
                }
                continue;
            }
            if !self.partial.ends_with(b"\n") {
                // Its writer is mid-line: the rest comes later.
                return Ok(None);
            }
            let line = std::mem::take(&mut self.partial);
            if let Ok(event) = serde_json::from_slice(&line) {
                return Ok(Some(event));
            }
        }
    }

    /// Reads past the rest of an overlong line.
    fn skip_to_line_end(&mut self) -> anyhow::Result<()> {
        let Some(open) = &mut self.current else {
            return Ok(());
        };
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let read = (&mut open.reader)
                .take(MAX_LINE_BYTES as u64)
                .read_until(b'\n', &mut sink)
                .context("cannot read the event log")?;
            if read == 0 || sink.ends_with(b"\n") {
                return Ok(());
            }
        }
    }

    /// After the file being read ended: the live log, if it was not there,
    /// or if it was rotated meanwhile (then read after the rest of the old
    /// file).
    fn notice_rotation(&mut self) -> anyhow::Result<()> {
        if self.next.is_some() {
            return Ok(());
        }
        let Ok(live) = fs::metadata(&self.path) else {
            return Ok(());
        };
        match &self.current {
            None => self.current = open(&self.path)?,
            Some(current) if current.inode != live.ino() => self.next = open(&self.path)?,
            Some(_) => {}
        }
        Ok(())
    }
}

/// `path` opened for reading, or `None` if it is not there.
fn open(path: &Path) -> anyhow::Result<Option<Open>> {
    match File::open(path) {
        Ok(file) => {
            let inode = file.metadata()?.ino();
            Ok(Some(Open {
                reader: BufReader::new(file),
                inode,
            }))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, time_nano: i64) -> Event {
        Event {
            kind: EventType::Container,
            action: action.into(),
            actor: Actor {
                id: "abc".into(),
                attributes: BTreeMap::from([("name".into(), "web".into())]),
            },
            time_nano,
        }
    }

    fn read_all(root: &Path, since: i64, until: i64) -> Vec<String> {
        let runtime = Runtime::new(root);
        let options = EventsOptions {
            since: Some(since),
            until: Some(until),
        };
        let mut seen = Vec::new();
        runtime
            .events(&options, &mut |event| {
                seen.push(event.action.clone());
                true
            })
            .unwrap();
        seen
    }

    #[test]
    fn events_are_read_back_between_since_and_until() {
        let root = tempfile::tempdir().unwrap();
        for (action, time) in [("create", 10), ("start", 20), ("die", 30)] {
            record(root.path(), &event(action, time));
        }
        assert_eq!(read_all(root.path(), 0, 100), ["create", "start", "die"]);
        assert_eq!(read_all(root.path(), 15, 25), ["start"]);
        let line = fs::read_to_string(root.path().join(LOG_FILE)).unwrap();
        assert!(
            line.starts_with(
                r#"{"Type":"container","Action":"create","Actor":{"ID":"abc","Attributes":{"name":"web"}},"timeNano":10}"#
            ),
            "{line}"
        );
        let mode = fs::metadata(root.path().join(LOG_FILE)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_rotated_log_is_read_before_the_live_one() {
        let root = tempfile::tempdir().unwrap();
        let big = "x".repeat(4096);
        let mut count = 0;
        while !root.path().join(ROTATED_FILE).exists() {
            let mut filler = event("filler", count);
            filler.actor.attributes.insert("pad".into(), big.clone());
            record(root.path(), &filler);
            count += 1;
        }
        record(root.path(), &event("after", count));
        let seen = read_all(root.path(), 0, count + 1);
        assert_eq!(seen.len() as i64, count + 1);
        assert_eq!(seen.last().unwrap(), "after");
    }

    #[test]
    fn a_follower_sees_events_written_after_it_started() {
        let root = tempfile::tempdir().unwrap();
        let writer_root = root.path().to_owned();
        let start = now_nanos();
        let writer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            record(
                &writer_root,
                &Event::now(EventType::Volume, "create", "v", BTreeMap::new()),
            );
        });
        let runtime = Runtime::new(root.path());
        let mut seen = Vec::new();
        runtime
            .events(
                &EventsOptions {
                    since: Some(start),
                    until: None,
                },
                &mut |event| {
                    seen.push((event.kind, event.action.clone()));
                    false
                },
            )
            .unwrap();
        writer.join().unwrap();
        assert_eq!(seen, [(EventType::Volume, "create".to_owned())]);
    }

    #[test]
    fn torn_foreign_and_overlong_lines_are_passed_over() {
        let root = tempfile::tempdir().unwrap();
        let mut garbage = b"not json \xff\xfe\n".to_vec();
        garbage.extend(vec![b'x'; MAX_LINE_BYTES + 10]);
        garbage.push(b'\n');
        fs::write(root.path().join(LOG_FILE), garbage).unwrap();
        record(root.path(), &event("start", 5));
        // (The overlong line made the log rotate: this starts the new one.)
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(root.path().join(LOG_FILE))
            .unwrap()
            .write_all(br#"{"Type":"container","#)
            .unwrap();
        assert_eq!(read_all(root.path(), 0, 100), ["start"]);
    }
}
