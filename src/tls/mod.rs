//! TLS: the gRPC listener's (server certificate, optional client CA for mutual
//! TLS, reloaded when the files change), the gateway's outbound HTTPS
//! (`client.rs`), and the one crypto provider both are built with.

mod client;
mod files;
mod identity;
mod provider;
mod reload;

pub use client::{Alpn, ClientIdentity, IdentityError, client_config};
pub use files::{MAX_PEM_BYTES, ServerTlsFiles, TlsError, certificates};
pub use identity::peer_identity;
pub use provider::crypto_provider;
pub use reload::ReloadingTls;
