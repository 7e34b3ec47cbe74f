//! The listener's PEM files and the rustls server configuration built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Largest PEM file read, here and for the upstream's CA bundle: a chain is
/// kilobytes and a system-sized CA bundle a few hundred; a mistaken path to a
/// large file must not be read into memory.
pub const MAX_PEM_BYTES: u64 = 4 << 20;

/// A TLS file problem; names the setting and the file, never key material.
#[derive(Debug, thiserror::Error)]
#[error("{setting} {path}: {reason}")]
pub struct TlsError {
    /// The setting, as a flag name.
    pub setting: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Where the listener's certificate, key and (for mutual TLS) client CA are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first (`--tls-cert`).
    pub cert: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 or SEC1 (`--tls-key`).
    pub key: PathBuf,
    /// PEM CA bundle that client certificates must chain to (`--tls-client-ca`);
    /// set, every client must present a certificate.
    pub client_ca: Option<PathBuf>,
}

/// The raw bytes of the three files, compared to notice a change.
#[derive(PartialEq, Eq)]
pub(super) struct Snapshot {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl ServerTlsFiles {
    /// Reads the files as they are now.
    pub(super) fn snapshot(&self) -> Result<Snapshot, TlsError> {
        Ok(Snapshot {
            cert: read("--tls-cert", &self.cert)?,
            key: read("--tls-key", &self.key)?,
            client_ca: match &self.client_ca {
                Some(path) => Some(read("--tls-client-ca", path)?),
                None => None,
            },
        })
    }

    /// Loads and checks the files into a server configuration: the check every
    /// start and every reload goes through.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        self.build(&self.snapshot()?)
    }

    pub(super) fn build(&self, snap: &Snapshot) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let err = |setting, path: &PathBuf, reason: String| TlsError {
            setting,
            path: path.display().to_string(),
            reason,
        };
        let chain = certificates(&snap.cert).map_err(|r| err("--tls-cert", &self.cert, r))?;
        let key = PrivateKeyDer::from_pem_slice(&snap.key).map_err(|_| {
            err(
                "--tls-key",
                &self.key,
                "no PEM private key (PKCS#8, PKCS#1 or SEC1) found".into(),
            )
        })?;
        let builder = rustls::ServerConfig::builder_with_provider(super::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err("--tls-cert", &self.cert, e.to_string()))?;
        let builder = match (&self.client_ca, &snap.client_ca) {
            (Some(path), Some(pem)) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(pem).map_err(|r| err("--tls-client-ca", path, r))? {
                    roots
                        .add(cert)
                        .map_err(|e| err("--tls-client-ca", path, e.to_string()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    super::crypto_provider(),
                )
                .build()
                .map_err(|e| err("--tls-client-ca", path, e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            err(
                "--tls-key",
                &self.key,
                format!("does not suit the certificate: {e}"),
            )
        })?;
        // gRPC is HTTP/2 only.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let err = |reason: String| TlsError {
        setting,
        path: path.display().to_string(),
        reason,
    };
    crate::files::read_limited(path, MAX_PEM_BYTES).map_err(|e| err(format!("cannot read: {e}")))
}

/// The certificates of a PEM file or bundle; an error when there are none.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    match certs.is_empty() {
        true => Err("no PEM certificate found".into()),
        false => Ok(certs),
    }
}
