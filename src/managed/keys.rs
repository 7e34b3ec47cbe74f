//! Managed clients that authenticate with a key (`private_key_jwt`): the
//! gateway makes the key pair, publishes its public half as the client's
//! `jwks` in every registration and update it sends, and rotates it on the
//! client's schedule with an overlap: the new key is published beside the
//! old one and signs from then on, and the old one is removed once no
//! assertion it signed can still be in flight.

use std::time::{Duration, Instant};

use super::drift::observed;
use super::record::ManagedRecord;
use super::{Managed, target, unix_now};
use crate::dcr::json::metadata_from_json;
use crate::dcr::{Client, ClientMetadata, DcrCall, DcrError, DcrResponse};
use crate::keys::{ASSERTION_LIFETIME, ClientKey, jwks};
use crate::store::ManagedKey;

/// How long an older key stays published after a new one signs: every
/// assertion it signed has expired by then, clocks a little apart.
pub const KEY_OVERLAP: Duration = Duration::from_secs(ASSERTION_LIFETIME.as_secs() + 30);

/// The `token_endpoint_auth_method` of a client that authenticates with a
/// key the gateway holds.
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// Whether `metadata` asks for key authentication.
pub fn uses_keys(metadata: &ClientMetadata) -> bool {
    metadata.token_endpoint_auth_method.as_deref() == Some(PRIVATE_KEY_JWT)
}

/// `desired` as sent: with `keys`' public halves as its `jwks`, when it
/// has keys.
pub fn with_keys(
    mut desired: ClientMetadata,
    keys: &[ClientKey],
) -> Result<ClientMetadata, DcrError> {
    if !keys.is_empty() {
        desired.jwks = Some(jwks(keys)?);
    }
    Ok(desired)
}

/// When an older key of `record` stops being published, if it has one.
pub fn old_key_retires_at(record: &ManagedRecord) -> Option<u64> {
    match record.keys.as_slice() {
        [_, .., newest] => Some(newest.created_at.saturating_add(KEY_OVERLAP.as_secs())),
        _ => None,
    }
}

impl Managed {
    /// The keys a new registration of `desired` needs: one new key when it
    /// authenticates with one, on a server that keeps the `jwks`.
    pub(super) fn new_keys(&self, desired: &ClientMetadata) -> Result<Vec<ClientKey>, DcrError> {
        if !uses_keys(desired) {
            return Ok(Vec::new());
        }
        if !self.inner.server.keeps_jwks {
            return Err(DcrError::invalid(
                "metadata.token_endpoint_auth_method",
                "private_key_jwt needs the server to keep the jwks the gateway registers, and \
                 SharkAuth drops jwks from registrations: use client_secret_basic there",
            ));
        }
        if desired.jwks.is_some() || desired.jwks_uri.is_some() {
            return Err(DcrError::invalid(
                "metadata.jwks",
                "with private_key_jwt the gateway makes and keeps the key: leave jwks and \
                 jwks_uri unset",
            ));
        }
        Ok(vec![ClientKey::generate()?])
    }

    /// Rotates a key client's key, or removes its older key once the
    /// overlap is over; the record's new generation and the client.
    pub(super) async fn rotate_key_held(
        &self,
        key: &ManagedKey,
        mut record: ManagedRecord,
        generation: u64,
        deadline: Instant,
    ) -> Result<Option<Client>, DcrError> {
        let now = unix_now();
        let retiring = old_key_retires_at(&record).is_some_and(|at| at <= now);
        let mut keys = record.keys.clone();
        match retiring {
            true => keys.drain(..keys.len() - 1).for_each(drop),
            false => keys.push(ClientKey::generate()?),
        }
        let desired = metadata_from_json(record.desired.clone())
            .map_err(|e| DcrError::invalid("metadata", e.to_string()))?;
        let update = DcrCall::Update {
            target: target(&record.client.client_id),
            metadata: with_keys(desired, &keys)?,
            mask: Vec::new(),
        };
        let DcrResponse::Client(answer) = self.call(&key.namespace, deadline, update).await? else {
            return Err(DcrError::Internal("an update answered without a client"));
        };
        record.applied = Some(observed(&answer.metadata));
        record.client.metadata = answer.metadata.clone();
        record.keys = keys;
        if !retiring {
            record.secret_issued_at = now;
        }
        let generation = self.save(key, Some(generation), &record).await?;
        match retiring {
            true => tracing::info!(name = key.name, "removed a managed client's older key"),
            false => {
                tracing::info!(name = key.name, "rotated a managed client's key");
                self.tell_rotated(key, &record, generation);
            }
        }
        Ok(Some(record.client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed::record::Outcome;
    use crate::managed::rotate::next_rotation;
    use crate::managed::settings::RotationPolicy;

    fn record(keys: Vec<ClientKey>) -> ManagedRecord {
        ManagedRecord {
            client: Client::default(),
            desired: Default::default(),
            created_at: 1,
            secret_issued_at: 1_000,
            ensured_at: 1,
            outcome: Outcome::Created,
            last_error: None,
            replaced: Vec::new(),
            declared: true,
            retired_at: None,
            applied: None,
            deleted_at: None,
            keys,
        }
    }

    fn key_made_at(at: u64) -> ClientKey {
        ClientKey {
            created_at: at,
            ..ClientKey::generate().unwrap()
        }
    }

    #[test]
    fn an_older_key_is_removed_after_the_overlap_before_any_further_rotation() {
        let every = RotationPolicy {
            every: Some(Duration::from_secs(10)),
            before_expiry: None,
        };
        let one = record(vec![key_made_at(1_000)]);
        assert_eq!(old_key_retires_at(&one), None);
        assert_eq!(next_rotation(&one, every), Some(1_010));
        let two = record(vec![key_made_at(1_000), key_made_at(2_000)]);
        let retire = 2_000 + KEY_OVERLAP.as_secs();
        assert_eq!(old_key_retires_at(&two), Some(retire));
        // Due by age long ago, but the older key goes first.
        assert_eq!(next_rotation(&two, every), Some(retire));
        let published = with_keys(ClientMetadata::default(), &two.keys).unwrap();
        let jwks = published.jwks.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert!(
            with_keys(ClientMetadata::default(), &[])
                .unwrap()
                .jwks
                .is_none()
        );
    }
}
