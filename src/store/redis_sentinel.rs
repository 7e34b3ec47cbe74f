//! A master found through Sentinel, followed across a failover.
//!
//! The connection manager reconnects to the address it was given; after a
//! failover that address is a dead node or a demoted replica (`READONLY`).
//! So after any error that a failover causes, the sentinels are asked for
//! the master again, and a new manager replaces the old one when the
//! master moved. One asking at a time: a burst of failed calls asks once.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{IntoConnectionInfo, RedisError, TlsMode};

use super::redis_node::manager;

/// Least time between two questions to the sentinels: a burst of failed
/// calls during a failover asks once per pause, not once per call.
const ASK_PAUSE: Duration = Duration::from_millis(100);

/// The sentinels, and when they were last asked.
struct Sentinels {
    client: SentinelClient,
    asked: Instant,
}

/// The current master's connection, and the sentinels that name it.
#[derive(Clone)]
pub(super) struct SentinelConn {
    sentinels: Arc<tokio::sync::Mutex<Sentinels>>,
    current: Arc<RwLock<(String, ConnectionManager)>>,
}

impl SentinelConn {
    /// Asks the sentinels at `urls` for `master`, and connects to it. The
    /// first URL's credentials, database and TLS are the master's too.
    pub(super) async fn connect(urls: &[&str], master: &str) -> Result<Self, RedisError> {
        let first = urls
            .first()
            .copied()
            .unwrap_or_default()
            .into_connection_info()?;
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(first.redis_settings().clone());
        if let redis::ConnectionAddr::TcpTls { insecure, .. } = first.addr() {
            node = node.set_tls_mode(match insecure {
                true => TlsMode::Insecure,
                false => TlsMode::Secure,
            });
        }
        let mut sentinels = SentinelClient::build(
            urls.to_vec(),
            master,
            Some(node),
            SentinelServerType::Master,
        )?;
        let client = sentinels.async_get_client().await?;
        let addr = client.get_connection_info().addr().to_string();
        let conn = manager(client).await?;
        let sentinels = Sentinels {
            client: sentinels,
            asked: Instant::now(),
        };
        Ok(Self {
            sentinels: Arc::new(tokio::sync::Mutex::new(sentinels)),
            current: Arc::new(RwLock::new((addr, conn))),
        })
    }

    /// The current master's connection.
    pub(super) fn current(&self) -> ConnectionManager {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.1.clone()
    }

    /// After `e`: when a failover may be its cause, asks the sentinels for
    /// the master and connects to it if it moved.
    pub(super) async fn follow(&self, e: &RedisError) {
        let failover = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || matches!(
                e.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::ReadOnly | redis::ServerErrorKind::MasterDown
                )
            );
        if !failover {
            return;
        }
        let before = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        let mut sentinels = self.sentinels.lock().await;
        // Another caller may have followed (or asked) while this one waited.
        let moved = self.current.read().unwrap_or_else(|e| e.into_inner()).0 != before;
        if moved || sentinels.asked.elapsed() < ASK_PAUSE {
            return;
        }
        sentinels.asked = Instant::now();
        let client = match sentinels.client.async_get_client().await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "redis sentinel: no master found yet");
                return;
            }
        };
        let addr = client.get_connection_info().addr().to_string();
        if addr == before {
            return;
        }
        match manager(client).await {
            Ok(conn) => {
                tracing::warn!(
                    master = addr,
                    "redis sentinel: the master moved; following it"
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (addr, conn);
            }
            Err(e) => {
                tracing::warn!(error = %e, master = addr, "redis sentinel: cannot reach the new master yet")
            }
        }
    }
}
