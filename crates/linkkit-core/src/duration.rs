//! Human durations as written in configuration: `500ms`, `15s`, `5m`, `2h`, `5d`.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (use a whole number followed by ms, s, m, h or d, e.g. `15s`)")]
pub struct InvalidDuration(pub String);

/// Parses one duration such as `30m`. Zero is allowed; fractions and negative values are not.
pub fn parse_duration(input: &str) -> Result<Duration, InvalidDuration> {
    let text = input.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid = || InvalidDuration(input.to_owned());
    let value: u64 = number.parse().map_err(|_| invalid())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(invalid)
}

/// Writes a duration back in the shortest exact unit (`300s` → `5m`).
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("5d").unwrap(), Duration::from_secs(432_000));
    }

    #[test]
    fn nonsense_is_rejected_with_the_input_named() {
        for bad in [
            "",
            "s",
            "5",
            "5 weeks",
            "-5s",
            "1.5h",
            "99999999999999999999d",
        ] {
            let error = parse_duration(bad).unwrap_err();
            assert_eq!(error.0, bad);
        }
    }

    #[test]
    fn formatting_uses_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(36_000)), "10h");
    }
}
