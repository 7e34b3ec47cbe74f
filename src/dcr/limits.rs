//! Bounds on everything a caller sends, checked before any upstream call.
//!
//! Each limit is far above what a real client needs and far below what could hurt
//! the gateway or the server; a request past one gets INVALID_ARGUMENT naming the
//! field.

use secrecy::{ExposeSecret, SecretString};

use super::{ClientMetadata, DcrError, json};

/// Longest client identifier accepted, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 512;
/// Longest token (registration or initial access token) accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest metadata string (name, URI, scope, contact) accepted, in bytes.
pub const MAX_STRING_BYTES: usize = 8 * 1024;
/// Longest software statement accepted, in bytes (it is a whole signed JWT).
pub const MAX_SOFTWARE_STATEMENT_BYTES: usize = 64 * 1024;
/// Most entries accepted in one list (redirect URIs, grant types, contacts...).
pub const MAX_LIST_ITEMS: usize = 256;
/// Deepest nesting accepted in `jwks` and `additional_metadata`. A JWKS needs
/// three levels; sixteen leaves room and stays inside the protobuf decoder's
/// recursion limit (100 messages, three per `Struct` level), so this check,
/// which names the field, is the one a caller meets.
pub const MAX_STRUCT_DEPTH: usize = 16;
/// Most paths accepted in one update mask.
pub const MAX_MASK_PATHS: usize = 64;

/// Checks a client identifier: non-empty, bounded, no control characters, and
/// not `.` or `..`, which no URL can carry as one path segment.
pub fn check_client_id(id: &str) -> Result<(), DcrError> {
    let reason = if id.is_empty() {
        "must not be empty"
    } else if id.len() > MAX_CLIENT_ID_BYTES {
        "is longer than 512 bytes"
    } else if id.chars().any(char::is_control) {
        "must not contain control characters"
    } else if id == "." || id == ".." {
        "must not be `.` or `..`"
    } else {
        return Ok(());
    };
    Err(DcrError::invalid("client_id", reason))
}

/// Checks a bearer token: bounded and made of visible ASCII, so it fits an
/// `Authorization` header. The token itself never appears in the error.
pub fn check_token(field: &str, token: &SecretString) -> Result<(), DcrError> {
    let t = token.expose_secret();
    let reason = if t.is_empty() {
        "must not be empty (leave it unset instead)"
    } else if t.len() > MAX_TOKEN_BYTES {
        "is longer than 8192 bytes"
    } else if !t.bytes().all(|b| b.is_ascii_graphic()) {
        "must be visible ASCII without spaces"
    } else {
        return Ok(());
    };
    Err(DcrError::invalid(field, reason))
}

fn check_string(field: &str, value: &str, max: usize) -> Result<(), DcrError> {
    if value.len() > max {
        return Err(DcrError::invalid(
            field,
            format!("is longer than {max} bytes"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DcrError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_list(field: &str, items: &[String]) -> Result<(), DcrError> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(DcrError::invalid(
            field,
            format!("has more than {MAX_LIST_ITEMS} entries"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        check_string(&format!("{field}[{i}]"), item, MAX_STRING_BYTES)?;
    }
    Ok(())
}

/// Checks caller metadata: every string and list bounded, and no additional
/// member that shadows a typed field or a server-managed member. `prefix` is the
/// request path of the metadata, e.g. `metadata`.
pub fn check_metadata(prefix: &str, m: &ClientMetadata) -> Result<(), DcrError> {
    check_metadata_in(prefix, &format!("{prefix}.additional_metadata"), m)
}

/// [`check_metadata`], with additional members named under `additional`: a
/// protobuf request holds them in `metadata.additional_metadata`, a JSON or
/// TOML object beside the others (`metadata.tenant`).
pub fn check_metadata_in(
    prefix: &str,
    additional: &str,
    m: &ClientMetadata,
) -> Result<(), DcrError> {
    for (name, value) in m.strings() {
        let max = match name {
            "software_statement" => MAX_SOFTWARE_STATEMENT_BYTES,
            _ => MAX_STRING_BYTES,
        };
        if let Some(v) = value {
            check_string(&format!("{prefix}.{name}"), v, max)?;
        }
    }
    for (name, items) in m.lists() {
        check_list(&format!("{prefix}.{name}"), items)?;
    }
    for key in m.additional.keys() {
        let field = format!("{additional}.{key}");
        if json::TYPED_METADATA.contains(&key.as_str()) {
            return Err(DcrError::invalid(
                field,
                "has a typed field of its own; set that instead",
            ));
        }
        if json::SERVER_MANAGED.contains(&key.as_str()) {
            return Err(DcrError::invalid(
                field,
                "is managed by the server and cannot be set",
            ));
        }
        check_string(&field, key, MAX_STRING_BYTES)?;
    }
    Ok(())
}
