//! TLS for the gRPC listener (server certificate, optional client CA for mutual
//! TLS, reloaded when the files change) and the process-wide crypto provider.
//!
//! Everything is rustls with ring, for every rustls user in the process (the
//! listener, the upstream HTTP client, `rediss://` connections); ring rather
//! than aws-lc keeps a C toolchain build step out of every build.

mod files;
mod identity;
mod reload;

pub use files::{MAX_PEM_BYTES, ServerTlsFiles, TlsError};
pub use identity::peer_identity;
pub use reload::ReloadingTls;

/// Installs ring as the rustls crypto provider; later calls do nothing.
pub fn install_crypto_provider() {
    // Fails only when a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
