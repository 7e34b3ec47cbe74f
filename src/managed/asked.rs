//! Who asks for an ensure, and what it returns; shared by ensuring a known
//! name and registering a new one.

use super::record::Outcome;
use crate::dcr::Client;

/// What an ensure returns: the client with its current secret, and what the
/// call did.
#[derive(Debug)]
pub struct Ensured {
    /// The client, its current secret included; no registration access token.
    pub client: Client,
    /// What the call did.
    pub outcome: Outcome,
}

/// Who asks for an ensure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asker {
    /// A caller's EnsureClient: the namespace's limit of names applies.
    Caller,
    /// A declared client's reconcile: the name is marked declared.
    Declared,
}
