//! Why the gateway could not start, or stopped with an error: each variant
//! names the setting or the part that failed and keeps its cause.

use std::net::SocketAddr;

use crate::store::StoreError;
use crate::upstream::HttpClientError;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listen address could not be bound (e.g. already in use).
    #[error("{setting} {addr}: cannot bind: {source}")]
    Bind {
        /// The setting, as a flag name.
        setting: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The listener's TLS files could not be loaded.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The registration endpoint could not be discovered.
    #[error("--upstream: {0}")]
    Discovery(String),
    /// An HTTP listener's address (admin or metrics) could not be bound.
    #[error("{setting} {addr}: cannot bind: {source}")]
    HttpBind {
        /// The setting that names the address.
        setting: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The credentials folder does not exist or cannot be written.
    #[error("--credentials-dir {dir}: {source}")]
    Credentials {
        /// The folder.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The built-in dev upstream could not start.
    #[error("--dev-upstream: cannot start: {0}")]
    DevUpstream(std::io::Error),
    /// The token store could not be opened or read.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// The upstream HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] HttpClientError),
    /// The reflection service could not be built from the descriptors.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}
