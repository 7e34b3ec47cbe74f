//! Turning what went wrong on the wire into a [`DcrError`] that is safe to show.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::http::HttpError;
use crate::dcr::{Cause, DcrError, UpstreamFailure};

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
    let bearer_error = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(bearer_error_code)
        .filter(|c| c.len() <= MAX_CODE_CHARS && c.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    UpstreamFailure {
        status,
        error,
        description,
        retry_after,
        json_body: obj.is_some(),
        bearer_error,
        token_rejected: false,
        client_gone: false,
        client_rejected: false,
    }
}

/// The `error` parameter of a Bearer challenge (RFC 6750 section 3), e.g.
/// `invalid_token` from `Bearer realm="x", error="invalid_token"`. Other
/// schemes, and parameters such as `error_description`, are not it.
fn bearer_error_code(challenge: &str) -> Option<&str> {
    let (scheme, params) = challenge.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    params.split(',').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("error")
            .then(|| value.trim().trim_matches('"'))
    })
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

/// Shortest run of a secret's characters that is redacted wherever it stands
/// in server text: a server that echoes half a token, or a token cut at a
/// line break, still leaks nothing usable.
const MIN_SECRET_RUN: usize = 8;

/// Makes server text safe to show: bounded to [`MAX_DESCRIPTION_CHARS`], every
/// run of 8 or more characters of a token the request carried (a whole
/// shorter token too) replaced by `[redacted]`, control characters turned
/// into spaces.
pub fn scrub(text: &str, secrets: &[&SecretString]) -> String {
    let end = text
        .char_indices()
        .nth(MAX_DESCRIPTION_CHARS)
        .map_or(text.len(), |(i, _)| i);
    let text = &text[..end];
    let bytes = text.as_bytes();
    let mut hidden = vec![false; bytes.len()];
    for secret in secrets {
        let s = secret.expose_secret().as_bytes();
        let run = s.len().min(MIN_SECRET_RUN);
        if run == 0 || run > bytes.len() {
            continue;
        }
        // Every `run`-byte window of the secret, looked up for every window
        // of the text: linear in both, however long the token.
        let windows: std::collections::HashSet<&[u8]> = s.windows(run).collect();
        for (i, w) in bytes.windows(run).enumerate() {
            if windows.contains(w) {
                hidden[i..i + run].fill(true);
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut in_secret = false;
    for (i, c) in text.char_indices() {
        match (hidden[i], in_secret) {
            (true, false) => out.push_str("[redacted]"),
            (true, true) => {}
            (false, _) => out.push(if c.is_control() { ' ' } else { c }),
        }
        in_secret = hidden[i];
    }
    out
}

/// Classifies a failed exchange: could not connect (the request never
/// left), timed out, a body over the cap, or failed after it may have been
/// sent. `timeout` is the request timeout, which a timeout names.
pub fn transport_error(err: HttpError, timeout: Duration) -> DcrError {
    match err {
        HttpError::Timeout => DcrError::Timeout(timeout),
        HttpError::TooLarge(max) => {
            DcrError::MalformedResponse(format!("the body is larger than {max} bytes"))
        }
        HttpError::Connect(_) => DcrError::Connect(Cause::of(root_cause(&err), err)),
        HttpError::NotHttps | HttpError::Exchange(_) | HttpError::Body(_) => {
            DcrError::Transport(Cause::of(root_cause(&err), err))
        }
    }
}

/// The innermost cause's message (the one that says what happened: refused,
/// reset, a certificate not trusted). The whole error stays the cause's
/// source.
fn root_cause(err: &HttpError) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_failure_keeps_the_client_s_error_as_its_cause() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
        let http = super::super::http::tests::client(&base, false);
        let err = http
            .send(super::super::http::tests::get(&base))
            .await
            .err()
            .expect("nothing listens");
        let err = transport_error(err, Duration::from_secs(1));
        assert!(matches!(err, DcrError::Connect(_)), "{err}");
        let cause = std::error::Error::source(&err).expect("a cause");
        let library = cause.source().expect("the client's error");
        assert!(library.downcast_ref::<HttpError>().is_some());
        assert!(!err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn scrub_redacts_every_long_run_of_a_token() {
        let rat = SecretString::from("ABCDEFGHIJKLMNOP");
        let out = scrub(
            "half: IJKLMNOP, split: ABCD\nEFGHIJKL, short: ABCDEFG",
            &[&rat],
        );
        assert_eq!(
            out,
            "half: [redacted], split: ABCD [redacted], short: ABCDEFG"
        );
        let short = SecretString::from("abc");
        assert_eq!(scrub("xabcx", &[&short]), "x[redacted]x");
    }

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
