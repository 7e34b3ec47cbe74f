//! Request dispatch, as chi routes SharkAuth's paths (sharkauth-dcr.md §1, §1.4).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::faults::Route;
use super::state::{State, hash};
use super::{handlers, token, wire};
use subtle::ConstantTimeEq;

/// SharkAuth's body cap; a larger body reads as "invalid JSON body".
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The fault-injection route a request counts under, if it is a DCR call.
pub fn classify(method: &Method, path: &str) -> Option<Route> {
    match (method, path) {
        (&Method::POST, "/oauth/token") => return Some(Route::Token),
        (&Method::POST, "/oauth/introspect") => return Some(Route::Introspect),
        _ => {}
    }
    let rest = path.strip_prefix("/oauth/register")?;
    if rest.is_empty() {
        return (method == Method::POST).then_some(Route::Register);
    }
    let suffix = rest
        .strip_prefix('/')?
        .split_once('/')
        .map(|(_, suffix)| suffix);
    match (suffix, method) {
        (None, &Method::GET) => Some(Route::Get),
        (None, &Method::PUT) => Some(Route::Update),
        (None, &Method::DELETE) => Some(Route::Delete),
        (Some("secret"), &Method::POST) => Some(Route::RotateSecret),
        (Some("registration-token"), &Method::DELETE) => Some(Route::RotateToken),
        _ => None,
    }
}

/// Routes by path, then by method, and answers as SharkAuth would.
pub async fn handle(state: &State, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let headers = parts.headers;
    if path == "/.well-known/oauth-authorization-server" {
        return match method {
            Method::GET => discovery(state),
            _ => wire::method_not_allowed(&["GET"]),
        };
    }
    if path == "/oauth/token" {
        return match method {
            Method::POST => token::issue(state, &headers, read(body).await),
            _ => wire::method_not_allowed(&["POST"]),
        };
    }
    if path == "/oauth/introspect" {
        return match method {
            Method::POST => token::introspect(state, &headers, read(body).await),
            _ => wire::method_not_allowed(&["POST"]),
        };
    }
    if path == token::RESOURCE_PATH {
        return match method {
            Method::GET => token::resource(state, &headers),
            _ => wire::method_not_allowed(&["GET"]),
        };
    }
    let Some(rest) = path.strip_prefix("/oauth/register") else {
        return wire::not_found();
    };
    if rest.is_empty() {
        return match method {
            Method::POST => handlers::register(state, read(body).await),
            _ => wire::method_not_allowed(&["POST"]),
        };
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return wire::not_found();
    };
    let (raw_id, suffix) = match rest.split_once('/') {
        Some((id, suffix)) => (id, Some(suffix)),
        None => (rest, None),
    };
    let id = percent_decode_str(raw_id).decode_utf8_lossy().into_owned();
    match (suffix, &method) {
        // chi matches an empty parameter in the middle of a path, not at its end.
        (None, _) if id.is_empty() => wire::not_found(),
        (None, &Method::GET) => with_rat(state, &headers, &id, || handlers::get(state, &id)),
        (None, &Method::PUT) => {
            let body = read(body).await;
            with_rat(state, &headers, &id, || handlers::update(state, &id, body))
        }
        (None, &Method::DELETE) => with_rat(state, &headers, &id, || handlers::delete(state, &id)),
        (None, _) => wire::method_not_allowed(&["GET", "PUT", "DELETE"]),
        (Some("secret"), &Method::POST) => {
            with_rat(state, &headers, &id, || handlers::rotate_secret(state, &id))
        }
        (Some("secret"), _) => wire::method_not_allowed(&["POST"]),
        (Some("registration-token"), &Method::DELETE) => {
            with_rat(state, &headers, &id, || handlers::rotate_token(state, &id))
        }
        (Some("registration-token"), _) => wire::method_not_allowed(&["DELETE"]),
        _ => wire::not_found(),
    }
}

/// Reads a body up to SharkAuth's cap; `None` past it (or on a broken body).
async fn read(body: Body) -> Option<Bytes> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.ok()
}

/// SharkAuth's RAT check (§1.3), in its order, then `handler`.
fn with_rat(
    state: &State,
    headers: &HeaderMap,
    id: &str,
    handler: impl FnOnce() -> Response,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return wire::invalid_token("missing or malformed Authorization Bearer token");
    };
    let stored = state.tables().dcr.get(id).map(|row| row.rat_hash.clone());
    let Some(stored) = stored else {
        return wire::invalid_token("client not found");
    };
    if !bool::from(hash(token).as_bytes().ct_eq(stored.as_bytes())) {
        return wire::invalid_token("invalid registration access token");
    }
    handler()
}

/// RFC 8414 metadata, as SharkAuth serves it (§7).
fn discovery(state: &State) -> Response {
    let b = &state.issuer;
    let body = serde_json::json!({
        "issuer": b,
        "authorization_endpoint": format!("{b}/oauth/authorize"),
        "token_endpoint": format!("{b}/oauth/token"),
        "jwks_uri": format!("{b}/.well-known/jwks.json"),
        "registration_endpoint": format!("{b}/oauth/register"),
        "revocation_endpoint": format!("{b}/oauth/revoke"),
        "introspection_endpoint": format!("{b}/oauth/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
            "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
        "scopes_supported": ["openid", "profile", "email"],
        "dpop_signing_alg_values_supported": ["ES256", "RS256"],
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body.to_string(),
    )
        .into_response()
}
