//! A minimal `POST /oauth/token` (client_credentials only), so a demo or a test
//! can prove which client secrets work, including the one in its grace window;
//! the opaque tokens it issues are remembered, for RFC 7662 introspection and
//! for a Bearer-protected resource that says whom a token is for.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;

use super::state::{Issued, State, hash};
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

/// A Bearer-protected resource that answers who a token is for: what a
/// service presenting the token would reach. Dev upstream only.
pub const RESOURCE_PATH: &str = "/_dev/resource";

/// The client `headers` (or the form) authenticates as, by its current
/// secret or a rotated one still in its grace window; `None` otherwise.
fn authenticated(state: &State, headers: &HeaderMap, form: &[(String, String)]) -> Option<String> {
    let (id, secret) = credentials(headers, form)?;
    let presented = hash(&secret);
    let now = state.now();
    let ok = state.tables().agents.get(&id).is_some_and(|agent| {
        let current = bool::from(presented.as_bytes().ct_eq(agent.secret_hash.as_bytes()));
        let rotated = agent.old_secret.as_ref().is_some_and(|(old, until)| {
            now < *until && bool::from(presented.as_bytes().ct_eq(old.as_bytes()))
        });
        agent.active && (current || rotated)
    });
    ok.then_some(id)
}

/// The values of every `name` field of a form.
fn all(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Answers a client_credentials token request, as fosite does: the client
/// must have the grant, every requested scope must be among the client's,
/// and no scope asked means none granted.
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
    let Some(id) = authenticated(state, headers, &form) else {
        return wire::error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    let registered = match state.tables().dcr.get(&id) {
        Some(row) => row.snapshot.clone(),
        None => Default::default(),
    };
    if !registered
        .grant_types
        .iter()
        .any(|g| g == "client_credentials")
    {
        return wire::error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the client is not allowed the client_credentials grant",
        );
    }
    let requested: Vec<String> = all(&form, "scope")
        .iter()
        .flat_map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned))
        .collect();
    let allowed: Vec<&str> = registered.scope.split(' ').collect();
    if let Some(bad) = requested.iter().find(|s| !allowed.contains(&s.as_str())) {
        return wire::error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("the client is not allowed the scope {bad:?}"),
        );
    }
    let Some(access_token) = state.token() else {
        return wire::server_error("failed to generate token");
    };
    let lifetime = *state
        .token_lifetime
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let scope = requested.join(" ");
    state.tables().issued.insert(
        hash(&access_token),
        Issued {
            client_id: id,
            scope: scope.clone(),
            resources: all(&form, "resource"),
            expires_at: state.now() + lifetime,
        },
    );
    let mut body = serde_json::json!({"access_token": access_token, "token_type": "bearer",
        "expires_in": lifetime.as_secs()});
    if !scope.is_empty() {
        body["scope"] = scope.into();
    }
    wire::go_json(StatusCode::OK, &body)
}

/// What a token is, by RFC 7662: active with its client, scope, audience
/// and expiry, or `{"active": false}`.
fn describe(state: &State, token: &str) -> serde_json::Value {
    let now = state.now();
    match state.tables().issued.get(&hash(token)) {
        Some(t) if t.expires_at > now => {
            let exp = t
                .expires_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            serde_json::json!({"active": true, "client_id": t.client_id, "scope": t.scope,
                "aud": t.resources, "exp": exp, "token_type": "bearer"})
        }
        _ => serde_json::json!({"active": false}),
    }
}

/// RFC 7662 introspection. Client authentication is optional here (a dev
/// server); when given, it must be right.
pub fn introspect(state: &State, headers: &HeaderMap, body: Option<Bytes>) -> Response {
    let body = body.unwrap_or_default();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if credentials(headers, &form).is_some() && authenticated(state, headers, &form).is_none() {
        return wire::error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let Some(token) = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v) else {
        return wire::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    wire::go_json(StatusCode::OK, &describe(state, token))
}

/// `GET /_dev/resource` with `Authorization: Bearer`: 200 and what the
/// token is, or 401 `invalid_token`.
pub fn resource(state: &State, headers: &HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let about = describe(state, token);
    match about["active"].as_bool() {
        Some(true) => wire::go_json(StatusCode::OK, &about),
        _ => wire::invalid_token("the access token is not active"),
    }
}
