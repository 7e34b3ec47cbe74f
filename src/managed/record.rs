//! What the gateway keeps per managed client, and how it is written in the
//! token store (the store seals it at rest; it holds the client secret, which
//! SharkAuth shows only when it issues one).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dcr::json::{client_from_json, client_to_json_exposing_secrets};
use crate::dcr::{Client, StoreError};
use crate::keys::ClientKey;

/// How many replaced clients a record remembers.
pub const MAX_REPLACED: usize = 8;

/// What an ensure did, kept as the record's last outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Registered.
    Created,
    /// Found as asked; nothing written upstream.
    Unchanged,
    /// Its metadata were changed.
    Updated,
    /// Registered anew after the server proved it lost the previous one.
    Recreated,
}

impl Outcome {
    /// Its metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Unchanged => "unchanged",
            Self::Updated => "updated",
            Self::Recreated => "recreated",
        }
    }
}

/// A client the server lost, replaced by a new registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    /// The lost client's id.
    pub client_id: String,
    /// When it was replaced, in Unix seconds.
    pub at: u64,
}

/// One managed client as stored.
#[derive(Clone, Debug)]
pub struct ManagedRecord {
    /// The client as the server last described it, with the current secret;
    /// never a registration access token (that stays in the token store).
    pub client: Client,
    /// The metadata last applied, as RFC 7591 JSON: an ensure with the same
    /// is `UNCHANGED`.
    pub desired: Map<String, Value>,
    /// When the first client of this name was registered, in Unix seconds.
    pub created_at: u64,
    /// When the current secret was issued.
    pub secret_issued_at: u64,
    /// When an ensure last succeeded.
    pub ensured_at: u64,
    /// What the last ensure did.
    pub outcome: Outcome,
    /// Why the last attempt failed, if it did (a reason code and message,
    /// never a secret).
    pub last_error: Option<String>,
    /// Clients of this name the server lost, newest last.
    pub replaced: Vec<Replaced>,
    /// Whether a declared client (`[[clients]]`) owns the name, so a
    /// configuration that no longer declares it retires it.
    pub declared: bool,
    /// When a replica whose configuration no longer declares the name first
    /// saw so: its file is removed at once, its client deleted at the server
    /// a grace period later (replicas of the older configuration may still
    /// use it during a rollout).
    pub retired_at: Option<u64>,
    /// The server's metadata right after the gateway last applied `desired`,
    /// normalised (`drift::observed`): a later read that differs from it is a
    /// change made at the server behind the gateway's back.
    pub applied: Option<Map<String, Value>>,
    /// When the gateway itself deleted the client at the server (a caller's
    /// DeleteClient through it): proof enough that it is gone.
    pub deleted_at: Option<u64>,
    /// The client's keys, for `private_key_jwt`, newest last: the newest
    /// signs, all are published (an older one until no assertion it signed
    /// can still be in flight).
    pub keys: Vec<ClientKey>,
}

/// The stored form; `v` is the format version. Members added after the
/// first version default, and older gateways ignore them.
#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    client: Map<String, Value>,
    desired: Map<String, Value>,
    created_at: u64,
    secret_issued_at: u64,
    ensured_at: u64,
    outcome: Outcome,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    replaced: Vec<Replaced>,
    #[serde(default)]
    declared: bool,
    #[serde(default)]
    retired_at: Option<u64>,
    #[serde(default)]
    applied: Option<Map<String, Value>>,
    #[serde(default)]
    deleted_at: Option<u64>,
    #[serde(default)]
    keys: Vec<WireKey>,
}

/// A stored client key; the record around it is sealed like a secret.
#[derive(Serialize, Deserialize)]
struct WireKey {
    kid: String,
    pkcs8: String,
    created_at: u64,
}

const VERSION: u32 = 1;

impl ManagedRecord {
    /// The record as stored.
    pub fn to_json(&self) -> SecretString {
        let mut client = client_to_json_exposing_secrets(&self.client);
        client.remove("registration_access_token");
        let wire = Wire {
            v: VERSION,
            client,
            desired: self.desired.clone(),
            created_at: self.created_at,
            secret_issued_at: self.secret_issued_at,
            ensured_at: self.ensured_at,
            outcome: self.outcome,
            last_error: self.last_error.clone(),
            replaced: self.replaced.clone(),
            declared: self.declared,
            retired_at: self.retired_at,
            applied: self.applied.clone(),
            deleted_at: self.deleted_at,
            keys: self
                .keys
                .iter()
                .map(|k| WireKey {
                    kid: k.kid.clone(),
                    pkcs8: k.pkcs8.expose_secret().to_owned(),
                    created_at: k.created_at,
                })
                .collect(),
        };
        // A broken invariant must fail loudly, never store an empty record.
        SecretString::from(
            serde_json::to_string(&wire).expect("a record of JSON values serialises"),
        )
    }

    /// Reads a stored record.
    pub fn from_json(json: &SecretString) -> Result<Self, StoreError> {
        let unreadable =
            |what: &str| StoreError::Unreadable(format!("managed client record: {what}"));
        let wire: Wire = serde_json::from_str(json.expose_secret()).map_err(|e| {
            unreadable(&format!(
                "not a record (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if wire.v != VERSION {
            return Err(unreadable(&format!(
                "format version {} is not {VERSION}",
                wire.v
            )));
        }
        let mut client = client_from_json(wire.client).map_err(|e| unreadable(&e.to_string()))?;
        client.registration_access_token = None;
        Ok(Self {
            client,
            desired: wire.desired,
            created_at: wire.created_at,
            secret_issued_at: wire.secret_issued_at,
            ensured_at: wire.ensured_at,
            outcome: wire.outcome,
            last_error: wire.last_error,
            replaced: wire.replaced,
            declared: wire.declared,
            retired_at: wire.retired_at,
            applied: wire.applied,
            deleted_at: wire.deleted_at,
            keys: wire
                .keys
                .into_iter()
                .map(|k| ClientKey {
                    kid: k.kid,
                    pkcs8: SecretString::from(k.pkcs8),
                    created_at: k.created_at,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_with_its_secret_and_never_a_token() {
        let record = ManagedRecord {
            client: Client {
                client_id: "shark_dcr_abc".into(),
                client_secret: Some("s3cret-s3cret".into()),
                registration_access_token: Some("rat-rat-rat".into()),
                registration_client_uri: "https://as/oauth/register/shark_dcr_abc".into(),
                ..Client::default()
            },
            desired: Map::from_iter([("client_name".to_owned(), Value::from("billing"))]),
            created_at: 1,
            secret_issued_at: 2,
            ensured_at: 3,
            outcome: Outcome::Recreated,
            last_error: None,
            replaced: vec![Replaced {
                client_id: "old".into(),
                at: 2,
            }],
            declared: true,
            retired_at: Some(4),
            applied: None,
            deleted_at: None,
            keys: Vec::new(),
        };
        let json = record.to_json();
        assert!(!json.expose_secret().contains("rat-rat-rat"));
        let back = ManagedRecord::from_json(&json).unwrap();
        assert_eq!(back.client.client_id, "shark_dcr_abc");
        assert_eq!(
            back.client
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            Some("s3cret-s3cret".into())
        );
        assert!(back.client.registration_access_token.is_none());
        assert_eq!((back.outcome, back.replaced.len()), (Outcome::Recreated, 1));
        assert_eq!(back.desired["client_name"], "billing");
        assert_eq!((back.declared, back.retired_at), (true, Some(4)));

        // A record of the first layout (no members added since) reads on.
        let first = r#"{"v":1,"client":{"client_id":"c"},"desired":{},"created_at":1,
            "secret_issued_at":1,"ensured_at":1,"outcome":"CREATED"}"#;
        let old = ManagedRecord::from_json(&SecretString::from(first.to_owned())).unwrap();
        assert!(!old.declared && old.retired_at.is_none() && old.applied.is_none());

        let err =
            ManagedRecord::from_json(&SecretString::from("{\"v\":9}".to_owned())).unwrap_err();
        assert!(matches!(err, StoreError::Unreadable(_)), "{err}");
    }
}
