//! Scheduled secret rotation: when a declared client's policy says its
//! secret is due, the gateway rotates it (once across replicas: the name's
//! lease, then a fresh read of the record, decides) and tells its watchers.

use std::time::Instant;

use secrecy::ExposeSecret;

use super::keys::old_key_retires_at;
use super::record::ManagedRecord;
use super::settings::{DeclaredClient, RotationPolicy};
use super::watch::{Change, Published};
use super::{Managed, target};
use crate::dcr::json::metadata_from_json;
use crate::dcr::{Capabilities, Client, DcrCall, DcrError, DcrResponse, SecretRotation};
use crate::duration::format_duration;
use crate::store::{ManagedKey, unix_now};

/// When `record`'s secret (or key) is next due under `policy`, in Unix
/// seconds; for a client with an older key still published, when that key
/// is removed.
pub fn next_rotation(record: &ManagedRecord, policy: RotationPolicy) -> Option<u64> {
    let by_age = policy
        .every
        .map(|every| record.secret_issued_at.saturating_add(every.as_secs()));
    let by_expiry = match (policy.before_expiry, record.client.client_secret_expires_at) {
        (Some(margin), Some(expires)) if expires > 0 => Some(
            u64::try_from(expires)
                .unwrap_or(0)
                .saturating_sub(margin.as_secs()),
        ),
        _ => None,
    };
    // A key client with an older key published rotates again only once
    // that key is removed.
    if let Some(retire) = old_key_retires_at(record) {
        return Some(retire);
    }
    match (by_age, by_expiry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One warning per declared client whose rotation cuts readers off before
/// the server's grace would: SharkAuth keeps only the previous secret, for
/// an hour, so a period shorter than that ends a reader's secret one
/// period after it read the file, not one hour; a server without a grace
/// ends it at once.
pub fn rotation_warnings(server: &Capabilities, clients: &[DeclaredClient]) -> Vec<String> {
    let mut out = Vec::new();
    for c in clients
        .iter()
        .filter(|c| c.rotation != RotationPolicy::default())
    {
        let period = c.rotation.every;
        match server.secret_grace {
            Some(grace) => {
                if let Some(every) = period.filter(|every| *every < grace) {
                    out.push(format!(
                        "SHORT ROTATION: declared client {:?} rotates its secret every {}, shorter than \
                         the server's grace for a previous secret ({}, and only the last one): a reader \
                         must read its credentials again at least every {} or be refused; rotate at most \
                         every {}",
                        c.name,
                        format_duration(every),
                        format_duration(grace),
                        format_duration(every),
                        format_duration(grace),
                    ));
                }
            }
            None => out.push(format!(
                "ROTATION WITHOUT GRACE: declared client {:?} is rotated on a server that keeps no \
                 previous secret: a reader using the old one is refused until it reads its \
                 credentials again",
                c.name
            )),
        }
    }
    out
}

impl Managed {
    /// Rotates `name`'s secret if `policy` says it is due; the client with
    /// its new secret when it did.
    ///
    /// SharkAuth rotates with RotateClientSecret (the old secret stays valid
    /// for its grace hour). An `rfc7592` server has no rotation call: the
    /// gateway sends the metadata again as an update, and takes the new
    /// secret from the answer where the server issues one there; a server that
    /// does not is reported as unable to rotate.
    pub async fn rotate_if_due(
        &self,
        namespace: &str,
        name: &str,
        policy: RotationPolicy,
        deadline: Instant,
    ) -> Result<Option<Client>, DcrError> {
        if policy == RotationPolicy::default() {
            return Ok(None);
        }
        let key = &self.key(namespace, name);
        self.holding(key, deadline, async || {
            let result = self.rotate_held(key, policy, deadline).await;
            if let Err(e) = &result {
                self.note_failure(key, e).await;
            }
            result
        })
        .await
    }

    /// [`Managed::rotate_if_due`] while holding the name.
    async fn rotate_held(
        &self,
        key: &ManagedKey,
        policy: RotationPolicy,
        deadline: Instant,
    ) -> Result<Option<Client>, DcrError> {
        let (namespace, name) = (key.namespace.as_str(), key.name.as_str());
        let Some((mut record, generation)) = self.load(key).await? else {
            return Ok(None);
        };
        // Read under the lease: another replica that rotated first has
        // moved the secret's issue time on.
        if next_rotation(&record, policy).is_none_or(|at| unix_now() < at) {
            return Ok(None);
        }
        if !record.keys.is_empty() {
            return self
                .rotate_key_held(key, record, generation, deadline)
                .await;
        }
        let id = record.client.client_id.clone();
        let old = record.client.client_secret.clone();
        let call = match self.inner.server.secret_rotation {
            SecretRotation::Call => DcrCall::RotateSecret(target(&id)),
            SecretRotation::Update => DcrCall::Update {
                target: target(&id),
                metadata: metadata_from_json(record.desired.clone())
                    .map_err(|e| DcrError::invalid("metadata", e.to_string()))?,
                mask: Vec::new(),
            },
        };
        let DcrResponse::Client(answer) = self.call(namespace, deadline, call).await? else {
            return Err(DcrError::Internal("a rotation answered as a delete"));
        };
        let fresh = answer.client_secret.clone().filter(|new| {
            old.as_ref()
                .is_none_or(|old| old.expose_secret() != new.expose_secret())
        });
        let Some(secret) = fresh else {
            return Err(DcrError::Unsupported(
                "secret rotation: the server issued no new secret",
            ));
        };
        record.client.client_secret = Some(secret);
        record.secret_issued_at = unix_now();
        let generation = self.save(key, Some(generation), &record).await?;
        self.tell_rotated(key, &record, generation);
        tracing::info!(name, client_id = id, "rotated a managed client's secret");
        Ok(Some(record.client))
    }

    /// Tells `key`'s watchers its credential (secret or key) was rotated,
    /// as `record`'s new `generation` holds it.
    pub(super) fn tell_rotated(&self, key: &ManagedKey, record: &ManagedRecord, generation: u64) {
        self.inner.watchers.publish(
            key,
            Published {
                client: record.client.clone(),
                change: Change::SecretRotated,
                generation,
            },
        );
    }
}
