//! The Redis backend's managed client records: hashes `{gen, val}` under
//! `NAME~client:` + record key (outside the tokens' keyspace), written with
//! the same compare-and-set and compare-and-delete scripts as tokens.

use redis::Script;
use secrecy::SecretString;

use super::record::{open_record, parse_record_key, record_key_bytes, seal_record};
use super::redis::{CAS, RedisStore};
use super::{Cas, ManagedKey, StoreError, StoredRecord};

impl RedisStore {
    pub(super) async fn record(
        &self,
        key: &ManagedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let key = record_key_bytes(key);
        match self.raw(&self.prefix.record_key(&key)).await? {
            Some((g, v)) => open_record(self.keyring.as_deref(), &key, g, &v).map(Some),
            None => Ok(None),
        }
    }

    pub(super) async fn store_record(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        json: &SecretString,
    ) -> Result<Cas, StoreError> {
        let key = record_key_bytes(key);
        let rkey = self.prefix.record_key(&key);
        let next = expected.unwrap_or(0) + 1;
        let value = seal_record(self.keyring.as_deref(), &key, next, json);
        let expected = expected.map(|g| g.to_string()).unwrap_or_default();
        let script = Script::new(CAS);
        let generation: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&rkey);
                call.arg(&expected).arg(&value);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(match generation {
            0 => Cas::Conflict,
            g => Cas::Stored(g),
        })
    }

    pub(super) async fn remove_record(
        &self,
        key: &ManagedKey,
        expected: u64,
    ) -> Result<bool, StoreError> {
        let rkey = self.prefix.record_key(&record_key_bytes(key));
        self.delete_at_generation(&rkey, expected).await
    }

    pub(super) async fn records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, StoreError> {
        let mut out = Vec::new();
        for rkey in self.keys_matching(self.prefix.record_pattern()).await? {
            let Some(key) = self
                .prefix
                .record_store_key(&rkey)
                .and_then(parse_record_key)
            else {
                continue;
            };
            if let Some(record) = self.record(&key).await? {
                out.push((key, record));
            }
        }
        Ok(out)
    }
}
