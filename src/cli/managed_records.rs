//! Managed client records in `dcr-gateway tokens`: listed by name with their
//! secret's age and expiry (never the secret), exported whole with
//! `--reveal` (the secret included), and imported back.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::managed::{ManagedRecord, check_name};
use crate::store::{Cas, ManagedKey, Records, StoreError, StoredRecord, TokenKey, check_key};

/// One exported managed client (no `Debug`: with `--reveal` it holds the
/// secret).
#[derive(Serialize, Deserialize)]
pub struct ManagedEntry {
    upstream: String,
    namespace: String,
    name: String,
    client_id: String,
    secret_issued_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
    /// The whole record, the secret included: `--reveal` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<Value>,
}

/// The records as exported; an unreadable record is an error naming it.
pub fn export(
    records: Vec<(ManagedKey, StoredRecord)>,
    reveal: bool,
) -> Result<Vec<ManagedEntry>, StoreError> {
    let mut out = Vec::with_capacity(records.len());
    for (key, stored) in records {
        let record = ManagedRecord::from_json(&stored.json)?;
        let whole = match reveal {
            true => Some(
                serde_json::from_str(stored.json.expose_secret())
                    .map_err(|_| StoreError::Unreadable(format!("managed client {}", key.name)))?,
            ),
            false => None,
        };
        out.push(ManagedEntry {
            upstream: key.upstream,
            namespace: key.namespace,
            name: key.name,
            client_id: record.client.client_id,
            secret_issued_at: record.secret_issued_at,
            client_secret_expires_at: record.client.client_secret_expires_at,
            record: whole,
        });
    }
    out.sort_by(|a, b| {
        (&a.upstream, &a.namespace, &a.name).cmp(&(&b.upstream, &b.namespace, &b.name))
    });
    Ok(out)
}

/// A duration in seconds as `1h02m03s` (every `tokens list` age).
pub fn age(secs: u64) -> String {
    format!("{}h{:02}m{:02}s", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The `tokens list` section of managed clients.
pub fn list(entries: &[ManagedEntry], now: u64) -> String {
    let mut out = format!(
        "{} managed client(s)\nUPSTREAM\tNAMESPACE\tNAME\tCLIENT_ID\tSECRET_AGE\tSECRET_EXPIRES",
        entries.len()
    );
    for e in entries {
        let age = age(now.saturating_sub(e.secret_issued_at));
        let expires = match e.client_secret_expires_at {
            Some(at) => format!("{at}"),
            None => "never".into(),
        };
        out.push_str(&format!(
            "\n{}\t{}\t{}\t{}\t{age}\t{expires}",
            e.upstream, e.namespace, e.name, e.client_id
        ));
    }
    out
}

/// An exported record checked for import: its key, its record, and the
/// client it holds (the store indexes it).
pub struct Checked {
    key: ManagedKey,
    json: SecretString,
    client_id: String,
}

/// Checks an export's managed clients before anything is written; the
/// error says what is wrong with which, never the secret. Entries without a
/// record (exported without `--reveal`) are skipped; returns how many.
pub fn check(entries: Vec<ManagedEntry>) -> Result<(Vec<Checked>, usize), (usize, String)> {
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, e) in entries.into_iter().enumerate() {
        let Some(record) = e.record else {
            skipped += 1;
            continue;
        };
        let refuse = |reason: String| (i + 1, reason);
        let parts = TokenKey {
            upstream: e.upstream.clone(),
            namespace: e.namespace.clone(),
            client_id: e.client_id,
        };
        check_key(&parts).map_err(|err| refuse(err.to_string()))?;
        check_name("name", &e.name).map_err(|err| refuse(err.to_string()))?;
        let json = SecretString::from(record.to_string());
        let record = ManagedRecord::from_json(&json).map_err(|err| refuse(err.to_string()))?;
        out.push(Checked {
            key: ManagedKey {
                upstream: e.upstream,
                namespace: e.namespace,
                name: e.name,
            },
            json,
            client_id: record.client.client_id,
        });
    }
    Ok((out, skipped))
}

/// Stores checked records: each only where none exists, or replacing any
/// with `overwrite`. Returns (stored, kept).
pub async fn import(
    store: &dyn Records,
    records: Vec<Checked>,
    overwrite: bool,
) -> Result<(usize, usize), StoreError> {
    let (mut stored, mut kept) = (0, 0);
    for r in records {
        let expected = match overwrite {
            true => store.get_record(&r.key).await?.map(|s| s.generation),
            false => None,
        };
        match store
            .put_record(&r.key, expected, &r.json, &r.client_id)
            .await?
        {
            Cas::Stored(_) => stored += 1,
            Cas::Conflict => kept += 1,
        }
    }
    Ok((stored, kept))
}
