//! A minimal `POST /oauth/token` (client_credentials only), so a demo or a test
//! can prove which client secrets work, including the one in its grace window.
//! It issues opaque tokens that nothing else checks.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;

use super::state::{State, hash};
use super::wire;
use subtle::ConstantTimeEq;

/// Client credentials from `Authorization: Basic` or, failing that, the form.
fn credentials(headers: &HeaderMap, form: &[(String, String)]) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    basic.or_else(|| {
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Some((field("client_id")?, field("client_secret")?))
    })
}

/// Answers a client_credentials token request.
pub fn issue(state: &State, headers: &HeaderMap, body: Option<Bytes>) -> Response {
    let body = body.unwrap_or_default();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let grant = form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str());
    if grant != Some("client_credentials") {
        return wire::error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is supported here",
        );
    }
    let unauthorized = || {
        wire::error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    };
    let Some((id, secret)) = credentials(headers, &form) else {
        return unauthorized();
    };
    let presented = hash(&secret);
    let now = state.now();
    let ok = state.tables().agents.get(&id).is_some_and(|agent| {
        let current = bool::from(presented.as_bytes().ct_eq(agent.secret_hash.as_bytes()));
        let rotated = agent.old_secret.as_ref().is_some_and(|(old, until)| {
            now < *until && bool::from(presented.as_bytes().ct_eq(old.as_bytes()))
        });
        agent.active && (current || rotated)
    });
    if !ok {
        return unauthorized();
    }
    let Some(access_token) = state.token() else {
        return wire::server_error("failed to generate token");
    };
    let body = serde_json::json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600});
    wire::go_json(StatusCode::OK, &body)
}
