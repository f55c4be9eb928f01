//! Numbers with a unit suffix, as Docker's flags take them (`512m`, `10s`).

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
    fn digits_times_the_suffix_factor_or_nothing() {
        assert_eq!(parse_scaled("12", &UNITS), Some(12));
        assert_eq!(parse_scaled("12k", &UNITS), Some(12_000));
        assert_eq!(parse_scaled("k", &UNITS), None);
        assert_eq!(parse_scaled("12q", &UNITS), None);
        assert_eq!(parse_scaled("1.5k", &UNITS), None);
        assert_eq!(parse_scaled("2x", &UNITS), None);
    }
}
