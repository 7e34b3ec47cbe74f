//! Durations as operators write them: `250ms`, `10s`, `2m`, `1h`. Below both
//! `config`, which reads them, and `managed`, which names them in warnings.

use std::time::Duration;

/// Why a duration could not be read; each names the text as given.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No whole number at the start.
    #[error("{0:?} is not a duration such as 250ms, 10s, 2m, 1h or 30d")]
    NotANumber(String),
    /// A number without one of the units.
    #[error("{0:?} has no unit: write 250ms, 10s, 2m, 1h or 30d")]
    NoUnit(String),
    /// More milliseconds than fit in 64 bits.
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// Parses `<whole number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| DurationError::NotANumber(text.to_owned()))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(DurationError::NoUnit(text.to_owned())),
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| DurationError::TooLong(text.to_owned()))
}

/// Formats a duration the way [`parse_duration`] reads it, for help and
/// errors: in the largest unit that holds it whole (`1h`, not `3600s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    if ms == 0 {
        return "0s".into();
    }
    match units.iter().find(|(size, _)| ms.is_multiple_of(*size)) {
        Some((size, unit)) => format!("{}{unit}", ms / size),
        None => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(
            parse_duration("10"),
            Err(DurationError::NoUnit("10".into()))
        );
        assert!(
            parse_duration("10")
                .unwrap_err()
                .to_string()
                .contains("no unit")
        );
        assert_eq!(
            parse_duration("fast"),
            Err(DurationError::NotANumber("fast".into()))
        );
        assert!(matches!(
            parse_duration("99999999999999999h"),
            Err(DurationError::TooLong(_))
        ));
        assert_eq!(format_duration(Duration::from_secs(25)), "25s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
