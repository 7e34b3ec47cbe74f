//! TLS for the gateway's own outbound HTTPS: the authorization server and an
//! OTLP collector. The system's roots plus any extra CA, an optional client
//! certificate, ALPN chosen by the caller, and the explicit crypto provider.

use std::fmt;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::crypto_provider;
use super::files::certificates;

/// A client certificate chain and its key, presented for mutual TLS. `Debug`
/// names the chain's length only: the key never leaves this type but into a
/// TLS configuration.
#[derive(Clone)]
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientIdentity({} certificates, key redacted)",
            self.chain.len()
        )
    }
}

impl ClientIdentity {
    /// Parses a PEM chain (leaf first) and a PEM private key, and checks that
    /// the provider can sign with the key. The error says what is wrong and
    /// which of the two files it is in, never key material.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, IdentityError> {
        let chain = certificates(chain).map_err(IdentityError::Chain)?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| IdentityError::NoKey)?;
        crypto_provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| IdentityError::Unusable(e.to_string()))?;
        Ok(Self {
            chain,
            key: Arc::new(key),
        })
    }
}

/// Why a client certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The certificate file holds no usable chain.
    #[error("{0}")]
    Chain(String),
    /// The key file holds no PEM private key.
    #[error("no PEM private key (PKCS#8, PKCS#1 or SEC1) found")]
    NoKey,
    /// The key is of a kind the provider cannot sign with.
    #[error("not a key the gateway can sign with: {0}")]
    Unusable(String),
}

/// The protocols offered by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2, falling back to HTTP/1.1.
    Http2OrHttp1,
}

/// A client configuration: the system's trusted roots plus `extra_roots`
/// (verified by the platform verifier, as reqwest's own default does), the
/// client certificate if any, and `alpn`.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
    identity: Option<&ClientIdentity>,
    alpn: Alpn,
) -> Result<ClientConfig, rustls::Error> {
    let provider = crypto_provider();
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots.iter().cloned(),
        provider.clone(),
    )?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = match alpn {
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
        Alpn::Http2OrHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(config)
}
