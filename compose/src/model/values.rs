//! Scalars as a compose file writes them: numbers and booleans that may
//! arrive as strings (interpolation makes strings), durations (`1m30s`)
//! and sizes (`256m`).

use std::fmt;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::Value;

/// A value that may be written as a string: `3` or `"3"`, `true` or
/// `"true"`.
fn text_of<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Null => None,
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        other => {
            return Err(D::Error::custom(format!(
                "expected a scalar, found {}",
                kind(&other)
            )))
        }
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Mapping(_) => "a mapping",
        Value::Sequence(_) => "a list",
        _ => "a tagged value",
    }
}

/// A number, possibly written as a string.
pub fn number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
{
    match text_of(deserializer)? {
        None => Ok(None),
        Some(text) => {
            text.trim().parse().map(Some).map_err(|_| {
                D::Error::custom(format!("{text:?} is not a number of the right kind"))
            })
        }
    }
}

/// A boolean, possibly written as a string (`true`, `false`, `yes`, `no`).
pub fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match text_of(deserializer)?.as_deref() {
        None | Some("false" | "False" | "FALSE" | "no" | "0") => Ok(false),
        Some("true" | "True" | "TRUE" | "yes" | "1") => Ok(true),
        Some(other) => Err(D::Error::custom(format!("{other:?} is not true or false"))),
    }
}

/// An optional string that may be written as a number (`user: 1000`).
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    text_of(deserializer)
}

/// An optional number written as text (`published: "8080"`), as Compose
/// writes it.
pub fn as_text<S: Serializer, T: fmt::Display>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// A host port, or a range of them of which a container takes a free one
/// (`8000-8002`), as a port's `published` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPorts {
    /// The first port (0: one the kernel picks).
    pub first: u16,
    /// The last: `first` but for a range.
    pub last: u16,
}

impl std::str::FromStr for HostPorts {
    type Err = String;

    fn from_str(text: &str) -> Result<HostPorts, String> {
        let bad = || format!("{text:?} is not a port or a range of ports");
        let port = |text: &str| text.parse::<u16>().map_err(|_| bad());
        let (first, last) = match text.split_once('-') {
            Some((first, last)) => (port(first)?, port(last)?),
            None => (port(text)?, port(text)?),
        };
        // 0, the kernel's pick, starts no range.
        match first <= last && (first > 0 || last == 0) {
            true => Ok(HostPorts { first, last }),
            false => Err(bad()),
        }
    }
}

impl fmt::Display for HostPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first == self.last {
            true => write!(f, "{}", self.first),
            false => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

/// A span of time, `1m30s`, `10s`, `1.5s`, `500ms`; a bare number is
/// seconds. Written back as Go writes durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl Span {
    /// Parses `1h2m3.5s`-style text.
    pub fn parse(text: &str) -> Result<Span, String> {
        let bad = || format!("{text:?} is not a duration like 10s, 1m30s or 500ms");
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            return Duration::try_from_secs_f64(seconds)
                .map(Span)
                .map_err(|_| bad());
        }
        let mut total = 0f64;
        let mut rest = text;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            let amount: f64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let seconds = match &rest[..unit_len] {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" | "µs" => 1e-6,
                "ns" => 1e-9,
                _ => return Err(bad()),
            };
            total += amount * seconds;
            rest = &rest[unit_len..];
        }
        Duration::try_from_secs_f64(total)
            .map(Span)
            .map_err(|_| bad())
    }
}

impl fmt::Display for Span {
    /// As Go's `time.Duration` prints: `1m30s`, `500ms`, `2h0m0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000_000_000 {
            return match nanos {
                n if n % 1_000_000 == 0 => write!(f, "{}ms", n / 1_000_000),
                n if n % 1_000 == 0 => write!(f, "{}µs", n / 1_000),
                n => write!(f, "{n}ns"),
            };
        }
        let seconds = self.0.as_secs();
        let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
        let fraction = self.0.subsec_nanos();
        if hours > 0 {
            write!(f, "{hours}h{minutes}m")?;
        } else if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        match fraction {
            0 => write!(f, "{}s", seconds % 60),
            fraction => {
                let digits = format!("{fraction:09}");
                write!(f, "{}.{}s", seconds % 60, digits.trim_end_matches('0'))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        let text =
            text_of(deserializer)?.ok_or_else(|| D::Error::custom("a duration is needed"))?;
        Span::parse(&text).map_err(D::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A size in bytes, written `256m`, `1.5G`, `512MB`, `1gib` or as a number
/// of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl Bytes {
    /// Parses a size as Compose does (go-units' `RAMInBytes`): a number,
    /// fractions allowed, then optionally a space, a binary unit (`k`,
    /// `m`, `g`, `t`, `p`, any case), an `i` and a `b`; the bytes are
    /// rounded down.
    pub fn parse(text: &str) -> Result<Bytes, String> {
        let bad = || format!("{text:?} is not a size like 256m, 1.5g or 512MB");
        let lower = text.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(lower.len());
        let (number, suffix) = lower.split_at(split);
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
            return Err(bad());
        }
        let amount: f64 = number.parse().map_err(|_| bad())?;
        let suffix = suffix.strip_prefix(' ').unwrap_or(suffix);
        let suffix = suffix.strip_suffix('b').unwrap_or(suffix);
        let suffix = suffix.strip_suffix('i').unwrap_or(suffix);
        let power = match suffix {
            "" => 0,
            "k" => 1,
            "m" => 2,
            "g" => 3,
            "t" => 4,
            "p" => 5,
            _ => return Err(bad()),
        };
        let bytes = amount * 1024f64.powi(power);
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(bad());
        }
        // As Go's int64(size * multiplier): the fraction of a byte dropped.
        Ok(Bytes(bytes as u64))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let text = text_of(deserializer)?.ok_or_else(|| D::Error::custom("a size is needed"))?;
        Bytes::parse(&text).map_err(D::Error::custom)
    }
}

impl Serialize for Bytes {
    /// As text, as Compose writes sizes: `"536870912"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_as_go() {
        for (text, seconds, printed) in [
            ("10s", 10.0, "10s"),
            ("1m30s", 90.0, "1m30s"),
            ("1.5s", 1.5, "1.5s"),
            ("500ms", 0.5, "500ms"),
            ("2h", 7200.0, "2h0m0s"),
            ("3", 3.0, "3s"),
        ] {
            let span = Span::parse(text).unwrap();
            assert_eq!(span.0.as_secs_f64(), seconds, "{text}");
            assert_eq!(span.to_string(), printed, "{text}");
        }
        for bad in ["", "s", "10x", "1m30", "-1s"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_as_compose_does() {
        for (text, bytes) in [
            ("100", 100),
            ("256m", 256 << 20),
            ("1.5G", 1536 << 20),
            ("512MB", 512 << 20),
            ("1gib", 1 << 30),
            ("128 kb", 128 << 10),
            ("0.5k", 512),
        ] {
            assert_eq!(Bytes::parse(text), Ok(Bytes(bytes)), "{text}");
        }
        for bad in ["", "m", "1.g", ".5g", "1x", "-1m", "1.2.3g"] {
            assert!(Bytes::parse(bad).is_err(), "{bad}");
        }
    }
}
