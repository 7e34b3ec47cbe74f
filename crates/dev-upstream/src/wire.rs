//! SharkAuth's response encoding: fixed key order, its omitempty rules, Go's
//! HTML-safe escaping and trailing newline (sharkauth-dcr.md §1.1-§1.3).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A DCR client response body, keys in SharkAuth's order.
#[derive(Debug, Default, Serialize)]
pub struct ClientBody {
    pub client_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_secret: String,
    pub client_id_issued_at: i64,
    pub client_secret_expires_at: i64,
    pub registration_access_token: String,
    pub registration_client_uri: String,
    pub client_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_uri: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub logo_uri: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tos_uri: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy_uri: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// Encodes like Go's `json.NewEncoder(w).Encode(v)`: `<`, `>`, `&`, U+2028 and
/// U+2029 escaped inside strings (they cannot occur outside them), then a newline.
pub fn go_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    let mut resp = (status, out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `{"error": code, "error_description": text}` with `status`.
pub fn error(status: StatusCode, code: &str, description: &str) -> Response {
    go_json(
        status,
        &ErrorBody {
            error: code,
            error_description: description,
        },
    )
}

/// 500 `server_error` with SharkAuth's description.
pub fn server_error(description: &str) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        description,
    )
}

/// 401 `invalid_token` with one of the three RAT-check descriptions.
pub fn invalid_token(description: &str) -> Response {
    error(StatusCode::UNAUTHORIZED, "invalid_token", description)
}

/// Go's plain-text 404.
pub fn not_found() -> Response {
    let mut resp = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// chi's 405: empty body, one `Allow` header per method.
pub fn method_not_allowed(allowed: &[&'static str]) -> Response {
    let mut resp = StatusCode::METHOD_NOT_ALLOWED.into_response();
    for m in allowed {
        resp.headers_mut()
            .append(header::ALLOW, HeaderValue::from_static(m));
    }
    resp
}
