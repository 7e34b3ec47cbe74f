//! Where registration access tokens (RATs) are kept, behind one trait.
//!
//! A RAT is the only key to manage a registered client: losing it strands the
//! client. The tokens layer (`middleware::tokens`) reads and writes this store;
//! backends differ only in durability and sharing.

mod memory;

pub use memory::{DEFAULT_MAX_ENTRIES, MemoryStore};

use async_trait::async_trait;
use secrecy::SecretString;

/// Identifies one stored token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey {
    /// The client identifier the token manages.
    pub client_id: String,
}

/// A stored registration access token and where it applies.
#[derive(Clone, Debug)]
pub struct StoredToken {
    /// The token itself.
    pub token: SecretString,
    /// The client's configuration endpoint, as the server returned it.
    pub registration_client_uri: String,
}

/// A token store failed; the message names no token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store is at its configured capacity.
    #[error("the token store is full ({0} entries)")]
    Full(usize),
}

/// A store of registration access tokens.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The token held for `key`, if any.
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError>;
    /// Stores `value` for `key`, replacing any older token.
    async fn put(&self, key: &TokenKey, value: StoredToken) -> Result<(), StoreError>;
    /// Removes the token for `key` only if it is still `token`, so a stale caller
    /// cannot remove a newer token it never saw. Returns whether it removed one.
    async fn remove_if(&self, key: &TokenKey, token: &SecretString) -> Result<bool, StoreError>;
    /// Removes the token for `key`, whatever it is.
    async fn remove(&self, key: &TokenKey) -> Result<(), StoreError>;
}
