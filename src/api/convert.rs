//! Protobuf ⇄ domain conversions, with every caller field validated on the way in.

use prost_types::Timestamp;
use secrecy::{ExposeSecret, SecretString};

use super::protobuf_struct::{json_to_struct, struct_to_json};
use crate::dcr::{Client, ClientMetadata, ClientRef, DcrError, limits};
use crate::pb::v1 as pb;

/// An unset or empty optional string is "absent", as in the JSON mapping.
fn present(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Converts and validates caller metadata; `prefix` is its path in the request.
pub fn metadata_from_proto(
    m: pb::ClientMetadata,
    prefix: &str,
) -> Result<ClientMetadata, DcrError> {
    let metadata = convert_metadata(m, prefix)?;
    limits::check_metadata(prefix, &metadata)?;
    Ok(metadata)
}

/// Converts metadata without the caller bounds (a server's answer may exceed them).
fn convert_metadata(m: pb::ClientMetadata, prefix: &str) -> Result<ClientMetadata, DcrError> {
    let jwks = m
        .jwks
        .map(|s| struct_to_json(s, &format!("{prefix}.jwks")))
        .transpose()?;
    let additional = m
        .additional_metadata
        .map(|s| struct_to_json(s, &format!("{prefix}.additional_metadata")))
        .transpose()?
        .unwrap_or_default();
    Ok(ClientMetadata {
        client_name: present(m.client_name),
        redirect_uris: m.redirect_uris,
        grant_types: m.grant_types,
        response_types: m.response_types,
        scope: present(m.scope),
        token_endpoint_auth_method: present(m.token_endpoint_auth_method),
        client_uri: present(m.client_uri),
        logo_uri: present(m.logo_uri),
        tos_uri: present(m.tos_uri),
        policy_uri: present(m.policy_uri),
        contacts: m.contacts,
        jwks_uri: present(m.jwks_uri),
        jwks,
        software_id: present(m.software_id),
        software_version: present(m.software_version),
        software_statement: present(m.software_statement),
        additional,
    })
}

/// Converts domain metadata to its protobuf form.
pub fn metadata_to_proto(m: ClientMetadata) -> pb::ClientMetadata {
    pb::ClientMetadata {
        client_name: m.client_name,
        redirect_uris: m.redirect_uris,
        grant_types: m.grant_types,
        response_types: m.response_types,
        scope: m.scope,
        token_endpoint_auth_method: m.token_endpoint_auth_method,
        client_uri: m.client_uri,
        logo_uri: m.logo_uri,
        tos_uri: m.tos_uri,
        policy_uri: m.policy_uri,
        contacts: m.contacts,
        jwks_uri: m.jwks_uri,
        jwks: m.jwks.map(json_to_struct),
        software_id: m.software_id,
        software_version: m.software_version,
        software_statement: m.software_statement,
        additional_metadata: (!m.additional.is_empty()).then(|| json_to_struct(m.additional)),
    }
}

fn timestamp(secs: Option<i64>) -> Option<Timestamp> {
    secs.map(|seconds| Timestamp { seconds, nanos: 0 })
}

/// Converts a domain client to its protobuf form. This is where secrets leave
/// their `SecretString`s: the reply is the one place a caller receives them.
pub fn client_to_proto(c: Client) -> pb::Client {
    pb::Client {
        client_id: c.client_id,
        client_secret: c.client_secret.map(|s| s.expose_secret().to_owned()),
        client_id_issued_at: timestamp(c.client_id_issued_at),
        client_secret_expires_at: timestamp(c.client_secret_expires_at),
        registration_access_token: c
            .registration_access_token
            .map(|s| s.expose_secret().to_owned()),
        registration_client_uri: c.registration_client_uri,
        metadata: Some(metadata_to_proto(c.metadata)),
    }
}

/// Converts a protobuf client back to the domain form (used by `dcr-gateway
/// call` to print replies). Metadata is taken as the server sent it.
pub fn client_from_proto(c: pb::Client) -> Result<Client, DcrError> {
    Ok(Client {
        client_id: c.client_id,
        client_secret: present(c.client_secret).map(SecretString::from),
        client_id_issued_at: c.client_id_issued_at.map(|t| t.seconds),
        client_secret_expires_at: c.client_secret_expires_at.map(|t| t.seconds),
        registration_access_token: present(c.registration_access_token).map(SecretString::from),
        registration_client_uri: c.registration_client_uri,
        metadata: convert_metadata(c.metadata.unwrap_or_default(), "client.metadata")?,
    })
}

/// Validates the client id and optional token of a management request.
pub fn target(client_id: String, token: Option<String>) -> Result<ClientRef, DcrError> {
    limits::check_client_id(&client_id)?;
    let registration_access_token = token.map(SecretString::from);
    if let Some(t) = &registration_access_token {
        limits::check_token("registration_access_token", t)?;
    }
    Ok(ClientRef {
        client_id,
        registration_access_token,
        registration_client_uri: None,
    })
}

/// Validates an optional initial access token.
pub fn initial_access_token(token: Option<String>) -> Result<Option<SecretString>, DcrError> {
    let token = token.map(SecretString::from);
    if let Some(t) = &token {
        limits::check_token("initial_access_token", t)?;
    }
    Ok(token)
}
