//! The Redis backend's managed client records: hashes `{gen, val, cid}` under
//! `NAME~client:` + record key (outside the tokens' keyspace), and for each
//! client a set of the names whose record holds it, under `NAME~cidx:` +
//! client index key. A record and its index entry change in one script.
//!
//! The scripts name the previous client's set from the record's `cid`, a key
//! built on the server: right on one node. (Redis Cluster needs every key a
//! script touches declared and on one slot.)

use async_trait::async_trait;
use redis::Script;
use secrecy::SecretString;

use super::codec::{open_record, seal_record};
use super::record::{client_index_key, parse_record_key, record_key_bytes, record_prefix};
use super::redis::RedisStore;
use super::{Cas, ManagedKey, Records, StoreError, StoredRecord};

/// `KEYS[1]` record, `KEYS[2]` the new client's set; `ARGV[1]` expected
/// generation (`""`: absent), `ARGV[2]` sealed value for the next
/// generation, `ARGV[3]` client id, `ARGV[4]` name, `ARGV[5]` the start of
/// every client set of the record's namespace. Returns the new generation,
/// or 0 on conflict.
const PUT: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'gen')
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  local gen = (tonumber(cur) or 0) + 1
  local old = redis.call('HGET', KEYS[1], 'cid')
  redis.call('HSET', KEYS[1], 'gen', gen, 'val', ARGV[2], 'cid', ARGV[3])
  if old and old ~= ARGV[3] then redis.call('SREM', ARGV[5] .. old, ARGV[4]) end
  redis.call('SADD', KEYS[2], ARGV[4])
  return gen
end
return 0
"#;

/// `KEYS[1]` record; `ARGV[1]` expected generation, `ARGV[2]` name,
/// `ARGV[3]` the start of every client set of its namespace. Returns 1 if
/// deleted.
const DELETE: &str = r#"
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then
  local old = redis.call('HGET', KEYS[1], 'cid')
  redis.call('DEL', KEYS[1])
  if old then redis.call('SREM', ARGV[3] .. old, ARGV[2]) end
  return 1
end
return 0
"#;

impl RedisStore {
    /// The start of every client set of `key`'s namespace.
    fn client_sets(&self, key: &ManagedKey) -> String {
        self.prefix
            .client_index_key(&record_prefix(&key.upstream, &key.namespace))
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
        let set = self.prefix.client_index_key(&client_index_key(
            &key.upstream,
            &key.namespace,
            client_id,
        ));
        let sets = self.client_sets(key);
        let next = expected.unwrap_or(0) + 1;
        let value = seal_record(self.keyring.as_deref(), &bytes, next, json);
        let expected = expected.map(|g| g.to_string()).unwrap_or_default();
        let script = Script::new(PUT);
        let generation: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&rkey);
                call.key(&set)
                    .arg(&expected)
                    .arg(&value)
                    .arg(client_id)
                    .arg(&key.name)
                    .arg(&sets);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(match generation {
            0 => Cas::Conflict,
            g => Cas::Stored(g),
        })
    }

    async fn delete_record(&self, key: &ManagedKey, expected: u64) -> Result<bool, StoreError> {
        let rkey = self.prefix.record_key(&record_key_bytes(key));
        let sets = self.client_sets(key);
        let script = Script::new(DELETE);
        let deleted: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&rkey);
                call.arg(expected).arg(&key.name).arg(&sets);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
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
                self.with_retry(|mut c| {
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
        self.with_retry(|mut c| {
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
