//! What the gRPC handlers may learn about a call's peer, put in every
//! request's extensions by the listener (`server`), read here to choose the
//! caller's namespace.

use std::net::SocketAddr;
use std::sync::Arc;

/// Put in every request's extensions by tonic: the peer's address and, under
/// mutual TLS, the identity its certificate carries.
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    /// The TCP peer; `None` over a Unix socket.
    pub remote_addr: Option<SocketAddr>,
    /// SPIFFE ID or DNS SAN of the client certificate (mutual TLS only).
    pub identity: Option<Arc<str>>,
}
