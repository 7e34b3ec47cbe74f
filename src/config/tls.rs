//! TLS settings: the listener's certificate, key and client CA (checked by
//! loading them once at start), and the upstream's extra CA bundle, client
//! certificate and plain-HTTP refusal.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Listen, duration, invalid};
use crate::tls::{MAX_PEM_BYTES, ServerTlsFiles};

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
) -> Result<(Vec<reqwest::Certificate>, Option<reqwest::Identity>), ConfigError> {
    let roots = match ca_file {
        None => Vec::new(),
        Some(path) => {
            let pem = read_pem("--upstream-ca-file", &path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                invalid(
                    "--upstream-ca-file",
                    format!("{path}: not a PEM certificate bundle"),
                )
            })?;
            if certs.is_empty() {
                return Err(invalid(
                    "--upstream-ca-file",
                    format!("{path}: no certificate found"),
                ));
            }
            certs
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
            crate::tls::install_crypto_provider();
            let mut pem = read_pem("--upstream-client-cert", &cert)?;
            pem.push(b'\n');
            pem.extend(read_pem("--upstream-client-key", &key)?);
            Some(reqwest::Identity::from_pem(&pem).map_err(|_| {
                invalid(
                    "--upstream-client-cert",
                    format!("{cert} and {key}: not a PEM certificate and private key"),
                )
            })?)
        }
    };
    Ok((roots, identity))
}

fn read_pem(setting: &'static str, path: &str) -> Result<Vec<u8>, ConfigError> {
    crate::files::read_limited(std::path::Path::new(path), MAX_PEM_BYTES)
        .map_err(|e| invalid(setting, format!("cannot read {path}: {e}")))
}
