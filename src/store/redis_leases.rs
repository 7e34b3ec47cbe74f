//! The Redis backend's leases: one holder of a key at a time, under
//! `NAME~lease:` and the lease's key, with a fencing counter under
//! `NAME~fence:` and the key that only grows, each step one script. A
//! client's lease is the one its fenced token writes check (`redis.rs`).

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::record::lease_key_bytes;
use super::redis::RedisStore;
use super::{LeaseKey, Leases, StoreError};

/// `KEYS[1]` lease, `KEYS[2]` fencing counter; `ARGV[1]` TTL in ms. Returns
/// the new fence, or 0 while another holder has the lease.
const TAKE_LEASE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
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
        let key = lease_key_bytes(key);
        let (lease, counter) = (self.prefix.lease_key(&key), self.prefix.fence_key(&key));
        let script = Script::new(TAKE_LEASE);
        let fence: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&lease);
                call.key(&counter).arg(ttl.as_millis() as u64);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok((fence != 0).then_some(fence))
    }

    async fn renew_lease(
        &self,
        key: &LeaseKey,
        fence: u64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let lease = self.prefix.lease_key(&lease_key_bytes(key));
        let script = Script::new(RENEW_LEASE);
        let renewed: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&lease);
                call.arg(fence).arg(ttl.as_millis() as u64);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, key: &LeaseKey, fence: u64) -> Result<(), StoreError> {
        let lease = self.prefix.lease_key(&lease_key_bytes(key));
        let script = Script::new(RELEASE_LEASE);
        let _: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&lease);
                call.arg(fence);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(())
    }
}
