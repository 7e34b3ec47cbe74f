//! One Redis server's connection, as every topology makes it: reconnecting
//! on its own, and bounded, so a hung server fails calls rather than
//! hanging them.

use std::time::Duration;

use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Limit for connecting and for each reply. A replica wait is bounded well
/// below it.
pub(super) const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection manager for `client`.
pub(super) async fn manager(client: redis::Client) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    ConnectionManager::new_with_config(client, config).await
}
