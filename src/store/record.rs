//! How keys are laid out in the durable backends (values: `codec.rs`).
//!
//! A store key is `upstream US namespace US client_id` (US = the ASCII unit
//! separator, which none of the parts may contain); a managed client record's
//! is `upstream US namespace US name`, in a space of its own; a lease's is its
//! client's store key, or for a managed name `upstream US namespace US RS
//! name` (RS = the record separator, which no client id may hold, so a name's
//! lease is never a client's).

use super::{LeaseKey, ManagedKey, TokenKey};

/// Separates the parts of a store key.
const SEP: char = '\u{1f}';
/// Longest upstream base URL in a key.
const MAX_UPSTREAM_BYTES: usize = 2048;
/// Longest namespace in a key: a SPIFFE ID may be 2048 bytes.
const MAX_NAMESPACE_BYTES: usize = 2048;

/// A key part that would make the store key ambiguous or unbounded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct KeyPartError {
    /// `upstream`, `namespace` or `client_id`.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Checks the parts of a key that comes from outside the gateway (`tokens
/// import`): each non-empty, bounded, and free of control characters, so no
/// part can hold the separator and every store key reads back as the key it was
/// written for. The client id follows the gateway's own client id limits.
pub fn check_key(key: &TokenKey) -> Result<(), KeyPartError> {
    let part = |field, value: &str, max: usize| {
        let reason = if value.is_empty() {
            "must not be empty".to_owned()
        } else if value.len() > max {
            format!("is longer than {max} bytes")
        } else if value.chars().any(char::is_control) {
            "must not contain control characters".to_owned()
        } else {
            return Ok(());
        };
        Err(KeyPartError { field, reason })
    };
    part("upstream", &key.upstream, MAX_UPSTREAM_BYTES)?;
    part("namespace", &key.namespace, MAX_NAMESPACE_BYTES)?;
    crate::dcr::limits::check_client_id(&key.client_id).map_err(|e| match e {
        crate::dcr::DcrError::InvalidArgument { reason, .. } => KeyPartError {
            field: "client_id",
            reason,
        },
        other => KeyPartError {
            field: "client_id",
            reason: other.to_string(),
        },
    })
}

/// The bytes a key is stored under.
pub fn key_bytes(key: &TokenKey) -> String {
    join(&key.upstream, &key.namespace, &key.client_id)
}

/// Reads a stored key back; `None` for anything this store did not write.
pub fn parse_key(text: &str) -> Option<TokenKey> {
    let (upstream, namespace, client_id) = split(text)?;
    Some(TokenKey {
        upstream,
        namespace,
        client_id,
    })
}

/// The bytes a managed client record is stored under.
pub fn record_key_bytes(key: &ManagedKey) -> String {
    join(&key.upstream, &key.namespace, &key.name)
}

/// Reads a stored record key back.
pub fn parse_record_key(text: &str) -> Option<ManagedKey> {
    let (upstream, namespace, name) = split(text)?;
    Some(ManagedKey {
        upstream,
        namespace,
        name,
    })
}

/// Marks the client-id part of a managed name's lease key.
const NAME_LEASE_MARK: char = '\u{1e}';

/// The bytes a lease is stored under.
pub fn lease_key_bytes(key: &LeaseKey) -> String {
    match key {
        LeaseKey::Client(client) => key_bytes(client),
        LeaseKey::Name(name) => join(
            &name.upstream,
            &name.namespace,
            &format!("{NAME_LEASE_MARK}{}", name.name),
        ),
    }
}

/// The key whose group a lease shares (on Redis Cluster, its slot): a
/// client's lease is its token's, a managed name's lease is its record's.
pub fn lease_group(key: &LeaseKey) -> String {
    match key {
        LeaseKey::Client(client) => key_bytes(client),
        LeaseKey::Name(name) => record_key_bytes(name),
    }
}

/// The start of every record key of `namespace` on `upstream`: a record
/// key is this followed by the name.
pub fn record_prefix(upstream: &str, namespace: &str) -> String {
    join(upstream, namespace, "")
}

/// The key of the index entry that finds the records holding `client_id`
/// (the records of one client, see `Records::records_of_client`).
pub fn client_index_key(upstream: &str, namespace: &str, client_id: &str) -> String {
    join(upstream, namespace, client_id)
}

/// The start of every index entry of the client with `index_key` (see
/// [`client_index_key`]), for a store that keeps one entry per record: the
/// entry is this followed by the name.
pub fn client_index_entries(index_key: &str) -> String {
    format!("{index_key}{SEP}")
}

fn join(a: &str, b: &str, c: &str) -> String {
    format!("{a}{SEP}{b}{SEP}{c}")
}

fn split(text: &str) -> Option<(String, String, String)> {
    let mut parts = text.splitn(3, SEP);
    Some((
        parts.next()?.to_owned(),
        parts.next()?.to_owned(),
        parts.next()?.to_owned(),
    ))
}
