//! A server TLS configuration that follows its files: Kubernetes updates a
//! mounted Secret by swapping a symlink, so the files are re-read every
//! interval and a changed, valid set replaces the configuration for new
//! connections. A broken set is logged and the previous one kept.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use super::files::{ServerTlsFiles, TlsError};

/// The current acceptor, replaced when the files change.
#[derive(Clone)]
pub struct ReloadingTls {
    current: Arc<RwLock<TlsAcceptor>>,
    /// Whether clients must present a certificate.
    pub mutual: bool,
}

impl ReloadingTls {
    /// Loads `files` (an error stops the start) and re-reads them every
    /// `interval` for as long as the returned value or a clone lives.
    pub fn start(files: ServerTlsFiles, interval: Duration) -> Result<Self, TlsError> {
        let mut last = files.snapshot()?;
        let config = files.build(&last)?;
        let tls = Self {
            current: Arc::new(RwLock::new(TlsAcceptor::from(config))),
            mutual: files.client_ca.is_some(),
        };
        let weak = Arc::downgrade(&tls.current);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(current) = weak.upgrade() else {
                    return;
                };
                let snap = match files.snapshot() {
                    Ok(snap) if snap == last => continue,
                    Ok(snap) => snap,
                    Err(e) => {
                        tracing::error!(error = %e, "TLS files unreadable; keeping the loaded certificate");
                        continue;
                    }
                };
                match files.build(&snap) {
                    Ok(config) => {
                        *current.write().unwrap_or_else(|e| e.into_inner()) =
                            TlsAcceptor::from(config);
                        last = snap;
                        tracing::info!("TLS certificate files changed; new connections use them");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "changed TLS files are invalid; keeping the loaded certificate");
                    }
                }
            }
        });
        Ok(tls)
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
