//! Turning what went wrong on the wire into a [`DcrError`] that is safe to show.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::dcr::{DcrError, UpstreamFailure};

/// Longest `error_description` passed on to a caller, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 512;
/// Longest `error` code passed on to a caller, in characters.
const MAX_CODE_CHARS: usize = 64;
/// Longest `Retry-After` honoured, in seconds; longer values are clamped.
const MAX_RETRY_AFTER_SECS: u64 = 86_400;

/// Builds the failure for a non-2xx answer. `secrets` are the tokens this
/// request carried; any copy of them in the server's text is redacted.
pub fn http_failure(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&SecretString],
) -> UpstreamFailure {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let obj = parsed.as_ref().and_then(Value::as_object);
    let text = |key: &str| obj.and_then(|o| o.get(key)).and_then(Value::as_str);
    let error = text("error")
        .filter(|c| !c.is_empty() && c.len() <= MAX_CODE_CHARS)
        .filter(|c| c.bytes().all(|b| b.is_ascii_graphic()))
        .map(|c| scrub(c, secrets));
    let description = text("error_description")
        .or_else(|| text("message"))
        .filter(|d| !d.is_empty())
        .map(|d| scrub(d, secrets));
    UpstreamFailure {
        status,
        error,
        description,
        retry_after,
        json_body: obj.is_some(),
    }
}

/// Parses `Retry-After` in either form (RFC 9110 section 10.2.3): delay-seconds,
/// or an HTTP-date, taken relative to `now` (a date in the past means "now").
/// Clamped to a day; `None` when malformed.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(Duration::from_secs(MAX_RETRY_AFTER_SECS)))
}

/// Makes server text safe to show: every token the request carried is replaced,
/// control characters become spaces, and the result is bounded.
pub fn scrub(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let s = secret.expose_secret();
        if !s.is_empty() && out.contains(s) {
            out = out.replace(s, "[redacted]");
        }
    }
    out.chars()
        .take(MAX_DESCRIPTION_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Classifies a transport error: could not connect (the request never left),
/// timed out, or failed after it may have been sent.
pub fn transport_error(err: &reqwest::Error, timeout: Duration) -> DcrError {
    let root = root_cause(err);
    if err.is_connect() {
        DcrError::Connect(root)
    } else if err.is_timeout() {
        DcrError::Timeout(timeout)
    } else {
        DcrError::Transport(root)
    }
}

/// The innermost cause's message; reqwest's own message names the URL, which is
/// left out to keep errors short (the client id is in the caller's request).
fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_redacts_sent_tokens_and_bounds_text() {
        let rat = SecretString::from("abc123secret");
        let out = scrub("bad token abc123secret\nline", &[&rat]);
        assert_eq!(out, "bad token [redacted] line");
        let long = "x".repeat(10_000);
        assert_eq!(scrub(&long, &[]).chars().count(), MAX_DESCRIPTION_CHARS);
    }

    #[test]
    fn sharkauth_429_message_and_retry_after_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "1".parse().unwrap());
        let body = br#"{"error":"rate_limited","message":"Too many requests"}"#;
        let f = http_failure(429, &headers, body, &[]);
        assert_eq!(f.error.as_deref(), Some("rate_limited"));
        assert_eq!(f.description.as_deref(), Some("Too many requests"));
        assert_eq!(f.retry_after, Some(Duration::from_secs(1)));
        assert!(f.json_body);
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn html_error_body_is_not_json() {
        let f = http_failure(502, &HeaderMap::new(), b"<html>bad gateway</html>", &[]);
        assert_eq!((f.error, f.description, f.json_body), (None, None, false));
    }
}
