//! The key sequence that detaches `hull attach` from a container and leaves
//! it running (`--detach-keys`, Docker's format: `ctrl-p,ctrl-q`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Docker's default: Ctrl-P then Ctrl-Q.
pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// A parsed detach sequence: the bytes a terminal sends for its keys. Kept
/// in a container's config in the form the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DetachKeys(Vec<u8>);

impl TryFrom<String> for DetachKeys {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

impl From<DetachKeys> for String {
    fn from(keys: DetachKeys) -> String {
        keys.to_string()
    }
}

impl Default for DetachKeys {
    fn default() -> Self {
        DEFAULT.parse().expect("the default detach keys parse")
    }
}

impl FromStr for DetachKeys {
    type Err = String;

    /// Comma-separated keys, each a single character or `ctrl-X` where X is
    /// a letter or one of `@ [ \ ] ^ _`.
    fn from_str(value: &str) -> Result<Self, String> {
        let bytes = value
            .split(',')
            .map(key_byte)
            .collect::<Result<Vec<u8>, String>>()?;
        Ok(DetachKeys(bytes))
    }
}

fn key_byte(key: &str) -> Result<u8, String> {
    let invalid = || {
        format!("invalid detach key {key:?}: use a character or ctrl-X (X a letter or @[\\]^_), e.g. ctrl-p,ctrl-q")
    };
    let control = key.strip_prefix("ctrl-");
    let text = control.unwrap_or(key);
    let [byte] = text.as_bytes() else {
        return Err(invalid());
    };
    match control {
        None if byte.is_ascii_graphic() => Ok(*byte),
        Some(_) if byte.is_ascii_alphabetic() || b"@[\\]^_".contains(byte) => {
            Ok(byte.to_ascii_uppercase() & 0x1f)
        }
        _ => Err(invalid()),
    }
}

impl fmt::Display for DetachKeys {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self
            .0
            .iter()
            .map(|&byte| match byte {
                0..=0x1f => format!("ctrl-{}", char::from(byte | 0x60)),
                _ => char::from(byte).to_string(),
            })
            .collect();
        f.write_str(&keys.join(","))
    }
}

/// Finds the detach sequence in a stream of input, which may split it
/// across reads. Bytes that could start the sequence are held back until it
/// is clear whether they do.
#[derive(Debug)]
pub struct DetachScanner {
    keys: DetachKeys,
    /// How many bytes of the sequence the input ended with.
    held: usize,
}

/// What to do with one read of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// Forward these bytes (possibly none) and read on.
    Forward(Vec<u8>),
    /// Forward these bytes, then detach.
    Detach(Vec<u8>),
}

impl DetachScanner {
    pub fn new(keys: DetachKeys) -> Self {
        DetachScanner { keys, held: 0 }
    }

    pub fn scan(&mut self, input: &[u8]) -> Scanned {
        let sequence = &self.keys.0;
        let mut forward = Vec::with_capacity(input.len());
        for &byte in input {
            if byte == sequence[self.held] {
                self.held += 1;
                if self.held == sequence.len() {
                    self.held = 0;
                    return Scanned::Detach(forward);
                }
                continue;
            }
            // The held bytes were ordinary input after all; this byte may
            // start the sequence again.
            forward.extend_from_slice(&sequence[..self.held]);
            self.held = 0;
            if byte == sequence[0] {
                self.held = 1;
            } else {
                forward.push(byte);
            }
        }
        Scanned::Forward(forward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(value: &str) -> DetachKeys {
        value.parse().unwrap()
    }

    #[test]
    fn keys_parse_like_docker() {
        assert_eq!(DetachKeys::default(), DetachKeys(vec![0x10, 0x11]));
        assert_eq!(keys("ctrl-a,x"), DetachKeys(vec![0x01, b'x']));
        assert_eq!(
            keys("ctrl-@,ctrl-[,ctrl-_"),
            DetachKeys(vec![0, 0x1b, 0x1f])
        );
        assert_eq!(keys("ctrl-P"), DetachKeys(vec![0x10]));
        for bad in ["", "ctrl-", "ctrl-1", "ab", "ctrl-p,,ctrl-q", " "] {
            let err = bad.parse::<DetachKeys>().unwrap_err();
            assert!(err.contains("invalid detach key"), "{bad:?}: {err}");
        }
        assert_eq!(keys("ctrl-p,ctrl-q").to_string(), "ctrl-p,ctrl-q");
        assert_eq!(keys("ctrl-a,x").to_string(), "ctrl-a,x");
    }

    #[test]
    fn configs_keep_keys_as_written_and_refuse_bad_ones() {
        let json = serde_json::to_string(&keys("ctrl-x,x")).unwrap();
        assert_eq!(json, r#""ctrl-x,x""#);
        assert_eq!(
            serde_json::from_str::<DetachKeys>(&json).unwrap(),
            keys("ctrl-x,x")
        );
        assert!(serde_json::from_str::<DetachKeys>(r#""ctrl-1""#).is_err());
    }

    #[test]
    fn the_sequence_detaches_and_other_input_passes_unchanged() {
        let mut scanner = DetachScanner::new(DetachKeys::default());
        assert_eq!(scanner.scan(b"ls\r"), Scanned::Forward(b"ls\r".to_vec()));
        assert_eq!(
            scanner.scan(b"ab\x10\x11cd"),
            Scanned::Detach(b"ab".to_vec())
        );
    }

    #[test]
    fn a_sequence_split_across_reads_is_held_then_detaches() {
        let mut scanner = DetachScanner::new(DetachKeys::default());
        assert_eq!(scanner.scan(b"x\x10"), Scanned::Forward(b"x".to_vec()));
        assert_eq!(scanner.scan(b"\x11"), Scanned::Detach(vec![]));
    }

    #[test]
    fn a_broken_sequence_is_forwarded_as_typed() {
        let mut scanner = DetachScanner::new(DetachKeys::default());
        assert_eq!(scanner.scan(b"\x10"), Scanned::Forward(vec![]));
        assert_eq!(scanner.scan(b"a"), Scanned::Forward(b"\x10a".to_vec()));
        // Ctrl-P twice: the second may still start the sequence.
        assert_eq!(
            scanner.scan(b"\x10\x10"),
            Scanned::Forward(b"\x10".to_vec())
        );
        assert_eq!(scanner.scan(b"\x11"), Scanned::Detach(vec![]));
    }
}
