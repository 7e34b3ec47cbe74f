//! SharkAuth's request metadata: its lenient decoding, its defaults and its
//! validation, with the exact error texts (sharkauth-dcr.md §1.3, §2).

use serde_json::Value;

/// The 11 metadata members SharkAuth decodes; everything else is dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub scope: String,
    pub client_uri: String,
    pub logo_uri: String,
    pub tos_uri: String,
    pub policy_uri: String,
    pub contacts: Vec<String>,
}

/// A 400 answer: the RFC error code and SharkAuth's exact description.
pub type Invalid = (&'static str, String);

/// Grant types SharkAuth's DCR accepts.
const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
];

/// Auth methods the database CHECK constraint allows; others fail with a 500.
pub const AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

fn invalid_json() -> Invalid {
    ("invalid_client_metadata", "invalid JSON body".into())
}

/// Decodes a body the way Go's `json.Decoder.Decode` into SharkAuth's struct
/// does: the first JSON value only (trailing bytes ignored), keys matched without
/// regard to case, `null` meaning absent, unknown keys dropped.
pub fn decode(body: &[u8]) -> Result<Meta, Invalid> {
    let first = serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next();
    let obj = match first {
        Some(Ok(Value::Object(obj))) => obj,
        Some(Ok(Value::Null)) => return Ok(Meta::default()),
        _ => return Err(invalid_json()),
    };
    let mut m = Meta::default();
    for (key, value) in obj {
        if value.is_null() {
            continue;
        }
        let string = |v: Value| match v {
            Value::String(s) => Ok(s),
            _ => Err(invalid_json()),
        };
        let list = |v: Value| match v {
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    Value::Null => Ok(String::new()),
                    _ => Err(invalid_json()),
                })
                .collect(),
            _ => Err(invalid_json()),
        };
        match key.to_lowercase().as_str() {
            "client_name" => m.client_name = string(value)?,
            "redirect_uris" => m.redirect_uris = list(value)?,
            "grant_types" => m.grant_types = list(value)?,
            "response_types" => m.response_types = list(value)?,
            "token_endpoint_auth_method" => m.token_endpoint_auth_method = string(value)?,
            "scope" => m.scope = string(value)?,
            "client_uri" => m.client_uri = string(value)?,
            "logo_uri" => m.logo_uri = string(value)?,
            "tos_uri" => m.tos_uri = string(value)?,
            "policy_uri" => m.policy_uri = string(value)?,
            "contacts" => m.contacts = list(value)?,
            _ => {}
        }
    }
    Ok(m)
}

/// Applies SharkAuth's defaults and validation, in its order; the first failure
/// wins.
pub fn validate(m: &mut Meta) -> Result<(), Invalid> {
    if m.client_name.trim().is_empty() {
        return Err(("invalid_client_metadata", "client_name is required".into()));
    }
    if m.grant_types.is_empty() {
        m.grant_types = vec!["authorization_code".into()];
    }
    if m.response_types.is_empty() {
        m.response_types = vec!["code".into()];
    }
    if m.token_endpoint_auth_method.is_empty() {
        m.token_endpoint_auth_method = "client_secret_basic".into();
    }
    if let Some(bad) = m
        .grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err((
            "invalid_client_metadata",
            format!("unsupported grant_type {}", go_quote(bad)),
        ));
    }
    if m.grant_types.iter().any(|g| g == "authorization_code") && m.redirect_uris.is_empty() {
        return Err((
            "invalid_redirect_uri",
            "redirect_uris is required for authorization_code grant".into(),
        ));
    }
    for uri in &m.redirect_uris {
        check_redirect_uri(uri).map_err(|d| ("invalid_redirect_uri", d))?;
    }
    Ok(())
}

/// The scope split on whitespace and re-joined with single spaces.
pub fn normalise_scope(scope: &str) -> String {
    scope.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SharkAuth's redirect URI rule: https anywhere, http only on an exact loopback
/// host name, nothing else.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let Some((scheme, rest)) = split_scheme(uri) else {
        return Err(format!("{} is not an absolute URI", go_quote(uri)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if matches!(hostname(rest), "localhost" | "127.0.0.1" | "::1") => Ok(()),
        "http" => Err(format!(
            "{}: http is only allowed for localhost",
            go_quote(uri)
        )),
        other => Err(format!(
            "{}: scheme {} is not allowed (use https or http://localhost)",
            go_quote(uri),
            go_quote(other)
        )),
    }
}

/// Go's `url.Parse` scheme rule; `None` for a relative or unparsable reference.
fn split_scheme(uri: &str) -> Option<(&str, &str)> {
    if uri.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    for (i, c) in uri.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i > 0 => return Some((&uri[..i], &uri[i + 1..])),
            _ => return None,
        }
    }
    None
}

/// The host of `//authority/...`, without user info, port or IPv6 brackets.
fn hostname(rest: &str) -> &str {
    let Some(after) = rest.strip_prefix("//") else {
        return "";
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Go's `%q`: a double-quoted string with `"`, `\` and control characters escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharkauth_redirect_table() {
        for ok in [
            "https://example.com/callback",
            "https://app.example.org/cb?foo=bar",
            "http://localhost/callback",
            "http://localhost:8080/callback",
            "http://127.0.0.1:9000/callback",
            "http://[::1]:8080/cb",
            "HTTPS://x/cb",
            "https:foo",
            "https://",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_redirect_uri("not-a-url").unwrap_err(),
            r#""not-a-url" is not an absolute URI"#
        );
        assert_eq!(
            check_redirect_uri("").unwrap_err(),
            r#""" is not an absolute URI"#
        );
        assert_eq!(
            check_redirect_uri("http://evil.com/steal").unwrap_err(),
            r#""http://evil.com/steal": http is only allowed for localhost"#
        );
        assert!(check_redirect_uri("http://LOCALHOST/").is_err());
        assert_eq!(
            check_redirect_uri("ftp://x/cb").unwrap_err(),
            r#""ftp://x/cb": scheme "ftp" is not allowed (use https or http://localhost)"#
        );
    }

    #[test]
    fn decoding_is_lenient_like_go() {
        let m = decode(br#"{"CLIENT_NAME":"a","unknown":1,"scope":null} trailing"#).unwrap();
        assert_eq!((m.client_name.as_str(), m.scope.as_str()), ("a", ""));
        assert_eq!(decode(b"null").unwrap(), Meta::default());
        assert_eq!(
            decode(br#"{"client_name":5}"#).unwrap_err().1,
            "invalid JSON body"
        );
        assert_eq!(decode(b"[]").unwrap_err().1, "invalid JSON body");
        assert_eq!(decode(b"").unwrap_err().1, "invalid JSON body");
    }

    #[test]
    fn validation_order_and_defaults() {
        let mut m = Meta {
            client_name: "  ".into(),
            ..Default::default()
        };
        assert_eq!(validate(&mut m).unwrap_err().1, "client_name is required");
        let mut m = Meta {
            client_name: "x".into(),
            grant_types: vec!["magic_unicorn".into()],
            ..Default::default()
        };
        assert_eq!(
            validate(&mut m).unwrap_err().1,
            r#"unsupported grant_type "magic_unicorn""#
        );
        let mut m = Meta {
            client_name: "x".into(),
            ..Default::default()
        };
        assert_eq!(validate(&mut m).unwrap_err().0, "invalid_redirect_uri");
        assert_eq!(m.grant_types, vec!["authorization_code".to_string()]);
        assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
    }
}
