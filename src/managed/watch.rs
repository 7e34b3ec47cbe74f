//! Who follows which managed client: one `watch` channel per name, so a
//! watcher that falls behind sees the latest state, never a queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use crate::dcr::Client;
use crate::store::ManagedKey;

/// Why a state was published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The state when the watch began.
    Current,
    /// A new secret.
    SecretRotated,
    /// New metadata.
    Updated,
    /// A new client after the server lost the previous one.
    Recreated,
}

/// A managed client's credentials as published to watchers: the client with
/// its current secret, no registration access token.
#[derive(Clone, Debug)]
pub struct Published {
    /// The client.
    pub client: Client,
    /// Why it was published.
    pub change: Change,
    /// The record generation it came from, so an older state never replaces
    /// a newer one.
    pub generation: u64,
}

/// A watcher's view: `None` once the name is no longer managed.
pub type Watch = watch::Receiver<Option<Arc<Published>>>;

type Senders = HashMap<ManagedKey, watch::Sender<Option<Arc<Published>>>>;

/// The channels by name; entries live while someone watches. Beside them,
/// one wake-up per declared client's loop, woken by every change to its
/// name (a publish, a close, a nudge).
#[derive(Clone, Default)]
pub struct Watchers {
    senders: Arc<Mutex<Senders>>,
    loops: Arc<Mutex<HashMap<ManagedKey, Arc<Notify>>>>,
}

impl Watchers {
    fn senders(&self) -> std::sync::MutexGuard<'_, Senders> {
        // Every critical section is a single map operation.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The wake-up of `key`'s declared loop (one per name, kept for the
    /// process's life: declared names are few and fixed).
    pub fn wake_up(&self, key: &ManagedKey) -> Arc<Notify> {
        let mut loops = self.loops.lock().unwrap_or_else(|e| e.into_inner());
        loops.entry(key.clone()).or_default().clone()
    }

    /// Wakes `key`'s declared loop, if it has one: something about its name
    /// changed that only a new look at its record tells.
    pub fn nudge(&self, key: &ManagedKey) {
        let loops = self.loops.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(wake) = loops.get(key) {
            wake.notify_one();
        }
    }

    /// Follows `key`, whose state (just read) is `current`. The channel
    /// takes `current` only when it is new to it, or a real change from what
    /// it holds (another replica's, seen first by this read), so subscribing
    /// never wakes the other watchers for nothing.
    pub fn subscribe(&self, key: ManagedKey, current: &Published) -> Watch {
        let mut senders = self.senders();
        senders.retain(|_, s| s.receiver_count() > 0);
        let sender = senders.entry(key).or_insert_with(|| watch::channel(None).0);
        let rx = sender.subscribe();
        sender.send_if_modified(|state| match state {
            Some(held) if held.generation >= current.generation => false,
            Some(held) => match change_between(&held.client, &current.client) {
                Some(change) => {
                    *state = Some(Arc::new(Published {
                        change,
                        ..current.clone()
                    }));
                    true
                }
                None => false,
            },
            None => {
                *state = Some(Arc::new(current.clone()));
                true
            }
        });
        rx
    }

    /// Tells `key`'s watchers (and its declared loop) of a new state,
    /// unless they have a newer one.
    pub fn publish(&self, key: &ManagedKey, state: Published) {
        if let Some(sender) = self.senders().get(key) {
            sender.send_if_modified(|current| newer(current, state));
        }
        self.nudge(key);
    }

    /// Ends `key`'s watches: it is no longer managed.
    pub fn close(&self, key: &ManagedKey) {
        if let Some(sender) = self.senders().remove(key) {
            sender.send_replace(None);
        }
        self.nudge(key);
    }
}

/// What changed from `old` to `new` that a watcher hears of: a new client, a
/// new secret, new metadata; `None` for nothing (a token-only change).
pub fn change_between(old: &Client, new: &Client) -> Option<Change> {
    use secrecy::ExposeSecret;
    let secret = |c: &Client| {
        c.client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
    };
    if new.client_id != old.client_id {
        Some(Change::Recreated)
    } else if secret(new) != secret(old) {
        Some(Change::SecretRotated)
    } else if new.metadata != old.metadata {
        Some(Change::Updated)
    } else {
        None
    }
}

/// Replaces `current` with `state` when it is newer; whether it did.
fn newer(current: &mut Option<Arc<Published>>, state: Published) -> bool {
    match current {
        Some(c) if c.generation >= state.generation => false,
        _ => {
            *current = Some(Arc::new(state));
            true
        }
    }
}
