//! The one connection to Redis, whatever runs it: a lone node, a Cluster
//! (keys spread over masters by hash slot; the `redis` crate's cluster
//! client follows MOVED, ASK and topology changes), or a master found
//! through Sentinel ([`super::redis_sentinel`], which follows a failover).
//! The store speaks to all three the same way; only listing every key
//! (each master's keys), waiting for replicas (on the master that took the
//! write) and counting replicas differ, and they are here.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Value};

use super::redis_node::{REDIS_TIMEOUT, manager};
use super::redis_sentinel::SentinelConn;

/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 500;

/// How the Redis servers are run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server (`--token-store redis`), with or without replicas.
    Node,
    /// Redis Cluster (`--token-store redis-cluster`); the URLs are seed nodes.
    Cluster,
    /// A master and its replicas under Sentinel (`--token-store
    /// redis-sentinel`); the URLs are the sentinels, `master` the name they
    /// watch.
    Sentinel {
        /// The monitored master's name.
        master: String,
    },
}

/// A connection to any topology; cheap to clone (every clone shares it).
#[derive(Clone)]
pub(super) enum RedisConn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(SentinelConn),
}

impl RedisConn {
    /// Connects to `urls` run as `topology`.
    pub(super) async fn connect(
        topology: &RedisTopology,
        urls: &[&str],
    ) -> Result<Self, RedisError> {
        Ok(match topology {
            RedisTopology::Node => {
                let url = urls.first().copied().unwrap_or_default();
                Self::Node(manager(redis::Client::open(url)?).await?)
            }
            RedisTopology::Cluster => {
                let client = ClusterClientBuilder::new(urls.to_vec())
                    .connection_timeout(REDIS_TIMEOUT)
                    .response_timeout(REDIS_TIMEOUT)
                    // The store's own retry (within the call's deadline)
                    // takes over from these few, quick ones.
                    .retries(3)
                    .min_retry_wait(50)
                    .max_retry_wait(400)
                    .build()?;
                Self::Cluster(client.get_async_connection().await?)
            }
            RedisTopology::Sentinel { master } => {
                Self::Sentinel(SentinelConn::connect(urls, master).await?)
            }
        })
    }

    /// Called after a command failed with `e`: a Sentinel connection looks
    /// for a new master. (The other topologies follow on their own.)
    pub(super) async fn after_error(&self, e: &RedisError) {
        if let Self::Sentinel(s) = self {
            s.follow(e).await;
        }
    }

    /// `cmd`'s answer: on a Cluster from the node(s) `to` names, elsewhere
    /// from the one server (which `to` cannot but name).
    async fn ask(&self, cmd: Cmd, to: RoutingInfo) -> Result<Value, RedisError> {
        match self {
            Self::Cluster(c) => c.clone().route_command(cmd, to).await,
            _ => cmd.query_async(&mut self.clone()).await,
        }
    }

    /// Every key matching `pattern`, on every master.
    pub(super) async fn scan(&self, pattern: &str) -> Result<Vec<String>, RedisError> {
        let nodes = match self {
            Self::Cluster(c) => masters(c)
                .await?
                .into_iter()
                .map(|(host, port)| SingleNodeRoutingInfo::ByAddress { host, port })
                .collect(),
            _ => vec![SingleNodeRoutingInfo::Random],
        };
        let mut keys = Vec::new();
        for node in nodes {
            let mut cursor = 0u64;
            loop {
                let reply = self
                    .ask(scan(cursor, pattern), RoutingInfo::SingleNode(node.clone()))
                    .await?;
                let (next, batch): (u64, Vec<String>) = FromRedisValue::from_redis_value(reply)?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(keys)
    }

    /// Waits up to `timeout` for `replicas` replicas to hold every write
    /// made so far on the master that holds `key` (over this connection);
    /// how many did.
    pub(super) async fn wait(
        &self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> Result<u32, RedisError> {
        // WAIT's timeout 0 waits for ever: never ask for it.
        let ms = timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(ms);
        let master = Route::with_key(key, SlotAddr::Master);
        let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(master));
        Ok(FromRedisValue::from_redis_value(self.ask(wait, to).await?)?)
    }

    /// The fewest replicas any master has connected now (0 with no
    /// replicas anywhere).
    pub(super) async fn replicas(&self) -> Result<u32, RedisError> {
        let to = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let roles = match self.ask(redis::cmd("ROLE"), to).await? {
            // A Cluster answers per master.
            Value::Map(by_node) => by_node.into_iter().map(|(_, role)| role).collect(),
            one => vec![one],
        };
        let mut fewest = u32::MAX;
        for role in roles {
            // A master's ROLE: ["master", offset, [[host, port, offset], ...]].
            let (_, _, connected): (String, i64, Vec<Value>) =
                FromRedisValue::from_redis_value(role)?;
            fewest = fewest.min(u32::try_from(connected.len()).unwrap_or(u32::MAX));
        }
        Ok(if fewest == u32::MAX { 0 } else { fewest })
    }
}

fn scan(cursor: u64, pattern: &str) -> Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT);
    cmd
}

/// Every master's address: the nodes a `PING` to all masters reaches, as
/// the cluster client knows them now.
async fn masters(c: &ClusterConnection) -> Result<Vec<(String, u16)>, RedisError> {
    let to = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
    let reply = c.clone().route_command(redis::cmd("PING"), to).await?;
    let Value::Map(by_node) = reply else {
        return Err(RedisError::from((
            redis::ErrorKind::Client,
            "the cluster did not name its masters",
        )));
    };
    let mut out = Vec::new();
    for (node, _) in by_node {
        let addr: String = FromRedisValue::from_redis_value(node)?;
        let parsed = addr
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_owned(), port.parse().ok()?)));
        match parsed {
            Some(node) => out.push(node),
            None => {
                return Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "a cluster master's address is not host:port",
                    addr,
                )));
            }
        }
    }
    Ok(out)
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Sentinel(s) => {
                let mut c = s.current();
                Box::pin(async move { c.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Self::Sentinel(s) => {
                let mut c = s.current();
                Box::pin(async move { c.req_packed_commands(cmd, offset, count).await })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Sentinel(s) => s.current().get_db(),
        }
    }
}
