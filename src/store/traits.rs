//! What a store can do, by capability: keep tokens, keep managed client
//! records, lease keys to one holder across replicas, seal what it holds.
//! Every backend keeps tokens and records; only a store replicas share has
//! leases; only a store that keeps values at rest seals them ([`super::Store`]
//! carries the optional ones).

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{
    Cas, ImportEntry, LeaseKey, ManagedKey, StoreError, StoredRecord, StoredToken, TokenKey,
};

/// Registration access tokens, each under its [`TokenKey`].
///
/// Every write is a compare-and-set on a per-entry generation, and every
/// conditional delete names the generation it saw, so a stale writer can
/// never overwrite a newer token or delete one it did not see.
#[async_trait]
pub trait Tokens: Send + Sync + 'static {
    /// The token held for `key`, if any.
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError>;

    /// Stores `token` for `key` if the entry's generation is still `expected`
    /// (`None`: the entry must not exist). Durable before it returns, for the
    /// durable backends.
    async fn compare_and_set(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
    ) -> Result<Cas, StoreError>;

    /// [`Tokens::compare_and_set`], refused (as a conflict) unless the lease
    /// on `key`'s client is still `fence`: a holder whose lease expired
    /// cannot overwrite what the next holder wrote. A store without leases
    /// has no fences to check.
    async fn compare_and_set_fenced(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
        _fence: u64,
    ) -> Result<Cas, StoreError> {
        self.compare_and_set(key, expected, token, registration_client_uri)
            .await
    }

    /// Removes the entry only if its generation is still `expected`. Returns
    /// whether it removed one.
    async fn compare_and_delete(&self, key: &TokenKey, expected: u64) -> Result<bool, StoreError>;

    /// Removes the entry, whatever it holds. Returns whether there was one.
    async fn delete(&self, key: &TokenKey) -> Result<bool, StoreError>;

    /// Up to `limit` entries (all when `None`), for operator commands and the
    /// startup key check. Order is unspecified.
    async fn list(&self, limit: Option<usize>) -> Result<Vec<(TokenKey, StoredToken)>, StoreError>;

    /// Checks one more token would fit: an error ([`StoreError::Full`]) only
    /// for a bounded store at its capacity.
    async fn check_room_for_token(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Stores many entries (for `tokens import`): each only where no entry
    /// exists, or replacing any with `overwrite`. Returns (stored, kept). The
    /// file backend does it in one durable transaction.
    async fn import(
        &self,
        entries: Vec<ImportEntry>,
        overwrite: bool,
    ) -> Result<(usize, usize), StoreError> {
        let (mut stored, mut kept) = (0, 0);
        for e in entries {
            let expected = match overwrite {
                true => self.get(&e.key).await?.map(|t| t.generation),
                false => None,
            };
            match self
                .compare_and_set(&e.key, expected, &e.token, &e.registration_client_uri)
                .await?
            {
                Cas::Stored(_) => stored += 1,
                Cas::Conflict => kept += 1,
            }
        }
        Ok((stored, kept))
    }
}

/// Managed client records, each under its [`ManagedKey`], indexed by the
/// client each holds; compare-and-set on generations, as tokens.
#[async_trait]
pub trait Records: Send + Sync + 'static {
    /// The managed client record under `key`, if any.
    async fn get_record(&self, key: &ManagedKey) -> Result<Option<StoredRecord>, StoreError>;

    /// Stores `json` under `key` if the record's generation is still
    /// `expected` (`None`: it must not exist), and indexes it under
    /// `client_id`, the client it holds, in the same write. Durable before it
    /// returns, for the durable backends.
    async fn put_record(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        json: &SecretString,
        client_id: &str,
    ) -> Result<Cas, StoreError>;

    /// Removes the record (and its index entry) only if its generation is
    /// still `expected`.
    async fn delete_record(&self, key: &ManagedKey, expected: u64) -> Result<bool, StoreError>;

    /// Every managed client record, with the client id each is indexed
    /// under. Order is unspecified.
    async fn list_records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, StoreError>;

    /// The names of the records of `namespace` on `upstream` that hold
    /// `client_id`: one index lookup, whatever the number of records, and no
    /// record opened. Order is unspecified.
    async fn records_of_client(
        &self,
        upstream: &str,
        namespace: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// The names of every record of `namespace` on `upstream`, sorted; no
    /// record opened.
    async fn record_names(
        &self,
        upstream: &str,
        namespace: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Checks one more record would fit: an error ([`StoreError::Full`])
    /// only for a bounded store at its capacity.
    async fn check_room_for_record(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Leases on a store replicas share: one holder of a key at a time, for a
/// TTL it renews, with a fencing number that only grows.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes the lease on `key` for `ttl`: its fencing number, or `None`
    /// while another holder has it.
    async fn take_lease(&self, key: &LeaseKey, ttl: Duration) -> Result<Option<u64>, StoreError>;

    /// Extends the lease `fence` on `key` by `ttl`; `false` when it was lost
    /// (expired and taken by another holder).
    async fn renew_lease(
        &self,
        key: &LeaseKey,
        fence: u64,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives the lease `fence` on `key` back, if it is still held.
    async fn release_lease(&self, key: &LeaseKey, fence: u64) -> Result<(), StoreError>;
}

/// Sealing what a store keeps at rest, for `tokens seal` after a keyring is
/// added.
#[async_trait]
pub trait Sealing: Send + Sync + 'static {
    /// Rewrites every plaintext token and record sealed with the keyring's
    /// current key; returns how many it sealed.
    async fn seal_plaintext(&self) -> Result<usize, StoreError>;
}

/// Whether a store across the network can be reached now, for readiness.
#[async_trait]
pub trait Reachable: Send + Sync + 'static {
    /// `true` when any of the store's servers answers.
    async fn reachable(&self) -> bool;
}
