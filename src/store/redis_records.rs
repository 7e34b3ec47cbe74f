//! The Redis backend's managed client records: hashes `{gen, val, cid}` under
//! `NAME~client:` + record key (outside the tokens' keyspace), and for each
//! client a set of the names whose record holds it, under `NAME~cidx:` +
//! client index key.
//!
//! A record changes in one script that touches only its own key (one slot
//! on a Cluster); its index entries change around it, so the index is
//! always a superset: the new client's set gains the name before the
//! record names it, and the old client's set loses it only after. Readers
//! of the index check each record (`Records::records_of_client`).

use async_trait::async_trait;
use redis::Script;
use secrecy::SecretString;

use super::codec::{open_record, seal_record};
use super::record::{client_index_key, parse_record_key, record_key_bytes, record_prefix};
use super::redis::RedisStore;
use super::redis_conn::RedisConn;
use super::{Cas, ManagedKey, Records, StoreError, StoredRecord};

/// `KEYS[1]` record; `ARGV[1]` expected generation (`""`: absent),
/// `ARGV[2]` sealed value for the next generation, `ARGV[3]` client id.
/// Returns `{new generation, previous client id or ""}`, or `{0, ""}` on
/// conflict.
const PUT: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'gen')
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  local gen = (tonumber(cur) or 0) + 1
  local old = redis.call('HGET', KEYS[1], 'cid') or ''
  redis.call('HSET', KEYS[1], 'gen', gen, 'val', ARGV[2], 'cid', ARGV[3])
  return {gen, old}
end
return {0, ''}
"#;

/// `KEYS[1]` record; `ARGV[1]` expected generation. Returns `{1, the
/// deleted record's client id or ""}`, or `{0, ""}` when it did not delete.
const DELETE: &str = r#"
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then
  local old = redis.call('HGET', KEYS[1], 'cid') or ''
  redis.call('DEL', KEYS[1])
  return {1, old}
end
return {0, ''}
"#;

impl RedisStore {
    /// The Redis key of the set of `key`'s namespace's names holding
    /// `client_id`.
    fn client_set(&self, key: &ManagedKey, client_id: &str) -> String {
        self.prefix
            .client_index_key(&client_index_key(&key.upstream, &key.namespace, client_id))
    }

    /// Adds (`add`) or removes `key`'s name in `set`.
    async fn index(&self, set: &str, key: &ManagedKey, add: bool) -> Result<(), StoreError> {
        let _: u64 = self
            .with_retry(|mut c: RedisConn| async move {
                redis::cmd(if add { "SADD" } else { "SREM" })
                    .arg(set)
                    .arg(&key.name)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Records for RedisStore {
    async fn get_record(&self, key: &ManagedKey) -> Result<Option<StoredRecord>, StoreError> {
        let key = record_key_bytes(key);
        match self.raw(&self.prefix.record_key(&key)).await? {
            Some((g, v)) => open_record(self.keyring.as_deref(), &key, g, &v).map(Some),
            None => Ok(None),
        }
    }

    async fn put_record(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        json: &SecretString,
        client_id: &str,
    ) -> Result<Cas, StoreError> {
        let bytes = record_key_bytes(key);
        let rkey = self.prefix.record_key(&bytes);
        self.index(&self.client_set(key, client_id), key, true)
            .await?;
        let next = expected.unwrap_or(0) + 1;
        let value = seal_record(self.keyring.as_deref(), &bytes, next, json);
        let expected = expected.map(|g| g.to_string()).unwrap_or_default();
        let script = Script::new(PUT);
        let (generation, old): (u64, String) = self
            .durably(&rkey, |mut c| {
                let mut call = script.key(&rkey);
                call.arg(&expected).arg(&value).arg(client_id);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        if generation == 0 {
            return Ok(Cas::Conflict);
        }
        // Stored already: an index entry left behind is only a stale hint,
        // which readers check.
        if !old.is_empty()
            && old != client_id
            && let Err(e) = self.index(&self.client_set(key, &old), key, false).await
        {
            tracing::warn!(error = %e, "redis token store: could not drop a replaced client's index entry");
        }
        Ok(Cas::Stored(generation))
    }

    async fn delete_record(&self, key: &ManagedKey, expected: u64) -> Result<bool, StoreError> {
        let rkey = self.prefix.record_key(&record_key_bytes(key));
        let script = Script::new(DELETE);
        let (deleted, old): (u64, String) = self
            .with_retry(|mut c: RedisConn| {
                let mut call = script.key(&rkey);
                call.arg(expected);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        if deleted == 1
            && !old.is_empty()
            && let Err(e) = self.index(&self.client_set(key, &old), key, false).await
        {
            tracing::warn!(error = %e, "redis token store: could not drop a deleted record's index entry");
        }
        Ok(deleted == 1)
    }

    async fn list_records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, StoreError> {
        let mut out = Vec::new();
        for rkey in self.keys_matching(self.prefix.record_pattern()).await? {
            let Some((bytes, key)) = self
                .prefix
                .record_store_key(&rkey)
                .and_then(|k| Some((k, parse_record_key(k)?)))
            else {
                continue;
            };
            let (generation, value, client_id): (Option<u64>, Option<Vec<u8>>, Option<String>) =
                self.with_retry(|mut c: RedisConn| {
                    let rkey = rkey.clone();
                    async move {
                        redis::cmd("HMGET")
                            .arg(&rkey)
                            .arg("gen")
                            .arg("val")
                            .arg("cid")
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            if let (Some(g), Some(v)) = (generation, value) {
                let mut record = open_record(self.keyring.as_deref(), bytes, g, &v)?;
                record.client_id = client_id;
                out.push((key, record));
            }
        }
        Ok(out)
    }

    async fn records_of_client(
        &self,
        upstream: &str,
        namespace: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let set = self
            .prefix
            .client_index_key(&client_index_key(upstream, namespace, client_id));
        self.with_retry(|mut c: RedisConn| {
            let set = set.clone();
            async move { redis::cmd("SMEMBERS").arg(&set).query_async(&mut c).await }
        })
        .await
    }

    async fn record_names(
        &self,
        upstream: &str,
        namespace: &str,
    ) -> Result<Vec<String>, StoreError> {
        let start = record_prefix(upstream, namespace);
        let pattern = self.prefix.record_pattern_from(&start);
        let mut names: Vec<String> = self
            .keys_matching(pattern)
            .await?
            .iter()
            .filter_map(|rkey| self.prefix.record_store_key(rkey))
            .filter_map(|k| k.strip_prefix(start.as_str()).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}
