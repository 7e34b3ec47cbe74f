//! The file backend's managed client records: a second redb table beside the
//! tokens, laid out the same way (generation, then the sealed record), every
//! write a durable compare-and-set.

use redb::{ReadableDatabase, ReadableTable};
use secrecy::SecretString;

use super::file::{FileStore, RECORDS, backend, split_generation};
use super::record::{open_record, parse_record_key, record_key_bytes, seal_record};
use super::{Cas, ManagedKey, StoreError, StoredRecord};

impl FileStore {
    fn open_raw(&self, key: &str, raw: &[u8]) -> Result<StoredRecord, StoreError> {
        let (generation, sealed) = split_generation(raw)?;
        open_record(self.keyring.as_deref(), key, generation, sealed)
    }

    pub(super) async fn record(
        &self,
        key: &ManagedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let key = record_key_bytes(key);
        self.run(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDS).map_err(backend)?;
            let raw = table.get(key.as_str()).map_err(backend)?;
            raw.map(|v| s.open_raw(&key, v.value())).transpose()
        })
        .await
    }

    pub(super) async fn store_record(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        json: &SecretString,
    ) -> Result<Cas, StoreError> {
        let (key, json) = (record_key_bytes(key), json.clone());
        self.run(move |s| {
            s.write_in(RECORDS, |table| {
                let current = s.generation(table, &key)?;
                if current != expected {
                    return Ok(Cas::Conflict);
                }
                let generation = current.unwrap_or(0) + 1;
                let mut value = generation.to_be_bytes().to_vec();
                value.extend(seal_record(s.keyring.as_deref(), &key, generation, &json));
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(backend)?;
                Ok(Cas::Stored(generation))
            })
        })
        .await
    }

    pub(super) async fn remove_record(
        &self,
        key: &ManagedKey,
        expected: u64,
    ) -> Result<bool, StoreError> {
        let key = record_key_bytes(key);
        self.run(move |s| {
            s.write_in(RECORDS, |table| {
                if s.generation(table, &key)? != Some(expected) {
                    return Ok(false);
                }
                table.remove(key.as_str()).map_err(backend)?;
                Ok(true)
            })
        })
        .await
    }

    pub(super) async fn records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, StoreError> {
        self.run(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let Some(key) = parse_record_key(k.value()) else {
                    continue;
                };
                out.push((key, s.open_raw(k.value(), v.value())?));
            }
            Ok(out)
        })
        .await
    }
}
