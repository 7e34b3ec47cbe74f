//! TLS settings: the listener's certificate, key and client CA (checked by
//! loading them once at start), and the upstream's extra CA bundle, client
//! certificate and plain-HTTP refusal.

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use super::{ConfigError, Listen, duration, invalid};
use crate::tls::{ClientIdentity, IdentityError, MAX_PEM_BYTES, ServerTlsFiles, certificates};

/// Default interval between checks of the TLS files for a change: mounted
/// Secrets update within about a minute, so this keeps well inside that.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Shortest reload interval accepted.
const MIN_TLS_RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// TLS on the gRPC listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerTls {
    /// The certificate, key and optional client CA files.
    pub files: ServerTlsFiles,
    /// How often the files are checked for a change.
    pub reload_interval: Duration,
}

/// The listener's TLS settings as given.
pub struct RawListenerTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
    pub reload_interval: Option<String>,
}

/// `--tls-*`, checked: both files or neither, TCP only, and loadable now.
pub fn listener_tls(
    raw: RawListenerTls,
    listen: &Listen,
) -> Result<Option<ListenerTls>, ConfigError> {
    let (cert, key) = match (raw.cert, raw.key) {
        (None, None) => {
            return match (raw.client_ca, raw.reload_interval) {
                (Some(_), _) => Err(invalid("--tls-client-ca", "needs --tls-cert and --tls-key")),
                (_, Some(_)) => Err(invalid(
                    "--tls-reload-interval",
                    "needs --tls-cert and --tls-key",
                )),
                (None, None) => Ok(None),
            };
        }
        (Some(_), None) => return Err(invalid("--tls-key", "needed with --tls-cert")),
        (None, Some(_)) => return Err(invalid("--tls-cert", "needed with --tls-key")),
        (Some(cert), Some(key)) => (cert, key),
    };
    if matches!(listen, Listen::Unix { .. }) {
        return Err(invalid(
            "--tls-cert",
            "TLS applies to a TCP --listen address; a Unix socket is protected by its file permissions",
        ));
    }
    let files = ServerTlsFiles {
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
        client_ca: raw.client_ca.map(PathBuf::from),
    };
    files
        .load()
        .map_err(|e| invalid(e.setting, format!("{}: {}", e.path, e.reason)))?;
    Ok(Some(ListenerTls {
        files,
        reload_interval: duration(
            "--tls-reload-interval",
            raw.reload_interval,
            DEFAULT_TLS_RELOAD_INTERVAL,
            MIN_TLS_RELOAD_INTERVAL,
        )?,
    }))
}

/// The upstream CA bundle and client identity, loaded and checked.
pub fn upstream_tls(
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
) -> Result<(Vec<CertificateDer<'static>>, Option<ClientIdentity>), ConfigError> {
    let roots = match ca_file {
        None => Vec::new(),
        Some(path) => {
            let pem = read_pem("--upstream-ca-file", &path)?;
            certificates(&pem)
                .map_err(|reason| invalid("--upstream-ca-file", format!("{path}: {reason}")))?
        }
    };
    let identity = match (client_cert, client_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "--upstream-client-key",
                "needed with --upstream-client-cert",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "--upstream-client-cert",
                "needed with --upstream-client-key",
            ));
        }
        (Some(cert), Some(key)) => {
            let chain = read_pem("--upstream-client-cert", &cert)?;
            let key_pem = read_pem("--upstream-client-key", &key)?;
            Some(
                ClientIdentity::from_pem(&chain, &key_pem).map_err(|e| match e {
                    IdentityError::Chain(reason) => {
                        invalid("--upstream-client-cert", format!("{cert}: {reason}"))
                    }
                    e => invalid("--upstream-client-key", format!("{key}: {e}")),
                })?,
            )
        }
    };
    Ok((roots, identity))
}

fn read_pem(setting: &'static str, path: &str) -> Result<Vec<u8>, ConfigError> {
    crate::files::read_limited(std::path::Path::new(path), MAX_PEM_BYTES)
        .map_err(|e| invalid(setting, format!("cannot read {path}: {e}")))
}
