//! Numbers with a unit suffix, as Docker's flags take them (`512m`, `10s`).

/// Parses a Docker-style size (bytes, or with a b/k/m/g suffix) into bytes.
pub fn parse_size_bytes(value: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 10] = [
        ("", 1),
        ("b", 1),
        ("k", 1 << 10),
        ("kb", 1 << 10),
        ("m", 1 << 20),
        ("mb", 1 << 20),
        ("g", 1 << 30),
        ("gb", 1 << 30),
        ("t", 1 << 40),
        ("tb", 1 << 40),
    ];
    parse_scaled(&value.trim().to_ascii_lowercase(), &UNITS)
        .ok_or_else(|| format!("{value:?} is not a size like 256m or 1g"))
}

/// Parses a guest memory size into MiB.
pub fn parse_memory_mib(value: &str) -> Result<u64, String> {
    let mib = parse_size_bytes(value)? >> 20;
    if mib < 64 {
        return Err(format!("{value}: a guest needs at least 64m of memory"));
    }
    Ok(mib)
}

/// `value`'s leading digits times the factor `units` gives its suffix (a
/// bare number takes the factor of the `""` entry); `None` for anything
/// else, or on overflow.
pub fn parse_scaled(value: &str, units: &[(&str, u64)]) -> Option<u64> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, suffix) = value.split_at(split);
    let (_, factor) = units.iter().find(|(unit, _)| *unit == suffix)?;
    digits.parse::<u64>().ok()?.checked_mul(*factor)
}

/// Parses a duration as Go's `time.ParseDuration` and Docker's flags take
/// it: numbers (fractions too) each with a unit, `ns`, `us`, `µs`, `ms`,
/// `s`, `m`, `h` (`1m30s`, `1.5s`, `500ms`); a bare `0` is zero.
pub fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    const NANOS_PER_UNIT: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let invalid = || format!("{value:?} is not a duration like 30s, 1m30s or 500ms");
    match value {
        "" => return Err(invalid()),
        "0" => return Ok(std::time::Duration::ZERO),
        _ => {}
    }
    let mut rest = value;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (whole, fraction) = rest[..number_len]
            .split_once('.')
            .unwrap_or((&rest[..number_len], ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(invalid());
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (_, unit) = NANOS_PER_UNIT
            .iter()
            .find(|(name, _)| *name == &rest[..unit_len])
            .ok_or_else(invalid)?;
        rest = &rest[unit_len..];
        // Digits past nanosecond precision are dropped, as Go drops them.
        let fraction = &fraction[..fraction.len().min(18)];
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let fraction_nanos = if fraction.is_empty() {
            0
        } else {
            let digits: u128 = fraction.parse().map_err(|_| invalid())?;
            digits * unit / 10u128.pow(fraction.len() as u32)
        };
        nanos = whole
            .checked_mul(*unit)
            .and_then(|n| n.checked_add(fraction_nanos))
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(invalid)?;
    }
    let nanos = u64::try_from(nanos).map_err(|_| invalid())?;
    Ok(std::time::Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: [(&str, u64); 3] = [("", 1), ("k", 1000), ("x", u64::MAX)];

    #[test]
    fn memory_sizes_parse_like_docker() {
        assert_eq!(parse_memory_mib("256m"), Ok(256));
        assert_eq!(parse_memory_mib("1G"), Ok(1024));
        assert_eq!(parse_memory_mib("131072k"), Ok(128));
        assert_eq!(parse_memory_mib("134217728"), Ok(128));
        assert!(parse_memory_mib("32m")
            .unwrap_err()
            .contains("at least 64m"));
        assert!(parse_memory_mib("12x").is_err());
        assert!(parse_memory_mib("m").is_err());
        assert!(parse_memory_mib("99999999999999g").is_err());
    }

    #[test]
    fn digits_times_the_suffix_factor_or_nothing() {
        assert_eq!(parse_scaled("12", &UNITS), Some(12));
        assert_eq!(parse_scaled("12k", &UNITS), Some(12_000));
        assert_eq!(parse_scaled("k", &UNITS), None);
        assert_eq!(parse_scaled("12q", &UNITS), None);
        assert_eq!(parse_scaled("1.5k", &UNITS), None);
        assert_eq!(parse_scaled("2x", &UNITS), None);
    }

    #[test]
    fn durations_read_as_gos() {
        use std::time::Duration;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(
            parse_duration("1h2m3.004s"),
            Ok(Duration::from_millis(3_723_004))
        );
        for bad in ["", "30", "s", "1x", "1.2.3s", "-1s", ".s", "99999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
