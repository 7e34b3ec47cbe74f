//! The one rustls crypto provider, ring, handed to every TLS configuration the
//! gateway builds (the listener, the upstream client, OTLP over HTTPS).
//!
//! Passed explicitly rather than installed as the process default: building a
//! configuration, or validating one, changes no process state. ring rather than
//! aws-lc keeps a C toolchain build step out of every build (`deny.toml` bans
//! aws-lc). Libraries that only read rustls's process default (the Redis
//! client's `rediss://`) get ring from rustls itself, as the only provider
//! compiled in.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

/// ring's default provider, built once and shared.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
