//! What the gRPC handlers may learn about a call's peer, put in every
//! request's extensions by the listener (`server`), read here to choose the
//! caller's namespace.

use std::sync::Arc;

/// Put in every request's extensions by tonic: under mutual TLS, the
/// identity the peer's certificate carries.
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    /// SPIFFE ID or DNS SAN of the client certificate (mutual TLS only).
    pub identity: Option<Arc<str>>,
}
