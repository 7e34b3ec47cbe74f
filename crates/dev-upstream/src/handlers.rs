//! The six DCR handlers (R1-R6), each producing SharkAuth's exact answer.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::metadata::{AUTH_METHODS, Invalid, Meta, decode, normalise_scope, validate};
use super::state::{Agent, DcrRow, SECRET_GRACE, State, hash};
use super::wire::{self, ClientBody};

/// Decodes and validates a register or update body.
fn metadata(body: Option<Bytes>) -> Result<Meta, Invalid> {
    let body = body.ok_or_else(|| ("invalid_client_metadata", "invalid JSON body".to_owned()))?;
    let mut meta = decode(&body)?;
    validate(&mut meta)?;
    Ok(meta)
}

/// The 400 answer for a validation failure.
fn bad_request((code, text): Invalid) -> Response {
    wire::error(StatusCode::BAD_REQUEST, code, &text)
}

/// The body register and update answer with: agent values for the OAuth fields
/// (normalised scope), request values for the rest.
fn full_body(state: &State, id: &str, created_at: i64, m: Meta) -> ClientBody {
    ClientBody {
        client_id: id.to_owned(),
        client_id_issued_at: created_at,
        registration_client_uri: state.client_uri(id),
        client_name: m.client_name,
        redirect_uris: m.redirect_uris,
        grant_types: Some(m.grant_types),
        response_types: Some(m.response_types),
        token_endpoint_auth_method: m.token_endpoint_auth_method,
        scope: normalise_scope(&m.scope),
        client_uri: m.client_uri,
        logo_uri: m.logo_uri,
        tos_uri: m.tos_uri,
        policy_uri: m.policy_uri,
        contacts: m.contacts,
        ..ClientBody::default()
    }
}

/// R1: `POST /oauth/register`.
pub fn register(state: &State, body: Option<Bytes>) -> Response {
    let meta = match metadata(body) {
        Ok(m) => m,
        Err(invalid) => return bad_request(invalid),
    };
    let Some(id) = state.nanoid("shark_dcr_") else {
        return wire::server_error("failed to generate client ID");
    };
    let Some(secret) = state.token() else {
        return wire::server_error("failed to generate client secret");
    };
    let Some(rat) = state.token() else {
        return wire::server_error("failed to generate registration token");
    };
    if !AUTH_METHODS.contains(&meta.token_endpoint_auth_method.as_str()) {
        // SharkAuth leaves this to a database CHECK constraint, hence the 500.
        return wire::server_error("failed to store client registration");
    }
    let now = state.unix_now();
    let agent = Agent {
        secret_hash: hash(&secret),
        old_secret: None,
        active: true,
    };
    let row = DcrRow {
        rat_hash: hash(&rat),
        snapshot: meta.clone(),
        created_at: now,
    };
    {
        let mut t = state.tables();
        t.agents.insert(id.clone(), agent);
        t.dcr.insert(id.clone(), row);
    }
    let body = ClientBody {
        client_secret: secret,
        registration_access_token: rat,
        ..full_body(state, &id, now, meta)
    };
    wire::go_json(StatusCode::CREATED, &body)
}

/// R2: `GET /oauth/register/{id}`: the snapshot, raw scope, empty RAT.
pub fn get(state: &State, id: &str) -> Response {
    let Some(row) = state.tables().dcr.get(id).cloned() else {
        return wire::invalid_token("client not found");
    };
    let m = row.snapshot;
    let registration_access_token = state.rotate_if_configured(id);
    let body = ClientBody {
        scope: m.scope.clone(),
        registration_access_token,
        ..full_body(state, id, row.created_at, m)
    };
    wire::go_json(StatusCode::OK, &body)
}

/// R3: `PUT /oauth/register/{id}`: full replacement, defaults re-applied.
pub fn update(state: &State, id: &str, body: Option<Bytes>) -> Response {
    let meta = match metadata(body) {
        Ok(m) => m,
        Err(invalid) => return bad_request(invalid),
    };
    let mut t = state.tables();
    let Some(created_at) = t.dcr.get(id).map(|r| r.created_at) else {
        return wire::server_error("failed to retrieve client");
    };
    if !t.agents.contains_key(id) {
        return wire::server_error("failed to retrieve client");
    }
    if !AUTH_METHODS.contains(&meta.token_endpoint_auth_method.as_str()) {
        // The agent update fails on the database CHECK; nothing changes.
        return wire::server_error("failed to update client");
    }
    if let Some(row) = t.dcr.get_mut(id) {
        row.snapshot = meta.clone();
    }
    drop(t);
    let registration_access_token = state.rotate_if_configured(id);
    let body = ClientBody {
        registration_access_token,
        ..full_body(state, id, created_at, meta)
    };
    wire::go_json(StatusCode::OK, &body)
}

/// R4: `DELETE /oauth/register/{id}`: deactivate the agent, drop the DCR row.
pub fn delete(state: &State, id: &str) -> Response {
    let mut t = state.tables();
    match t.agents.get_mut(id) {
        Some(agent) => agent.active = false,
        None => return wire::server_error("failed to retrieve client"),
    }
    t.dcr.remove(id);
    StatusCode::NO_CONTENT.into_response()
}

/// The small body both rotations answer with: every other field zero.
fn rotation_body(state: &State, id: &str, created_at: i64) -> ClientBody {
    ClientBody {
        client_id: id.to_owned(),
        client_id_issued_at: created_at,
        registration_client_uri: state.client_uri(id),
        ..ClientBody::default()
    }
}

/// R5: `POST /oauth/register/{id}/secret`: new secret, the old one kept for an
/// hour (only one previous secret is kept).
pub fn rotate_secret(state: &State, id: &str) -> Response {
    let Some(secret) = state.token() else {
        return wire::server_error("failed to generate new secret");
    };
    let now = state.now();
    let mut t = state.tables();
    let Some(created_at) = t.dcr.get(id).map(|r| r.created_at) else {
        return wire::server_error("failed to retrieve client");
    };
    let Some(agent) = t.agents.get_mut(id) else {
        return wire::server_error("failed to retrieve client");
    };
    let previous = std::mem::replace(&mut agent.secret_hash, hash(&secret));
    agent.old_secret = Some((previous, now + SECRET_GRACE));
    drop(t);
    let body = ClientBody {
        client_secret: secret,
        ..rotation_body(state, id, created_at)
    };
    wire::go_json(StatusCode::OK, &body)
}

/// R6: `DELETE /oauth/register/{id}/registration-token`: new RAT, the old one
/// dead at once.
pub fn rotate_token(state: &State, id: &str) -> Response {
    let Some(rat) = state.token() else {
        return wire::server_error("failed to generate registration token");
    };
    let mut t = state.tables();
    let Some(row) = t.dcr.get_mut(id) else {
        return wire::server_error("failed to rotate registration token");
    };
    row.rat_hash = hash(&rat);
    let created_at = row.created_at;
    drop(t);
    let body = ClientBody {
        registration_access_token: rat,
        ..rotation_body(state, id, created_at)
    };
    wire::go_json(StatusCode::OK, &body)
}
