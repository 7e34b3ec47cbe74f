//! Managed-client helpers: ensure a name, follow it, and a dev upstream that
//! lost every client.

use dcr_dev_upstream::DevUpstream;
use dcr_gateway::pb::v1 as pb;

use super::{Client, machine_client};

/// An EnsureClient request for a client_credentials client.
pub fn ensure_req(name: &str, client_name: &str) -> pb::EnsureClientRequest {
    pb::EnsureClientRequest {
        name: name.into(),
        metadata: Some(machine_client(client_name)),
        initial_access_token: None,
    }
}

/// Ensures `name`, which must succeed.
pub async fn ensure(c: &mut Client, name: &str, client_name: &str) -> pb::EnsureClientResponse {
    c.ensure_client(ensure_req(name, client_name))
        .await
        .expect("ensure succeeds")
        .into_inner()
}

/// A WatchClient stream on `name`.
pub async fn follow(c: &mut Client, name: &str) -> tonic::Streaming<pb::WatchClientResponse> {
    c.watch_client(pb::WatchClientRequest { name: name.into() })
        .await
        .expect("the watch starts")
        .into_inner()
}

/// Restarts the dev upstream on its address with no clients: it lost them all.
pub async fn restart_empty(mut dev: DevUpstream) -> DevUpstream {
    let addr = dev.addr();
    dev.pause().await;
    drop(dev);
    DevUpstream::start(addr, None)
        .await
        .expect("the same address again")
}

/// The caller's managed clients.
pub async fn list(c: &mut Client) -> Vec<pb::ManagedClient> {
    c.list_clients(pb::ListClientsRequest::default())
        .await
        .expect("list succeeds")
        .into_inner()
        .clients
}

/// A `[[clients]]` table for a client_credentials client named `name`, whose
/// secret is rotated every `every` when given.
pub fn declared(name: &str, every: Option<&str>) -> dcr_gateway::config::RawClient {
    let metadata = serde_json::json!({"client_name": name, "grant_types": ["client_credentials"]});
    dcr_gateway::config::RawClient {
        name: name.into(),
        namespace: None,
        metadata: match metadata {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        rotate_secret_every: every.map(Into::into),
        rotate_before_expiry: None,
        credentials_file: None,
        deliver_secret: None,
        tokens: Vec::new(),
    }
}

/// A credentials file, once it is there and whole (a reader never sees part
/// of one, so a file that does not parse fails the test).
pub fn read_file(path: &std::path::Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).expect("a credentials file is never partial"))
}

/// The client id and secret in a credentials file, once it is there.
pub fn file_client(path: &std::path::Path) -> Option<(String, String)> {
    let file = read_file(path)?;
    Some((
        file["client_id"].as_str()?.to_owned(),
        file["client_secret"].as_str()?.to_owned(),
    ))
}

/// The managed client `name` as ListClients shows it, if listed.
pub async fn listed(c: &mut Client, name: &str) -> Option<pb::ManagedClient> {
    list(c).await.into_iter().find(|m| m.name == name)
}

/// A sealed file store in `dir`.
pub fn file_store(dir: &std::path::Path) -> dcr_gateway::config::RawStoreConfig {
    dcr_gateway::config::RawStoreConfig {
        backend: Some("file".into()),
        path: Some(dir.join("tokens.redb").to_str().unwrap().into()),
        keys: Some(super::redis::K1.parse().unwrap()),
        ..Default::default()
    }
}

/// How many requests `dev` has served on `route`.
pub fn requests(dev: &DevUpstream, route: dcr_dev_upstream::Route) -> u64 {
    dev.stats().requests.get(&route).copied().unwrap_or(0)
}

/// The gRPC health of `service` on the gateway at `addr`.
pub async fn health(addr: std::net::SocketAddr, service: &str) -> i32 {
    let mut health = tonic_health::pb::health_client::HealthClient::new(super::channel(addr).await);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}
