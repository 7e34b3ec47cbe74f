//! The gRPC listen address: TCP, or a Unix socket for callers in the same pod.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::check::octal_mode;
use super::{ConfigError, invalid};

/// Default permissions of a Unix socket: owner and group may connect, so an
/// application container sharing the pod's `fsGroup` can reach it.
pub const DEFAULT_UNIX_SOCKET_MODE: u32 = 0o660;
/// Longest Unix socket path the kernel accepts (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where the gRPC server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket (`unix:/path`), created with `mode` permissions.
    Unix {
        /// The socket file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl std::fmt::Display for Listen {
    /// As written in `--listen`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(addr) => write!(f, "{addr}"),
            Listen::Unix { path, .. } => write!(f, "unix:{}", path.display()),
        }
    }
}

/// `--listen` and `--unix-socket-mode`, checked.
pub fn listen(text: &str, mode: Option<&str>) -> Result<Listen, ConfigError> {
    let Some(path) = text.strip_prefix("unix:") else {
        if mode.is_some() {
            return Err(invalid(
                "--unix-socket-mode",
                "applies only to a unix: --listen address",
            ));
        }
        return text.parse().map(Listen::Tcp).map_err(|_| {
            invalid(
                "--listen",
                format!(
                    "{text:?} is not an address such as 127.0.0.1:50051 or unix:/run/dcr/dcr.sock"
                ),
            )
        });
    };
    if !path.starts_with('/') || path.len() > MAX_SOCKET_PATH || path.contains('\0') {
        return Err(invalid(
            "--listen",
            format!("unix: needs an absolute path of at most {MAX_SOCKET_PATH} bytes"),
        ));
    }
    let mode = match mode {
        None => DEFAULT_UNIX_SOCKET_MODE,
        Some(m) => octal_mode("--unix-socket-mode", m, "0660")?,
    };
    Ok(Listen::Unix {
        path: PathBuf::from(path),
        mode,
    })
}

/// The listener settings as given (see `RawConfig`).
pub(super) struct RawListeners {
    pub(super) listen: Option<String>,
    pub(super) unix_socket_mode: Option<String>,
    pub(super) tls: super::tls::RawListenerTls,
    pub(super) health_listen: Option<String>,
    pub(super) admin_listen: Option<String>,
    pub(super) metrics_listen: Option<String>,
}

/// Every listener, checked.
pub(super) struct Listeners {
    pub(super) listen: Listen,
    pub(super) tls: Option<super::ListenerTls>,
    pub(super) health_listen: Option<SocketAddr>,
    pub(super) admin_listen: Option<SocketAddr>,
    pub(super) metrics_listen: Option<SocketAddr>,
}

impl RawListeners {
    pub(super) fn validate(self) -> Result<Listeners, ConfigError> {
        let listen = listen(
            self.listen.as_deref().unwrap_or(super::DEFAULT_LISTEN),
            self.unix_socket_mode.as_deref(),
        )?;
        Ok(Listeners {
            tls: super::tls::listener_tls(self.tls, &listen)?,
            listen,
            health_listen: health_listen(self.health_listen)?,
            admin_listen: listen_or_off(
                "--admin-listen",
                self.admin_listen
                    .as_deref()
                    .unwrap_or(super::DEFAULT_ADMIN_LISTEN),
            )?,
            metrics_listen: listen_or_off(
                "--metrics-listen",
                self.metrics_listen
                    .as_deref()
                    .unwrap_or(super::DEFAULT_METRICS_LISTEN),
            )?,
        })
    }
}

/// `--health-listen`, checked; `None` when unset.
fn health_listen(addr: Option<String>) -> Result<Option<SocketAddr>, ConfigError> {
    addr.map(|addr| {
        addr.parse().map_err(|_| {
            invalid(
                "--health-listen",
                format!("{addr:?} is not an address such as 0.0.0.0:8081"),
            )
        })
    })
    .transpose()
}

/// An HTTP listener's address, or `None` for `off`.
fn listen_or_off(setting: &'static str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match value {
        "off" => Ok(None),
        addr => addr
            .parse()
            .map(Some)
            .map_err(|_| invalid(setting, format!("{addr:?} is not an address or off"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_unix_addresses_parse() {
        assert_eq!(
            listen("127.0.0.1:1", None).unwrap(),
            Listen::Tcp("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(
            listen("unix:/run/a.sock", Some("0600")).unwrap(),
            Listen::Unix {
                path: "/run/a.sock".into(),
                mode: 0o600
            }
        );
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (addr, mode, setting) in [
            ("unix:relative.sock", None, "--listen"),
            ("unix:/a.sock", Some("999"), "--unix-socket-mode"),
            ("unix:/a.sock", Some("01777"), "--unix-socket-mode"),
            ("127.0.0.1:1", Some("0600"), "--unix-socket-mode"),
            ("localhost", None, "--listen"),
        ] {
            let err = listen(addr, mode).unwrap_err().to_string();
            assert!(err.starts_with(setting), "{addr} {mode:?}: {err}");
        }
        let long = format!("unix:/{}", "a".repeat(200));
        assert!(listen(&long, None).is_err());
    }
}
