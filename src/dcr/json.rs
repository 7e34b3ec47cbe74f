//! The RFC 7591 JSON form of client metadata and clients, in both directions.
//!
//! Typed members are checked for type; every other member is kept in
//! `additional`, so the mapping loses nothing. Following RFC 7592 practice and
//! SharkAuth's quirks, `null` and the empty string mean "absent" for optional
//! strings, and an empty token or secret means "not issued".

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::{Client, ClientMetadata};

/// Members the server manages; a caller may not set them as metadata.
pub const SERVER_MANAGED: [&str; 6] = [
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
];

/// Metadata members with a typed field in [`ClientMetadata`].
pub const TYPED_METADATA: [&str; 16] = [
    "client_name",
    "redirect_uris",
    "grant_types",
    "response_types",
    "scope",
    "token_endpoint_auth_method",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "jwks_uri",
    "jwks",
    "software_id",
    "software_version",
    "software_statement",
];

/// The latest timestamp accepted from a server: 9999-12-31T23:59:59Z, the end of
/// the range protobuf's `Timestamp` can hold.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// A JSON member of the wrong type or out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("member `{field}` {reason}")]
pub struct JsonFieldError {
    /// The JSON member name.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn bad(field: &'static str, reason: &'static str) -> JsonFieldError {
    JsonFieldError { field, reason }
}

fn take_string(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, JsonFieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn take_list(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Vec<String>, JsonFieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad(field, "must be an array of strings")),
            })
            .collect(),
        Some(_) => Err(bad(field, "must be an array of strings")),
    }
}

fn take_secret(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<SecretString>, JsonFieldError> {
    Ok(take_string(obj, field)?.map(SecretString::from))
}

fn take_timestamp(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<i64>, JsonFieldError> {
    let secs = match obj.remove(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| bad(field, "must be a whole number of seconds"))?,
        Some(_) => return Err(bad(field, "must be a number")),
    };
    match secs {
        0 => Ok(None),
        1..=MAX_TIMESTAMP => Ok(Some(secs)),
        _ => Err(bad(field, "is outside 1970..=9999")),
    }
}

/// Reads client metadata from a JSON object; unknown members go to `additional`.
pub fn metadata_from_json(mut obj: Map<String, Value>) -> Result<ClientMetadata, JsonFieldError> {
    let jwks = match obj.remove("jwks") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o),
        Some(_) => return Err(bad("jwks", "must be a JSON object")),
    };
    Ok(ClientMetadata {
        client_name: take_string(&mut obj, "client_name")?,
        redirect_uris: take_list(&mut obj, "redirect_uris")?,
        grant_types: take_list(&mut obj, "grant_types")?,
        response_types: take_list(&mut obj, "response_types")?,
        scope: take_string(&mut obj, "scope")?,
        token_endpoint_auth_method: take_string(&mut obj, "token_endpoint_auth_method")?,
        client_uri: take_string(&mut obj, "client_uri")?,
        logo_uri: take_string(&mut obj, "logo_uri")?,
        tos_uri: take_string(&mut obj, "tos_uri")?,
        policy_uri: take_string(&mut obj, "policy_uri")?,
        contacts: take_list(&mut obj, "contacts")?,
        jwks_uri: take_string(&mut obj, "jwks_uri")?,
        jwks,
        software_id: take_string(&mut obj, "software_id")?,
        software_version: take_string(&mut obj, "software_version")?,
        software_statement: take_string(&mut obj, "software_statement")?,
        additional: obj,
    })
}

/// Writes client metadata as a JSON object: typed members that are set, then
/// every additional member.
pub fn metadata_to_json(m: &ClientMetadata) -> Map<String, Value> {
    let mut obj = Map::new();
    let strings = m.strings();
    for (name, value) in strings {
        if let Some(v) = value {
            obj.insert(name.into(), Value::String(v.clone()));
        }
    }
    let lists = m.lists();
    for (name, value) in lists {
        if !value.is_empty() {
            obj.insert(
                name.into(),
                value.iter().cloned().map(Value::String).collect(),
            );
        }
    }
    if let Some(jwks) = &m.jwks {
        obj.insert("jwks".into(), Value::Object(jwks.clone()));
    }
    for (k, v) in &m.additional {
        obj.insert(k.clone(), v.clone());
    }
    obj
}

/// Reads a registered client from a server's JSON response.
pub fn client_from_json(mut obj: Map<String, Value>) -> Result<Client, JsonFieldError> {
    let client_id =
        take_string(&mut obj, "client_id")?.ok_or_else(|| bad("client_id", "is missing"))?;
    Ok(Client {
        client_id,
        client_secret: take_secret(&mut obj, "client_secret")?,
        client_id_issued_at: take_timestamp(&mut obj, "client_id_issued_at")?,
        client_secret_expires_at: take_timestamp(&mut obj, "client_secret_expires_at")?,
        registration_access_token: take_secret(&mut obj, "registration_access_token")?,
        registration_client_uri: take_string(&mut obj, "registration_client_uri")?
            .unwrap_or_default(),
        metadata: metadata_from_json(obj)?,
    })
}

/// Writes a client as RFC 7591 JSON, secrets included: only for output the user
/// asked for explicitly, such as `dcr-gateway call`.
pub fn client_to_json_exposing_secrets(c: &Client) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("client_id".into(), c.client_id.clone().into());
    if let Some(s) = &c.client_secret {
        obj.insert("client_secret".into(), s.expose_secret().into());
    }
    obj.insert(
        "client_id_issued_at".into(),
        c.client_id_issued_at.unwrap_or(0).into(),
    );
    obj.insert(
        "client_secret_expires_at".into(),
        c.client_secret_expires_at.unwrap_or(0).into(),
    );
    if let Some(t) = &c.registration_access_token {
        obj.insert("registration_access_token".into(), t.expose_secret().into());
    }
    obj.insert(
        "registration_client_uri".into(),
        c.registration_client_uri.clone().into(),
    );
    obj.extend(metadata_to_json(&c.metadata));
    obj
}

#[cfg(test)]
mod tests;
