//! The file backend's managed client records: a second redb table beside the
//! tokens, laid out the same way (generation, then the sealed record), every
//! write a durable compare-and-set. Two more tables index them by client:
//! record key → client id, and client index key + name → nothing, so the
//! records of one client are one range read, and their client ids change in
//! the record's own transaction.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};
use secrecy::SecretString;

use super::codec::{open_record, seal_record};
use super::file::{
    CLIENT_RECORDS, FileStore, RECORD_CLIENTS, RECORDS, generation, split_generation,
};
use super::file_group::backend;
use super::record::{
    client_index_entries, client_index_key, parse_record_key, record_key_bytes, record_prefix,
};
use super::{Cas, ManagedKey, Records, StoreError, StoredRecord};

/// The index entry of `key`'s record holding `client_id`.
fn index_entry(key: &ManagedKey, client_id: &str) -> String {
    let index = client_index_key(&key.upstream, &key.namespace, client_id);
    format!("{}{}", client_index_entries(&index), key.name)
}

impl FileStore {
    fn open_raw(&self, key: &str, raw: &[u8]) -> Result<StoredRecord, StoreError> {
        let (generation, sealed) = split_generation(raw)?;
        open_record(self.keyring.as_deref(), key, generation, sealed)
    }
}

#[async_trait]
impl Records for FileStore {
    async fn get_record(&self, key: &ManagedKey) -> Result<Option<StoredRecord>, StoreError> {
        let key = record_key_bytes(key);
        self.run(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDS).map_err(backend)?;
            let raw = table.get(key.as_str()).map_err(backend)?;
            raw.map(|v| s.open_raw(&key, v.value())).transpose()
        })
        .await
    }

    async fn put_record(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        json: &SecretString,
        client_id: &str,
    ) -> Result<Cas, StoreError> {
        let (managed, key, json) = (key.clone(), record_key_bytes(key), json.clone());
        let (client_id, keyring) = (client_id.to_owned(), self.keyring.clone());
        self.write_txn(move |txn| {
            let mut table = txn.open_table(RECORDS).map_err(backend)?;
            let current = generation(&table, &key)?;
            if current != expected {
                return Ok(Cas::Conflict);
            }
            let generation = current.unwrap_or(0) + 1;
            let mut value = generation.to_be_bytes().to_vec();
            value.extend(seal_record(keyring.as_deref(), &key, generation, &json));
            table
                .insert(key.as_str(), value.as_slice())
                .map_err(backend)?;
            let mut ids = txn.open_table(RECORD_CLIENTS).map_err(backend)?;
            let old = ids
                .insert(key.as_str(), client_id.as_str())
                .map_err(backend)?
                .map(|v| v.value().to_owned());
            let mut index = txn.open_table(CLIENT_RECORDS).map_err(backend)?;
            if let Some(old) = old.filter(|old| *old != client_id) {
                index
                    .remove(index_entry(&managed, &old).as_str())
                    .map_err(backend)?;
            }
            index
                .insert(index_entry(&managed, &client_id).as_str(), [].as_slice())
                .map_err(backend)?;
            Ok(Cas::Stored(generation))
        })
        .await
    }

    async fn delete_record(&self, key: &ManagedKey, expected: u64) -> Result<bool, StoreError> {
        let (managed, key) = (key.clone(), record_key_bytes(key));
        self.write_txn(move |txn| {
            let mut table = txn.open_table(RECORDS).map_err(backend)?;
            if generation(&table, &key)? != Some(expected) {
                return Ok(false);
            }
            table.remove(key.as_str()).map_err(backend)?;
            let mut ids = txn.open_table(RECORD_CLIENTS).map_err(backend)?;
            let old = ids
                .remove(key.as_str())
                .map_err(backend)?
                .map(|v| v.value().to_owned());
            if let Some(old) = old {
                txn.open_table(CLIENT_RECORDS)
                    .map_err(backend)?
                    .remove(index_entry(&managed, &old).as_str())
                    .map_err(backend)?;
            }
            Ok(true)
        })
        .await
    }

    async fn list_records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, StoreError> {
        self.run(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDS).map_err(backend)?;
            let ids = txn.open_table(RECORD_CLIENTS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let Some(key) = parse_record_key(k.value()) else {
                    continue;
                };
                let mut record = s.open_raw(k.value(), v.value())?;
                record.client_id = ids
                    .get(k.value())
                    .map_err(backend)?
                    .map(|id| id.value().to_owned());
                out.push((key, record));
            }
            Ok(out)
        })
        .await
    }

    async fn records_of_client(
        &self,
        upstream: &str,
        namespace: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = client_index_entries(&client_index_key(upstream, namespace, client_id));
        self.run(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let index = txn.open_table(CLIENT_RECORDS).map_err(backend)?;
            names_under(&index, &prefix)
        })
        .await
    }

    async fn record_names(
        &self,
        upstream: &str,
        namespace: &str,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = record_prefix(upstream, namespace);
        self.run(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDS).map_err(backend)?;
            names_under(&table, &prefix)
        })
        .await
    }
}

/// The rest of every key of `table` that starts with `prefix` (a name, as
/// both layouts end their keys), in key order.
fn names_under<V: redb::Value + 'static>(
    table: &impl ReadableTable<&'static str, V>,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range(prefix..).map_err(backend)? {
        let (k, _) = entry.map_err(backend)?;
        match k.value().strip_prefix(prefix) {
            Some(name) => out.push(name.to_owned()),
            None => break,
        }
    }
    Ok(out)
}
