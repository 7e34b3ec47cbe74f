//! Checks for single settings; each error names its flag.

use std::ops::RangeInclusive;
use std::time::Duration;

use url::Url;

use super::{ConfigError, format_duration, parse_duration};
use crate::files::read_limited;

/// Longest timeout, delay or grace period accepted.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// Byte limits accepted, for both the request and the response cap.
const BYTE_LIMITS: RangeInclusive<usize> = 1024..=64 << 20;

/// Largest config, caller-list, keyring or token file read: each is a few
/// kilobytes, and a path to a device or a huge file must not be read whole.
pub const MAX_SETTINGS_FILE_BYTES: u64 = 1 << 20;

/// A file of text, read with [`read_limited`].
pub fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, MAX_SETTINGS_FILE_BYTES)?)
        .map_err(|_| std::io::Error::other("not UTF-8 text"))
}

pub fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The upstream base URL: http(s), a host, no credentials, query or fragment
/// (a URL with credentials would put them in every log line that names it).
pub fn upstream_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text)
        .map_err(|e| invalid("--upstream", format!("{text:?} is not a URL: {e}")))?;
    let reason = if !matches!(url.scheme(), "http" | "https") {
        "must be an http:// or https:// URL"
    } else if url.host().is_none() {
        "must name a host"
    } else if !url.username().is_empty() || url.password().is_some() {
        "must not contain credentials"
    } else if url.query().is_some() || url.fragment().is_some() {
        "must not have a query or fragment"
    } else {
        return Ok(url);
    };
    Err(invalid("--upstream", reason))
}

/// A file mode written in octal, at most 0777; `example` is shown when it is not.
pub fn octal_mode(setting: &'static str, text: &str, example: &str) -> Result<u32, ConfigError> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            invalid(
                setting,
                format!("{text:?} is not an octal mode such as {example}"),
            )
        })
}

/// A duration between `min` and ten minutes, or `default` when unset.
pub fn duration(
    setting: &'static str,
    value: Option<String>,
    default: Duration,
    min: Duration,
) -> Result<Duration, ConfigError> {
    duration_within(setting, value, default, (min, MAX_DURATION))
}

/// A duration within `(min, max)`, or `default` when unset.
pub fn duration_within(
    setting: &'static str,
    value: Option<String>,
    default: Duration,
    (min, max): (Duration, Duration),
) -> Result<Duration, ConfigError> {
    let Some(text) = value else {
        return Ok(default);
    };
    let d = parse_duration(&text).map_err(|e| invalid(setting, e.to_string()))?;
    if d < min || d > max {
        let (min, max) = (format_duration(min), format_duration(max));
        return Err(invalid(setting, format!("must be between {min} and {max}")));
    }
    Ok(d)
}

/// A number within `range`, or `default` when unset.
pub fn count<T>(
    setting: &'static str,
    value: Option<T>,
    default: T,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    match value {
        None => Ok(default),
        Some(n) if range.contains(&n) => Ok(n),
        Some(_) => Err(invalid(
            setting,
            format!("must be between {} and {}", range.start(), range.end()),
        )),
    }
}

/// A byte limit between 1 KiB and 64 MiB, or `default` when unset.
pub fn bytes(
    setting: &'static str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    count(setting, value, default, BYTE_LIMITS)
}
