//! The process-wide TLS crypto provider: ring, for every rustls user in the
//! process (the upstream HTTP client, `rediss://` connections). Building with
//! ring rather than aws-lc keeps a C toolchain build step out of every build.

/// Installs ring as the rustls crypto provider; later calls do nothing.
pub fn install_crypto_provider() {
    // Fails only when a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
