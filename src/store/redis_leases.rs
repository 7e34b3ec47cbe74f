//! The Redis backend's leases: one holder of a key at a time, under
//! `NAME~lease:` and the lease's key, with a fencing counter under
//! `NAME~fence:` and the key that only grows, each step one script. A
//! client's lease is the one its fenced token writes check (`redis.rs`).
//!
//! A fence must never repeat, even across a failover that loses the last
//! one taken (it lived only on the master that died): a repeated fence
//! would let the stale holder's writes pass the new holder's check. So a
//! new fence is the larger of the counter plus one and the master's clock
//! in microseconds, and taking it waits for replicas like a credential. A
//! lost fence can then come back only if the new master's clock is behind
//! the old one's by more than the failover took.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::record::{lease_group, lease_key_bytes};
use super::redis::RedisStore;
use super::redis_conn::RedisConn;
use super::{LeaseKey, Leases, StoreError};

/// `KEYS[1]` lease, `KEYS[2]` fencing counter; `ARGV[1]` TTL in ms. Returns
/// the new fence, or 0 while another holder has the lease.
const TAKE_LEASE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return '0' end
local now = redis.call('TIME')
local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
local fence = math.max((tonumber(redis.call('GET', KEYS[2])) or 0) + 1, clock)
fence = string.format('%.0f', fence)
redis.call('SET', KEYS[2], fence)
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
return fence
"#;

/// `KEYS[1]` lease; `ARGV[1]` fence, `ARGV[2]` TTL in ms. Returns 1 if renewed.
const RENEW_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// `KEYS[1]` lease; `ARGV[1]` fence. Deletes the lease if still held.
const RELEASE_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

#[async_trait]
impl Leases for RedisStore {
    async fn take_lease(&self, key: &LeaseKey, ttl: Duration) -> Result<Option<u64>, StoreError> {
        let group = lease_group(key);
        let key = lease_key_bytes(key);
        let lease = self.prefix.lease_key(&group, &key);
        let counter = self.prefix.fence_key(&group, &key);
        let script = Script::new(TAKE_LEASE);
        // Returned as a string: a fence is above what a Lua number turns
        // into a Redis integer exactly.
        let fence: String = self
            .durably(&lease, |mut c: RedisConn| {
                let mut call = script.key(&lease);
                call.key(&counter).arg(ttl.as_millis() as u64);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        let fence: u64 = fence
            .parse()
            .map_err(|_| StoreError::Backend("redis: a lease's fence is not a number".into()))?;
        Ok((fence != 0).then_some(fence))
    }

    async fn renew_lease(
        &self,
        key: &LeaseKey,
        fence: u64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let lease = self
            .prefix
            .lease_key(&lease_group(key), &lease_key_bytes(key));
        let script = Script::new(RENEW_LEASE);
        let renewed: u64 = self
            .with_retry(|mut c: RedisConn| {
                let mut call = script.key(&lease);
                call.arg(fence).arg(ttl.as_millis() as u64);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, key: &LeaseKey, fence: u64) -> Result<(), StoreError> {
        let lease = self
            .prefix
            .lease_key(&lease_group(key), &lease_key_bytes(key));
        let script = Script::new(RELEASE_LEASE);
        let _: u64 = self
            .with_retry(|mut c: RedisConn| {
                let mut call = script.key(&lease);
                call.arg(fence);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(())
    }
}
