//! Points in time as Docker's flags take them (`logs --since`/`--until`,
//! prune's `until=`): RFC 3339, Unix seconds, or a duration before now.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time as Docker's `--since`/`--until` take it: RFC 3339,
/// Unix seconds (with a fraction), or a duration before now (`10m`,
/// `1h30m`, `90s`).
pub fn parse_time(value: &str) -> Result<SystemTime, String> {
    if let Ok(time) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(time.into());
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .ok()
            .and_then(|since_epoch| UNIX_EPOCH.checked_add(since_epoch))
            .ok_or_else(|| format!("{value:?} is not a time: too far from 1970"));
    }
    let ago = duration(value).ok_or_else(|| {
        format!("{value:?} is not a time: give 2026-01-02T15:04:05Z, Unix seconds, or 10m, 1h30m")
    })?;
    SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| format!("{value:?} is too long ago"))
}

/// `1h30m`, `10m`, `90s`, `250ms`: Go's duration syntax, whole numbers.
fn duration(value: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .filter(|&at| at > 0)?;
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => Duration::from_secs(3600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            _ => return None,
        };
        total += unit * u32::try_from(number).ok()?;
        rest = &rest[unit_len..];
    }
    (!value.is_empty()).then_some(total)
}

/// A duration as Docker words it (go-units' `HumanDuration`): "About a
/// minute", "3 hours".
pub fn human_duration(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds < 60 {
        return match seconds {
            s if s < 1 => "Less than a second".into(),
            s => plural(s, "second"),
        };
    }
    match seconds / 60 {
        1 => return "About a minute".into(),
        minutes if minutes < 60 => return plural(minutes, "minute"),
        _ => {}
    }
    // Hours to the nearest, as go-units rounds them.
    match (seconds + 1800) / 3600 {
        1 => "About an hour".into(),
        hours if hours < 48 => plural(hours, "hour"),
        hours if hours < 24 * 14 => plural(hours / 24, "day"),
        hours if hours < 24 * 60 => plural(hours / (24 * 7), "week"),
        hours if hours < 24 * 365 * 2 => plural(hours / (24 * 30), "month"),
        _ => plural(seconds / (3600 * 24 * 365), "year"),
    }
}

/// How long ago the RFC 3339 time `time` was, as [`human_duration`] words
/// it; `None` if it is no such time.
pub fn human_duration_since(time: &str) -> Option<String> {
    let then = OffsetDateTime::parse(time, &Rfc3339).ok()?;
    Some(human_duration(
        (OffsetDateTime::now_utc() - then).whole_seconds().max(0),
    ))
}

/// An RFC 3339 time as Docker shows `CreatedAt` (Go's `time.String()`), in
/// UTC: `2024-01-27 00:59:20 +0000 UTC`. Anything else is shown as it is.
pub fn created_at(created: &str) -> String {
    let Ok(time) = OffsetDateTime::parse(created, &Rfc3339) else {
        return created.to_owned();
    };
    let utc = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// An RFC 3339 time to the second, in UTC, as Docker's `history` shows
/// `CreatedAt`: `2024-01-27T00:59:20Z`. Anything else is shown as it is.
pub fn created_at_rfc3339(created: &str) -> String {
    OffsetDateTime::parse(created, &Rfc3339)
        .ok()
        .and_then(|time| {
            time.to_offset(UtcOffset::UTC)
                .replace_nanosecond(0)
                .ok()?
                .format(&Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| created.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "m", "10", "10x", "1.5h"] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339_unix_seconds_or_ago() {
        let at = parse_time("2026-01-02T15:04:05Z").unwrap();
        assert_eq!(
            at.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_767_366_245
        );
        assert_eq!(parse_time("1767366245").unwrap(), at);
        let ago = SystemTime::now()
            .duration_since(parse_time("10m").unwrap())
            .unwrap();
        assert!((599..=601).contains(&ago.as_secs()), "{ago:?}");
        assert!(parse_time("yesterday").is_err());
        for absurd in ["inf", "1e300", "NaN", "99999999999h"] {
            assert!(parse_time(absurd).is_err(), "{absurd}");
        }
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(180), "3 minutes");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        // Hours are rounded: 1.6 hours is 2, 47.6 is 2 days.
        assert_eq!(human_duration(5760), "2 hours");
        assert_eq!(human_duration(47 * 3600 + 2200), "2 days");
    }

    #[test]
    fn creation_times_read_like_docker() {
        assert_eq!(
            created_at("2024-01-27T02:59:20.123+02:00"),
            "2024-01-27 00:59:20 +0000 UTC"
        );
        assert_eq!(created_at(""), "");
        assert_eq!(
            created_at_rfc3339("2024-01-27T02:59:20.123+02:00"),
            "2024-01-27T00:59:20Z"
        );
    }
}
