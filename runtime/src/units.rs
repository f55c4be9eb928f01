//! Numbers with a unit suffix, as Docker's flags take them (`512m`, `10s`).

/// Parses a Docker-style size (bytes, or with a b/k/m/g suffix) into bytes.
pub fn parse_size_bytes(value: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 8] = [
        ("", 1),
        ("b", 1),
        ("k", 1 << 10),
        ("kb", 1 << 10),
        ("m", 1 << 20),
        ("mb", 1 << 20),
        ("g", 1 << 30),
        ("gb", 1 << 30),
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
}
